package systemb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// dataset returns n records in join order.
func dataset(n int) []merge.Record {
	rs := make([]merge.Record, n)
	for i := range rs {
		rs[i] = newRecord(fmt.Sprintf("Customer%06d@Example.com", i))
		rs[i].Values[merge.FieldFirstName] = fmt.Sprintf("Name %d", i)
	}
	return rs
}

// listServer serves rs as System B's list endpoint. Cursors are opaque
// strings holding characters that need escaping; it records the cursors and
// limits it received.
type listServer struct {
	*server
	mu      sync.Mutex
	cursors []string
	limits  []string
	// status, when set before the first request, gives the status of
	// request n (1-based); 200 serves the page.
	status func(n int) int
	// token, when set, is the token accepted (testToken when nil); others
	// are refused with 401.
	token atomic.Pointer[string]
}

const cursorPrefix = "c+/=&?# ü:"

func newListServer(t *testing.T, rs []merge.Record, mutate func(page int, body []byte) []byte) *listServer {
	t.Helper()
	ls := new(listServer)
	ls.server = newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if ls.status != nil && ls.status(n) != http.StatusOK {
			w.WriteHeader(ls.status(n))
			return
		}
		tok := testToken
		if p := ls.token.Load(); p != nil {
			tok = *p
		}
		if r.Header.Get("Authorization") != "Bearer "+tok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/customers" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		ls.mu.Lock()
		ls.limits = append(ls.limits, q.Get("limit"))
		ls.cursors = append(ls.cursors, q.Get("cursor"))
		page := len(ls.limits)
		ls.mu.Unlock()
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil || limit < 1 || limit > 1000 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		start := 0
		if c, ok := q["cursor"]; ok {
			n, err := strconv.Atoi(c[0][len(cursorPrefix):])
			if err != nil || c[0][:len(cursorPrefix)] != cursorPrefix {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			start = n
		}
		end := min(start+limit, len(rs))
		body := []byte(`{"items":[`)
		for i := start; i < end; i++ {
			if i > start {
				body = append(body, ',')
			}
			body = AppendCustomer(body, &rs[i])
		}
		body = append(body, `],"nextCursor":`...)
		if end < len(rs) {
			body = strconv.AppendQuote(body, cursorPrefix+strconv.Itoa(end))
		} else {
			body = append(body, "null"...)
		}
		body = append(body, '}')
		if mutate != nil {
			body = mutate(page, body)
		}
		writeJSON(w, body)
	})
	return ls
}

// collect drains p of its good records.
func collect(p *Pager) []merge.Record {
	var got []merge.Record
	for p.Next() {
		if r := p.Record(); r != nil {
			got = append(got, *r)
		}
	}
	return got
}

func TestListPages(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		pageSize   int
		wantLimit  string
		wantPages  int
		noPrefetch bool
	}{
		{"empty", 0, 10, "10", 1, false},
		{"one partial page", 3, 10, "10", 1, false},
		{"exact pages", 20, 10, "10", 2, false},
		{"several pages", 25, 7, "7", 4, false},
		{"page size 1", 3, 1, "1", 3, false},
		{"default page size", 2500, 0, "1000", 3, false},
		{"without prefetch", 25, 7, "7", 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := dataset(tt.n)
			s := newListServer(t, rs, nil)
			c, _ := newClient(t, s.URL, func(c *Config) { c.DisablePrefetch = tt.noPrefetch })
			p := c.List(context.Background(), tt.pageSize)
			defer p.Close()
			got := collect(p)
			if err := p.Err(); err != nil {
				t.Fatalf("Err: %v", err)
			}
			if len(got) != len(rs) {
				t.Fatalf("%d records, want %d", len(got), len(rs))
			}
			for i := range rs {
				if got[i] != rs[i] {
					t.Fatalf("record %d = %+v, want %+v", i, got[i], rs[i])
				}
			}
			if s.Requests() != tt.wantPages || p.Pages() != tt.wantPages {
				t.Errorf("%d requests, %d pages, want %d", s.Requests(), p.Pages(), tt.wantPages)
			}
			limit, _ := strconv.Atoi(tt.wantLimit)
			for i, l := range s.limits {
				if l != tt.wantLimit {
					t.Errorf("request %d limit=%q, want %q", i, l, tt.wantLimit)
				}
				want := "" // no cursor on the first page
				if i > 0 {
					want = cursorPrefix + strconv.Itoa(i*limit) // verbatim
				}
				if s.cursors[i] != want {
					t.Errorf("request %d cursor %q, want %q", i, s.cursors[i], want)
				}
			}
			if p.Next() {
				t.Error("Next after the end returned true")
			}
		})
	}
}

