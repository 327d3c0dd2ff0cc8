package bsim

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
)

func TestAuth(t *testing.T) {
	sim, srv := newTestServer(t, Config{}, customer("a@x.com", "A"))
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token prefix only", "Bearer test", http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"no scheme", testToken, http.StatusUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK},
		{"scheme case-insensitive", "bearer " + testToken, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/customers/a@x.com", "/customers?limit=1", "/nowhere"} {
				status, h, _ := call(t, srv, http.MethodGet, path, "", tt.auth)
				want := tt.want
				if path == "/nowhere" && want == http.StatusOK {
					want = http.StatusNotFound
				}
				if status != want {
					t.Errorf("GET %s: status %d, want %d", path, status, want)
				}
				if status == http.StatusUnauthorized && h.Get("Content-Type") != "application/problem+json" {
					t.Errorf("401 Content-Type %q", h.Get("Content-Type"))
				}
			}
		})
	}
	if got := sim.Stats().Unauthorized; got != 15 {
		t.Errorf("Stats().Unauthorized = %d, want 15", got)
	}
}

func TestDefaultToken(t *testing.T) {
	if got := New(Config{}).Token(); got != DefaultToken {
		t.Errorf("Token() = %q, want DefaultToken", got)
	}
}

func TestGet(t *testing.T) {
	stored := []*merge.Record{
		customer("jörg@example.com", "Jörg"),
		customer("Mixed.Case+tag@Example.COM", "Mixed"),
		customer("slash/in@example.com", "Slash"),
	}
	_, srv := newTestServer(t, Config{}, stored...)
	tests := []struct {
		name, path string
		want       int
		wantDoc    *merge.Record
	}{
		{"exact", "/customers/" + url.PathEscape("jörg@example.com"), 200, stored[0]},
		{"upper-case non-ASCII", "/customers/" + url.PathEscape("JÖRG@Example.com"), 200, stored[0]},
		{"plus and mixed case", "/customers/" + url.PathEscape("mixed.case+tag@example.com"), 200, stored[1]},
		{"escaped slash", "/customers/slash%2Fin@example.com", 200, stored[2]},
		{"padded with spaces", "/customers/%20jörg@example.com%20", 200, stored[0]},
		{"missing", "/customers/nobody@example.com", 404, nil},
		{"empty email", "/customers/", 404, nil},
		{"raw slash is another path", "/customers/slash/in@example.com", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := call(t, srv, http.MethodGet, tt.path, "")
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, body)
			}
			if tt.wantDoc == nil {
				if h.Get("Content-Type") != "application/problem+json" {
					t.Errorf("Content-Type %q, want a problem", h.Get("Content-Type"))
				}
				return
			}
			if want := systemb.AppendCustomer(nil, tt.wantDoc); !bytes.Equal(body, want) {
				t.Errorf("body\n got %s\nwant %s", body, want)
			}
			if h.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", h.Get("Content-Type"))
			}
		})
	}
}

func TestListOrdering(t *testing.T) {
	// Stored in a scrambled order; listed by merge.Key byte-wise: ASCII
	// before the UTF-8 lead byte 0xC3 of "å" and "é".
	emails := []string{"Zed@x.com", "émile@x.com", "alice@x.com", "ÅSA@x.com", " Carol@X.com ", "jörg@example.com", "Bob@x.com"}
	want := []string{"alice@x.com", "Bob@x.com", " Carol@X.com ", "jörg@example.com", "Zed@x.com", "ÅSA@x.com", "émile@x.com"}
	var recs []*merge.Record
	for _, e := range emails {
		recs = append(recs, customer(e, "N"))
	}
	_, srv := newTestServer(t, Config{}, recs...)
	status, _, body := call(t, srv, http.MethodGet, "/customers", "")
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	p := decodePage(t, body)
	var got []string
	for _, it := range p.Items {
		got = append(got, emailOf(t, it))
	}
	if !slices.Equal(got, want) {
		t.Errorf("order\n got %q\nwant %q", got, want)
	}
	if p.NextCursor != nil {
		t.Errorf("nextCursor = %q, want null on the last page", *p.NextCursor)
	}
}

