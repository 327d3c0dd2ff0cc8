package systemb

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"

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
}

const cursorPrefix = "c+/=&?# ü:"

func newListServer(t *testing.T, rs []merge.Record, mutate func(page int, body []byte) []byte) *listServer {
	t.Helper()
	ls := new(listServer)
	ls.server = newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/customers" || r.Header.Get("Authorization") != "Bearer "+testToken {
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

// collect drains p.
func collect(p *Pager) []merge.Record {
	var got []merge.Record
	for p.Next() {
		got = append(got, *p.Record())
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