func TestListRejectsBrokenPages(t *testing.T) {
	// pageOf is a last page holding the customers of emails, in that order.
	pageOf := func(emails ...string) func(int, []byte) []byte {
		body := []byte(`{"items":[`)
		for i, e := range emails {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, customerJSON(e)...)
		}
		body = append(body, `],"nextCursor":null}`...)
		return func(int, []byte) []byte { return body }
	}
	tests := []struct {
		name     string
		pageSize int
		mutate   func(page int, body []byte) []byte
		wantRecs int // records delivered before the error
	}{
		{"out of order within a page", 10, pageOf("b@example.com", "a@example.com"), 0},
		{"out of order across pages", 5, func(page int, body []byte) []byte {
			if page == 2 { // page 2 restarts at the beginning
				return pageOf("Customer000000@example.com")(page, body)
			}
			return body
		}, 5},
		{"duplicate key, case differs", 10, pageOf("a@example.com", "A@Example.com"), 0},
		{"invalid JSON", 10, func(_ int, body []byte) []byte { return body[:len(body)-1] }, 0},
		{"missing nextCursor", 10, func(int, []byte) []byte { return []byte(`{"items":[]}`) }, 0},
		{"empty nextCursor", 10, func(int, []byte) []byte { return []byte(`{"items":[],"nextCursor":""}`) }, 0},
		{"numeric nextCursor", 10, func(int, []byte) []byte { return []byte(`{"items":[],"nextCursor":7}`) }, 0},
		{"missing items", 10, func(int, []byte) []byte { return []byte(`{"nextCursor":null}`) }, 0},
		{"null items", 10, func(int, []byte) []byte { return []byte(`{"items":null,"nextCursor":null}`) }, 0},
		{"items not an array", 10, func(int, []byte) []byte { return []byte(`{"items":{},"nextCursor":null}`) }, 0},
		{"item that is not valid JSON", 10, func(int, []byte) []byte {
			return []byte(`{"items":[{"email":"a@example.com",}],"nextCursor":null}`)
		}, 0},
		{"good items out of order around a bad one", 10, func(int, []byte) []byte {
			return []byte(`{"items":[` + string(customerJSON("b@example.com")) + `,{},` + string(customerJSON("a@example.com")) + `],"nextCursor":null}`)
		}, 0},
		{"more items than the limit", 1, pageOf("a@example.com", "b@example.com"), 0},
		{"cursor repeats", 5, func(page int, body []byte) []byte {
			if page == 2 {
				return []byte(`{"items":[],"nextCursor":"` + cursorPrefix + `5"}`)
			}
			return body
		}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newListServer(t, dataset(12), tt.mutate)
			c, _ := newClient(t, s.URL, nil)
			p := c.List(context.Background(), tt.pageSize)
			defer p.Close()
			got := collect(p)
			e := checkErr(t, p.Err(), ErrBadData, 1, "example.com")
			if e.Op != OpList || e.Status != http.StatusOK {
				t.Errorf("error %+v", e)
			}
			if len(got) != tt.wantRecs {
				t.Errorf("%d records before the error, want %d", len(got), tt.wantRecs)
			}
			if p.Next() {
				t.Error("Next after an error returned true")
			}
		})
	}
}