func TestPaginationCoversEachItemOnce(t *testing.T) {
	const n = 257
	_, srv := newTestServer(t, Config{}, manyCustomers(n)...)
	for _, limit := range []int{0, 1, 7, 100, 256, 257, 1000} { // 0: no limit parameter
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			size := limit
			if size == 0 {
				size = DefaultLimit
			}
			var keys []string
			cursor, pages := "", 0
			for {
				q := url.Values{}
				if limit != 0 {
					q.Set("limit", fmt.Sprint(limit))
				}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				status, _, body := call(t, srv, http.MethodGet, "/customers?"+q.Encode(), "")
				if status != http.StatusOK {
					t.Fatalf("page %d: status %d: %s", pages, status, body)
				}
				p := decodePage(t, body)
				pages++
				if len(p.Items) > size || len(p.Items) == 0 {
					t.Fatalf("page %d has %d items, limit %d", pages, len(p.Items), size)
				}
				for _, it := range p.Items {
					keys = append(keys, merge.Key(emailOf(t, it)))
				}
				if p.NextCursor == nil {
					break
				}
				cursor = *p.NextCursor
				if pages > n+1 {
					t.Fatal("pagination does not end")
				}
			}
			if len(keys) != n {
				t.Fatalf("got %d items, want %d", len(keys), n)
			}
			for i := 1; i < len(keys); i++ {
				if keys[i-1] >= keys[i] {
					t.Fatalf("items %d and %d out of order or repeated", i-1, i)
				}
			}
			if want := (n + size - 1) / size; pages != want {
				t.Errorf("%d pages, want %d", pages, want)
			}
		})
	}
}

func TestListValidation(t *testing.T) {
	_, srv := newTestServer(t, Config{}, manyCustomers(3)...)
	cursorFor := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, query string
		want        int
		wantItems   int
	}{
		{"default", "", 200, 3},
		{"limit 1", "limit=1", 200, 1},
		{"limit 1000", "limit=1000", 200, 3},
		{"limit 0", "limit=0", 400, 0},
		{"limit 1001", "limit=1001", 400, 0},
		{"negative limit", "limit=-1", 400, 0},
		{"limit not a number", "limit=ten", 400, 0},
		{"fractional limit", "limit=1.5", 400, 0},
		{"empty limit", "limit=", 400, 0},
		{"two limits", "limit=1&limit=2", 400, 0},
		{"cursor not base64", "cursor=%21%21%21", 400, 0},
		{"cursor without version", "cursor=" + cursorFor("user000001@example.com"), 400, 0},
		{"two cursors", "cursor=" + cursorFor("v1:a") + "&cursor=" + cursorFor("v1:b"), 400, 0},
		{"empty cursor is the first page", "cursor=", 200, 3},
		{"cursor past the end", "cursor=" + cursorFor("v1:zzz"), 200, 0},
		{"cursor between keys", "cursor=" + cursorFor("v1:user000000@example.com~"), 200, 2},
		{"unknown parameter ignored", "foo=bar", 200, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := call(t, srv, http.MethodGet, "/customers?"+tt.query, "")
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, body)
			}
			if status != http.StatusOK {
				if h.Get("Content-Type") != "application/problem+json" {
					t.Errorf("Content-Type %q, want a problem", h.Get("Content-Type"))
				}
				return
			}
			if p := decodePage(t, body); len(p.Items) != tt.wantItems {
				t.Errorf("%d items, want %d", len(p.Items), tt.wantItems)
			}
		})
	}
}

