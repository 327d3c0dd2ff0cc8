package bsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// callIfMatch sends one request with the test token and, unless ifMatch is
// nil, an If-Match header; it returns the status, the ETag and the body.
func callIfMatch(t *testing.T, srv *httptest.Server, method, path, body string, ifMatch *string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if ifMatch != nil {
		req.Header.Set("If-Match", *ifMatch)
	}
	resp, err := srv.Client().Do(req)
	status, h, b := readAnswer(t, method+" "+path, resp, err)
	return status, h.Get("ETag"), b
}

func ptr(s string) *string { return &s }

func TestETagChangesOnEveryWrite(t *testing.T) {
	_, srv := newTestServer(t, Config{}, customer("pat@x.com", "Pat"), customer("kim@x.com", "Kim"))
	const path = "/customers/pat@x.com"
	status, first, _ := callIfMatch(t, srv, http.MethodGet, path, "", nil)
	if status != http.StatusOK || !strings.HasPrefix(first, `"`) || !strings.HasSuffix(first, `"`) {
		t.Fatalf("GET: status %d ETag %q; want 200 and a strong ETag", status, first)
	}
	if _, again, _ := callIfMatch(t, srv, http.MethodGet, path, "", nil); again != first {
		t.Errorf("ETag changed without a write: %q then %q", first, again)
	}
	if _, other, _ := callIfMatch(t, srv, http.MethodGet, "/customers/kim@x.com", "", nil); other == first {
		t.Errorf("two customers share the ETag %q", first)
	}
	// The same body twice: the document is the same, the ETag still changes.
	_, e1, _ := callIfMatch(t, srv, http.MethodPatch, path, `{"loyaltyTier":"gold"}`, nil)
	_, e2, _ := callIfMatch(t, srv, http.MethodPatch, path, `{"loyaltyTier":"gold"}`, nil)
	_, e3, _ := callIfMatch(t, srv, http.MethodPut, path, `{"firstName":"Pat"}`, nil)
	seen := map[string]bool{first: true}
	for _, e := range []string{e1, e2, e3} {
		if e == "" || seen[e] {
			t.Errorf("write answered ETag %q, want a new one (seen %v)", e, seen)
		}
		seen[e] = true
	}
	if _, got, _ := callIfMatch(t, srv, http.MethodGet, path, "", nil); got != e3 {
		t.Errorf("GET after the writes: ETag %q, want the last write's %q", got, e3)
	}
}

func TestIfMatch(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		ifMatch func(current string) *string
		want    int
	}{
		{"PATCH with the current ETag", http.MethodPatch, func(c string) *string { return &c }, http.StatusOK},
		{"PATCH with a stale ETag", http.MethodPatch, func(string) *string { return ptr(`"r999999"`) }, http.StatusPreconditionFailed},
		{"PATCH with the ETag made weak", http.MethodPatch, func(c string) *string { return ptr("W/" + c) }, http.StatusPreconditionFailed},
		{"PATCH with a list holding the current ETag", http.MethodPatch, func(c string) *string { return ptr(`"x", ` + c) }, http.StatusOK},
		{"PATCH with *", http.MethodPatch, func(string) *string { return ptr("*") }, http.StatusOK},
		{"PATCH without If-Match is unconditional", http.MethodPatch, func(string) *string { return nil }, http.StatusOK},
		{"PUT with a stale ETag", http.MethodPut, func(string) *string { return ptr(`"r999999"`) }, http.StatusPreconditionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, srv := newTestServer(t, Config{}, customer("pat@x.com", "Pat"))
			const path = "/customers/pat@x.com"
			before, _ := sim.Customer("pat@x.com")
			_, etag, _ := callIfMatch(t, srv, http.MethodGet, path, "", nil)
			status, _, body := callIfMatch(t, srv, tt.method, path, `{"firstName":"Patricia"}`, tt.ifMatch(etag))
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, body)
			}
			after, _ := sim.Customer("pat@x.com")
			changed := string(before) != string(after)
			if changed != (tt.want == http.StatusOK) {
				t.Errorf("stored record changed = %v with status %d", changed, status)
			}
			wantPatches, want412 := int64(0), int64(0)
			if tt.method == http.MethodPatch && tt.want == http.StatusOK {
				wantPatches = 1
			}
			if tt.want == http.StatusPreconditionFailed {
				want412 = 1
			}
			if got := sim.PatchCount("PAT@x.com "); got != wantPatches {
				t.Errorf("PatchCount = %d, want %d", got, wantPatches)
			}
			if got := sim.Stats().PreconditionFailed; got != want412 {
				t.Errorf("Stats().PreconditionFailed = %d, want %d", got, want412)
			}
		})
	}
	t.Run("If-Match on a missing customer", func(t *testing.T) {
		_, srv := newTestServer(t, Config{})
		if status, _, _ := callIfMatch(t, srv, http.MethodPatch, "/customers/nobody@x.com", `{"firstName":"X"}`, ptr("*")); status != http.StatusPreconditionFailed {
			t.Errorf("status %d, want 412", status)
		}
	})
}