// TestListBadItems checks that an item that is not a valid customer is
// yielded as a bad record in its place, and the Pager carries on with the
// rest of its page and the next pages.
func TestListBadItems(t *testing.T) {
	rs := dataset(9)
	const phoneOf4 = "+44 20 7946 0000"
	// Pages of 4: item 1 of page 1 lacks its lastUpdated, item 2 of page
	// 2 has a numeric phone, and page 3 ends with an item that is not an
	// object.
	type want struct {
		email    string // a good record
		position string // else a bad one
		reason   string
	}
	wants := []want{
		{position: "page 1 item 1", reason: "lastUpdated is missing"},
		{email: rs[1].Email()}, {email: rs[2].Email()}, {email: rs[3].Email()},
		{email: rs[4].Email()}, {position: "page 2 item 2", reason: "phone: want a string or null"}, {email: rs[6].Email()}, {email: rs[7].Email()},
		{email: rs[8].Email()}, {position: "page 3 item 2", reason: "want an object"},
	}
	for _, prefetch := range []bool{true, false} {
		t.Run(fmt.Sprintf("prefetch=%v", prefetch), func(t *testing.T) {
			s := newListServer(t, rs, func(page int, body []byte) []byte {
				var p struct {
					Items      []json.RawMessage `json:"items"`
					NextCursor *string           `json:"nextCursor"`
				}
				if err := json.Unmarshal(body, &p); err != nil {
					t.Error(err)
					return body
				}
				switch page {
				case 1:
					p.Items[0] = json.RawMessage(`{"email":"` + rs[0].Email() + `"}`)
				case 2:
					p.Items[1] = json.RawMessage(`{"email":"` + rs[5].Email() + `","phone":44,"lastUpdated":"2026-03-01T12:30:00Z"}`)
				case 3:
					p.Items = append(p.Items, json.RawMessage(`"`+phoneOf4+`"`))
				}
				b, err := json.Marshal(p)
				if err != nil {
					t.Error(err)
				}
				return b
			})
			c, _ := newClient(t, s.URL, func(c *Config) { c.DisablePrefetch = !prefetch })
			p := c.List(context.Background(), 4)
			defer p.Close()
			var got []want
			for r, err := range p.All() {
				var bad *merge.BadRecordError
				switch {
				case err == nil:
					got = append(got, want{email: r.Email()})
				case errors.As(err, &bad):
					if r != nil || bad.Source != merge.SystemB || !errors.Is(err, merge.ErrBadData) {
						t.Errorf("bad record %v with record %v", err, r)
					}
					for _, v := range []string{rs[0].Email(), rs[5].Email(), phoneOf4, "44"} {
						if strings.Contains(bad.Error(), v) {
							t.Errorf("%q quotes the value %q", bad, v)
						}
					}
					got = append(got, want{position: bad.Position, reason: bad.Reason})
				default:
					t.Fatalf("stream ended with %v", err)
				}
			}
			if len(got) != len(wants) {
				t.Fatalf("got %d items %+v, want %d %+v", len(got), got, len(wants), wants)
			}
			for i := range wants {
				if got[i] != wants[i] {
					t.Errorf("item %d = %+v, want %+v", i, got[i], wants[i])
				}
			}
			if p.Err() != nil || p.Pages() != 3 {
				t.Errorf("Err %v after %d pages, want nil after 3", p.Err(), p.Pages())
			}
		})
	}
}

func TestListValidatesThePageSize(t *testing.T) {
	s := newListServer(t, dataset(3), nil)
	c, _ := newClient(t, s.URL, nil)
	for _, size := range []int{-1, 1001, 1 << 40} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			p := c.List(context.Background(), size)
			defer p.Close()
			if p.Next() {
				t.Fatal("Next returned true")
			}
			checkErr(t, p.Err(), ErrInvalidArgument, 0)
		})
	}
	if s.Requests() != 0 {
		t.Errorf("%d requests, want 0", s.Requests())
	}
}

func TestListPageFailures(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		want     error
		requests int // 1 good page, then the failing ones
	}{
		{"503 on page 2 after retries", http.StatusServiceUnavailable, ErrUnavailable, 1 + 3},
		{"401 on page 2", http.StatusUnauthorized, ErrUnauthorized, 1 + 1},
		{"404 on page 2", http.StatusNotFound, ErrUnavailable, 1 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newListServer(t, dataset(10), nil)
			s.status = func(n int) int {
				if n > 1 {
					return tt.status
				}
				return http.StatusOK
			}
			c, _ := newClient(t, s.URL, nil)
			p := c.List(context.Background(), 4)
			defer p.Close()
			got := collect(p)
			checkErr(t, p.Err(), tt.want, tt.requests-1)
			if len(got) != 4 || s.Requests() != tt.requests {
				t.Errorf("%d records, %d requests; want 4, %d", len(got), s.Requests(), tt.requests)
			}
		})
	}
}

func TestListSkipsEmptyPages(t *testing.T) {
	rs := dataset(6)
	s := newListServer(t, rs, func(page int, body []byte) []byte {
		if page == 1 { // an empty page that still points on
			return []byte(`{"items":[],"nextCursor":"` + cursorPrefix + `0"}`)
		}
		return body
	})
	c, _ := newClient(t, s.URL, nil)
	p := c.List(context.Background(), 3)
	defer p.Close()
	got := collect(p)
	if p.Err() != nil || len(got) != 6 || p.Pages() != 3 {
		t.Errorf("%d records, %d pages, err %v; want 6, 3, nil", len(got), p.Pages(), p.Err())
	}
}