func TestPutGetDelete(t *testing.T) {
	sim, srv := newTestServer(t, Config{}, customer("b@x.com", "B"))
	path := "/customers/" + url.PathEscape("New.One@X.com")

	status, _, body := call(t, srv, http.MethodPut, path, `{"email":"new.one@x.com","firstName":"Nina","loyaltyTier":"gold","extra":1}`)
	if status != http.StatusCreated {
		t.Fatalf("first PUT: status %d: %s", status, body)
	}
	want := customer("new.one@x.com", "Nina")
	want.Values[merge.FieldCity], want.Values[merge.FieldMarketingOptIn] = "", ""
	want.Values[merge.FieldLoyaltyTier] = "gold"
	want.LastUpdated = testTime // Config.Now, as lastUpdated was absent
	if wantDoc := systemb.AppendCustomer(nil, want); !bytes.Equal(body, wantDoc) {
		t.Errorf("PUT answer\n got %s\nwant %s", body, wantDoc)
	}
	if _, _, got := call(t, srv, http.MethodGet, path, ""); !bytes.Equal(got, body) {
		t.Errorf("GET after PUT\n got %s\nwant %s", got, body)
	}

	status, _, body = call(t, srv, http.MethodPut, "/customers/new.one@x.com", `{"firstName":"Nora","lastUpdated":"2030-01-02T03:04:05Z"}`)
	if status != http.StatusOK {
		t.Fatalf("second PUT: status %d: %s", status, body)
	}
	r, err := systemb.UnmarshalCustomer(body)
	if err != nil {
		t.Fatal(err)
	}
	if r.Get(merge.FieldFirstName) != "Nora" || r.Email() != "new.one@x.com" || r.LastUpdated.Year() != 2030 {
		t.Errorf("second PUT stored %+v", r)
	}
	if sim.Len() != 2 {
		t.Errorf("Len() = %d, want 2", sim.Len())
	}
	_, _, body = call(t, srv, http.MethodGet, "/customers", "")
	if p := decodePage(t, body); len(p.Items) != 2 || emailOf(t, p.Items[1]) != "new.one@x.com" {
		t.Errorf("list after PUT: %s", body)
	}

	for _, bad := range []struct{ name, path, body string }{
		{"email mismatch", path, `{"email":"other@x.com"}`},
		{"not JSON", path, `{"email":`},
		{"not an object", path, `[1]`},
		{"wrong type", path, `{"firstName":1}`},
		{"bad lastUpdated", path, `{"lastUpdated":"yesterday"}`},
		{"empty email in path", "/customers/%20", `{}`},
	} {
		t.Run("rejects "+bad.name, func(t *testing.T) {
			if status, _, b := call(t, srv, http.MethodPut, bad.path, bad.body); status != http.StatusBadRequest {
				t.Errorf("status %d, want 400: %s", status, b)
			}
		})
	}
	t.Run("rejects a huge body", func(t *testing.T) {
		big := `{"firstName":"` + strings.Repeat("x", MaxLineBytes) + `"}`
		if status, _, _ := call(t, srv, http.MethodPut, path, big); status != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", status)
		}
	})

	if status, _, _ := call(t, srv, http.MethodDelete, path, ""); status != http.StatusNoContent {
		t.Errorf("DELETE: status %d, want 204", status)
	}
	if status, _, _ := call(t, srv, http.MethodGet, path, ""); status != http.StatusNotFound {
		t.Errorf("GET after DELETE: status %d, want 404", status)
	}
	if status, _, _ := call(t, srv, http.MethodDelete, path, ""); status != http.StatusNotFound {
		t.Errorf("second DELETE: status %d, want 404", status)
	}
	if status, h, _ := call(t, srv, http.MethodPost, "/customers", ""); status != http.StatusMethodNotAllowed || h.Get("Allow") != "GET" {
		t.Errorf("POST /customers: status %d Allow %q", status, h.Get("Allow"))
	}
	if st := sim.Stats(); st.Put != 9 || st.Delete != 2 || st.Get != 2 || st.List != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}