func TestPatchCountsAndNoPatch(t *testing.T) {
	sim, srv := newTestServer(t, Config{}, customer("pat@x.com", "Pat"), customer("kim@x.com", "Kim"))
	for range 2 {
		callIfMatch(t, srv, http.MethodPatch, "/customers/pat@x.com", `{"loyaltyTier":"gold"}`, nil)
	}
	callIfMatch(t, srv, http.MethodPatch, "/customers/kim@x.com", `{"loyaltyTier":"gold"}`, nil)
	callIfMatch(t, srv, http.MethodPut, "/customers/kim@x.com", `{"firstName":"Kim"}`, nil)

	stats := func(email string) int64 {
		t.Helper()
		status, _, body := call(t, srv, http.MethodGet, "/_sim/stats/patches?email="+email, "", "")
		var got struct{ Patches int64 }
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
			t.Fatalf("GET /_sim/stats/patches: %d %s", status, body)
		}
		return got.Patches
	}
	for email, want := range map[string]int64{"pat@x.com": 2, "kim@x.com": 1, "nobody@x.com": 0} {
		if got := sim.PatchCount(email); got != want {
			t.Errorf("PatchCount(%s) = %d, want %d", email, got, want)
		}
		if got := stats(email); got != want {
			t.Errorf("/_sim/stats/patches for %s = %d, want %d", email, got, want)
		}
	}
	if st := sim.Stats(); st.Patch != 3 || st.Put != 4 {
		t.Errorf("Stats() = %+v, want patch 3, put 4", st)
	}
	if status, _, _ := call(t, srv, http.MethodGet, "/_sim/stats/patches", "", ""); status != http.StatusBadRequest {
		t.Errorf("stats/patches without an email: %d, want 400", status)
	}

	if err := sim.SetFaults(Faults{NoPatch: true}); err != nil {
		t.Fatal(err)
	}
	before, _ := sim.Customer("pat@x.com")
	if status, _, body := callIfMatch(t, srv, http.MethodPatch, "/customers/pat@x.com", `{"loyaltyTier":"silver"}`, ptr("*")); status != http.StatusMethodNotAllowed {
		t.Errorf("PATCH under noPatch: %d %s, want 405", status, body)
	}
	if after, _ := sim.Customer("pat@x.com"); string(after) != string(before) || sim.PatchCount("pat@x.com") != 2 {
		t.Errorf("PATCH under noPatch changed the customer or was counted as applied")
	}
	if status, _, _ := callIfMatch(t, srv, http.MethodGet, "/customers/pat@x.com", "", nil); status != http.StatusOK {
		t.Errorf("GET under noPatch: %d, want 200", status)
	}

	sim.ResetStats()
	if got := sim.PatchCount("pat@x.com"); got != 0 {
		t.Errorf("PatchCount after ResetStats = %d", got)
	}
}