func TestListCloseEarly(t *testing.T) {
	s := newListServer(t, dataset(50), nil)
	c, _ := newClient(t, s.URL, nil)
	p := c.List(context.Background(), 5)
	for range 7 {
		if !p.Next() {
			t.Fatalf("Next false early: %v", p.Err())
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	if p.Next() || p.Err() != nil {
		t.Errorf("after Close: Next true or Err %v", p.Err())
	}
	// At most the two pages consumed plus one prefetched.
	if s.Requests() > 3 {
		t.Errorf("%d requests for 7 records of pages of 5", s.Requests())
	}
}

func TestListAll(t *testing.T) {
	rs := dataset(9)
	s := newListServer(t, rs, nil)
	c, _ := newClient(t, s.URL, nil)
	p := c.List(context.Background(), 4)
	defer p.Close()
	n := 0
	for r, err := range p.All() {
		if err != nil {
			t.Fatal(err)
		}
		if *r != rs[n] {
			t.Fatalf("record %d differs", n)
		}
		n++
	}
	if n != 9 {
		t.Errorf("%d records, want 9", n)
	}

	bad := newListServer(t, rs, func(int, []byte) []byte { return []byte("{") })
	c, _ = newClient(t, bad.URL, nil)
	p = c.List(context.Background(), 4)
	defer p.Close()
	var errs int
	for r, err := range p.All() {
		if r != nil || err == nil {
			t.Fatalf("yielded %v, %v", r, err)
		}
		errs++
	}
	if errs != 1 {
		t.Errorf("%d errors yielded, want 1", errs)
	}
}

func TestListCanceled(t *testing.T) {
	s := newListServer(t, dataset(20), nil)
	c, _ := newClient(t, s.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	p := c.List(ctx, 5)
	defer p.Close()
	for range 5 {
		p.Next()
	}
	cancel()
	for p.Next() {
	}
	checkErr(t, p.Err(), ErrUnavailable, -1)
}

// BenchmarkList pages through 20,000 customers served from memory in pages
// of 1000 by an httptest server, with and without prefetching.
func BenchmarkList(b *testing.B) {
	const n, size = 20000, 1000
	rs := dataset(n)
	pages := make([][]byte, 0, n/size)
	for start := 0; start < n; start += size {
		body := []byte(`{"items":[`)
		for i := start; i < start+size; i++ {
			if i > start {
				body = append(body, ',')
			}
			body = AppendCustomer(body, &rs[i])
		}
		if start+size < n {
			body = append(body, `],"nextCursor":"`+strconv.Itoa(start/size+1)+`"}`...)
		} else {
			body = append(body, `],"nextCursor":null}`...)
		}
		pages = append(pages, body)
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		writeJSON(w, pages[i])
	}))
	defer s.Close()
	for _, prefetch := range []bool{true, false} {
		b.Run("prefetch="+strconv.FormatBool(prefetch), func(b *testing.B) {
			c, err := New(Config{BaseURL: s.URL, Token: StaticToken(testToken), DisablePrefetch: !prefetch})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				p := c.List(context.Background(), size)
				got := 0
				for p.Next() {
					got++
				}
				if p.Err() != nil || got != n {
					b.Fatal(p.Err(), got)
				}
				p.Close()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func TestCompareKeys(t *testing.T) {
	emails := []string{
		"", "a@example.com", "A@Example.com ", " ab@example.com", "B@example.com", "b@example.com",
		"jörg@example.com", "JÖRG@Example.com", "jorg@example.com", "Z@example.com", "_@example.com",
		"a+b@example.com", "a.b@example.com", "ǅ@example.com", "İ@example.com", "i@example.com",
	}
	for _, a := range emails {
		for _, b := range emails {
			want := strings.Compare(merge.Key(a), merge.Key(b))
			if got := compareKeys(a, b); got != want {
				t.Errorf("compareKeys(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// TestListFrom: a Pager started at any item's Position yields exactly the
// items from that one on, with and without prefetch.
func TestListFrom(t *testing.T) {
	rs := dataset(25)
	for _, prefetch := range []bool{true, false} {
		t.Run(fmt.Sprintf("prefetch=%v", prefetch), func(t *testing.T) {
			s := newListServer(t, rs, nil)
			c, _ := newClient(t, s.URL, func(c *Config) { c.DisablePrefetch = !prefetch })
			p := c.List(context.Background(), 7)
			var positions []Position
			for p.Next() {
				positions = append(positions, p.Position())
			}
			p.Close()
			if err := p.Err(); err != nil || len(positions) != len(rs) {
				t.Fatalf("%d positions, err %v", len(positions), err)
			}
			for i, pos := range positions {
				t.Run(fmt.Sprintf("from item %d", i), func(t *testing.T) {
					q := c.ListFrom(context.Background(), pos)
					defer q.Close()
					got := collect(q)
					if err := q.Err(); err != nil {
						t.Fatal(err)
					}
					if len(got) != len(rs)-i {
						t.Fatalf("%d records, want %d", len(got), len(rs)-i)
					}
					for j := range got {
						if got[j] != rs[i+j] {
							t.Fatalf("record %d = %s, want %s", j, got[j].Email(), rs[i+j].Email())
						}
					}
					if q.Pages() != 4 {
						t.Errorf("pages %d, want 4 (page numbers go on from the position)", q.Pages())
					}
				})
			}
		})
	}
}

func TestListFromRefusesForeignPositions(t *testing.T) {
	rs := dataset(5)
	s := newListServer(t, rs, nil)
	c, _ := newClient(t, s.URL, nil)
	tests := map[string]Position{
		"no limit":                   {Page: 1},
		"first page with a cursor":   {Limit: 4, Page: 1, HasCursor: true, Cursor: cursorPrefix + "0"},
		"later page without cursor":  {Limit: 4, Page: 2},
		"item past the limit":        {Limit: 4, Page: 1, Item: 4},
		"item past the page's end":   {Limit: 4, Page: 2, HasCursor: true, Cursor: cursorPrefix + "4", Item: 2},
		"page size out of the range": {Limit: 5000, Page: 1},
	}
	for name, pos := range tests {
		t.Run(name, func(t *testing.T) {
			p := c.ListFrom(context.Background(), pos)
			defer p.Close()
			if p.Next() || !errors.Is(p.Err(), ErrInvalidArgument) {
				t.Errorf("Next went on or Err = %v; want ErrInvalidArgument", p.Err())
			}
		})
	}
}

// TestListSince: the updatedSince parameter is sent on every page with the
// cursor, and a System B without API v1.1 (400 on the first page) stops
// the Pager with ErrUpdatedSinceUnsupported, not ErrUnavailable.
func TestListSince(t *testing.T) {
	since := time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC)
	tests := []struct {
		name    string
		status  int // of every answer; 200 serves two pages
		since   time.Time
		wantQ   string // updatedSince seen on each request
		wantErr error
	}{
		{"v1.1 pages", http.StatusOK, since, "2026-03-01T12:00:00.0000005Z", nil},
		{"zero since lists all", http.StatusOK, time.Time{}, "", nil},
		{"v1 refuses the parameter", http.StatusBadRequest, since, "2026-03-01T12:00:00.0000005Z", ErrUpdatedSinceUnsupported},
		{"a 400 without the parameter is not about it", http.StatusBadRequest, time.Time{}, "", ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []string
			srv := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				seen = append(seen, r.URL.Query().Get("updatedSince"))
				if tt.status != http.StatusOK {
					w.WriteHeader(tt.status)
					return
				}
				if n == 1 {
					writeJSON(w, []byte(`{"items":[`+string(customerJSON("a@example.com"))+`],"nextCursor":"c1"}`))
					return
				}
				writeJSON(w, []byte(`{"items":[`+string(customerJSON("b@example.com"))+`],"nextCursor":null}`))
			})
			c, _ := newClient(t, srv.URL, func(cfg *Config) { cfg.DisablePrefetch = true })
			p := c.ListSince(context.Background(), 10, tt.since)
			defer p.Close()
			items := 0
			for p.Next() {
				items++
			}
			if tt.wantErr != nil {
				checkErr(t, p.Err(), tt.wantErr, -1)
				if items != 0 {
					t.Errorf("%d items before the error, want none", items)
				}
			} else if p.Err() != nil || items != 2 {
				t.Fatalf("items %d, err %v; want 2, nil", items, p.Err())
			}
			for i, q := range seen {
				if q != tt.wantQ {
					t.Errorf("request %d: updatedSince = %q, want %q", i+1, q, tt.wantQ)
				}
			}
		})
	}
}