func TestLoad(t *testing.T) {
	good := jsonLines(customer("a@x.com", "A"), customer("b@x.com", "B"))
	tests := []struct {
		name    string
		input   []byte
		wantErr string // "" = success
	}{
		{"valid with blank lines", append(append([]byte("\n"), good...), "\n  \n"...), ""},
		{"not JSON", append(append([]byte{}, good...), "{oops\n"...), "line 3"},
		{"no lastUpdated", []byte(`{"email":"c@x.com"}` + "\n"), "line 1"},
		{"no email", []byte(`{"lastUpdated":"2024-01-01T00:00:00Z"}` + "\n"), "line 1"},
		{"same customer twice", jsonLines(customer("a@x.com", "A"), customer(" A@X.com", "A2")), "same customer as line 1"},
		{"line too long", []byte(`{"email":"` + strings.Repeat("x", MaxLineBytes) + `"}`), "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := New(Config{})
			if err := sim.Load(bytes.NewReader(jsonLines(customer("z@x.com", "Z")))); err != nil {
				t.Fatal(err)
			}
			err := sim.Load(bytes.NewReader(tt.input))
			if tt.wantErr == "" {
				if err != nil || sim.Len() != 3 {
					t.Fatalf("Load: %v, Len %d, want nil, 3", err, sim.Len())
				}
				return
			}
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error %v, want ErrBadInput naming %q", err, tt.wantErr)
			}
			if sim.Len() != 1 {
				t.Errorf("a failed Load changed the data: Len %d", sim.Len())
			}
		})
	}
	t.Run("upserts", func(t *testing.T) {
		sim := New(Config{})
		for _, first := range []string{"Old", "New"} {
			if err := sim.Load(bytes.NewReader(jsonLines(customer("A@x.com", first), customer("c@x.com", "C")))); err != nil {
				t.Fatal(err)
			}
		}
		doc, ok := sim.Customer("a@X.com")
		if !ok || !bytes.Contains(doc, []byte(`"New"`)) || sim.Len() != 2 {
			t.Errorf("after two loads: %s, %v, Len %d", doc, ok, sim.Len())
		}
		sim.Reset()
		if sim.Len() != 0 {
			t.Errorf("Reset left %d customers", sim.Len())
		}
	})
}

func TestServe(t *testing.T) {
	sim := New(Config{Token: testToken})
	if _, err := sim.Serve("0.0.0.0:0"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("Serve(0.0.0.0:0) = %v, want ErrNotLoopback", err)
	}
	srv, err := sim.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/customers", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestPatch(t *testing.T) {
	old := customer("Pat@x.com", "Pat")
	old.Values[merge.FieldPhone] = "+1 555 0100"
	old.LastUpdated = testTime.AddDate(-4, 0, 0)
	_, srv := newTestServer(t, Config{}, old)

	status, _, body := call(t, srv, http.MethodPatch, "/customers/pat@x.com", `{"phone":null,"loyaltyTier":"gold","address":{"postalCode":"75001"}}`)
	if status != http.StatusOK {
		t.Fatalf("PATCH: status %d: %s", status, body)
	}
	want := *old
	want.Values[merge.FieldPhone] = ""
	want.Values[merge.FieldLoyaltyTier] = "gold"
	want.Values[merge.FieldPostalCode] = "75001" // city kept
	want.LastUpdated = testTime                  // stamped with Config.Now
	if wantDoc := systemb.AppendCustomer(nil, &want); !bytes.Equal(body, wantDoc) {
		t.Errorf("PATCH answer\n got %s\nwant %s", body, wantDoc)
	}
	if _, _, got := call(t, srv, http.MethodGet, "/customers/pat@x.com", ""); !bytes.Equal(got, body) {
		t.Errorf("GET after PATCH\n got %s\nwant %s", got, body)
	}

	status, _, body = call(t, srv, http.MethodPatch, "/customers/pat@x.com", `{"lastUpdated":"2031-01-01T00:00:00Z"}`)
	if r, err := systemb.UnmarshalCustomer(body); status != http.StatusOK || err != nil || r.LastUpdated.Year() != 2031 || r.Get(merge.FieldLoyaltyTier) != "gold" {
		t.Errorf("PATCH with lastUpdated: %d %s", status, body)
	}
	for _, bad := range []struct {
		name, path, body string
		want             int
	}{
		{"missing customer", "/customers/nobody@x.com", `{"phone":"1"}`, http.StatusNotFound},
		{"not an object", "/customers/pat@x.com", `"x"`, http.StatusBadRequest},
		{"another email", "/customers/pat@x.com", `{"email":"other@x.com"}`, http.StatusBadRequest},
		{"wrong type", "/customers/pat@x.com", `{"address":"here"}`, http.StatusBadRequest},
	} {
		t.Run("rejects "+bad.name, func(t *testing.T) {
			if status, _, b := call(t, srv, http.MethodPatch, bad.path, bad.body); status != bad.want {
				t.Errorf("status %d, want %d: %s", status, bad.want, b)
			}
		})
	}
}
