package bsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/webhook"
)

// TestListUpdatedSince runs the real client's ListSince against the
// simulator: only customers changed at or after since, in join order,
// across cursor pages; a v1-only simulator answers 400, which the client
// reports as ErrUpdatedSinceUnsupported.
func TestListUpdatedSince(t *testing.T) {
	recs := manyCustomers(30)
	for i, r := range recs {
		r.LastUpdated = testTime.Add(time.Duration(i%3) * time.Minute) // every third at +2m
	}
	tests := []struct {
		name    string
		v1Only  bool
		since   time.Time
		want    int
		wantErr error
	}{
		{"changed since +2m", false, testTime.Add(2 * time.Minute), 10, nil},
		{"at or after: equal times included", false, testTime.Add(time.Minute), 20, nil},
		{"none changed", false, testTime.Add(time.Hour), 0, nil},
		{"zero since: all", false, time.Time{}, 30, nil},
		{"v1 refuses updatedSince", true, testTime, 0, systemb.ErrUpdatedSinceUnsupported},
		{"v1 still lists all", true, time.Time{}, 30, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newTestServer(t, Config{V1Only: tt.v1Only}, recs...)
			c, err := systemb.New(systemb.Config{BaseURL: srv.URL, Token: systemb.StaticToken(testToken)})
			if err != nil {
				t.Fatal(err)
			}
			p := c.ListSince(context.Background(), 4, tt.since)
			defer p.Close()
			var prev string
			n := 0
			for p.Next() {
				r := p.Record()
				if r == nil || r.LastUpdated.Before(tt.since) || merge.Key(r.Email()) <= prev {
					t.Fatalf("item %d: %+v is older than since or out of join order", n+1, r)
				}
				prev = merge.Key(r.Email())
				n++
			}
			if !errors.Is(p.Err(), tt.wantErr) || n != tt.want {
				t.Errorf("%d items, err %v; want %d, %v", n, p.Err(), tt.want, tt.wantErr)
			}
		})
	}
	t.Run("a bad time", func(t *testing.T) {
		_, srv := newTestServer(t, Config{}, recs...)
		if status, _, _ := call(t, srv, http.MethodGet, "/customers?updatedSince=yesterday", ""); status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", status)
		}
	})
}

// receiver is a webhook endpoint that verifies every delivery, answers the
// first fail of them 500, and keeps the accepted ones.
type receiver struct {
	mu       sync.Mutex
	fail     int
	attempts int
	bodies   []string
	ids      []string
	badSigs  int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	buf := new(bytes.Buffer)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	if _, err := webhook.Verify(r.Header.Get(webhook.HeaderSignature), []byte(buf.String()), [][]byte{[]byte("whsec-test")}, testTime); err != nil {
		rc.badSigs++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	rc.bodies = append(rc.bodies, buf.String())
	rc.ids = append(rc.ids, r.Header.Get(webhook.HeaderDelivery))
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) accepted() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.bodies)
}

// TestWebhookDeliveries: every change through the API is delivered signed,
// in order, with its type (a deletion with the last document); a non-2xx
// is retried after 1 s, then 2 s, with the same delivery id.
func TestWebhookDeliveries(t *testing.T) {
	var mu sync.Mutex
	var sleeps []time.Duration
	sleep := func(_ context.Context, d time.Duration) bool {
		mu.Lock()
		defer mu.Unlock()
		sleeps = append(sleeps, d)
		return true
	}
	sim, srv := newTestServer(t, Config{Sleep: sleep}, customer("ada@example.com", "Ada"))
	rc := &receiver{fail: 2}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	if err := sim.SetWebhook(WebhookConfig{URL: hook.URL, Secret: "whsec-test"}); err != nil {
		t.Fatal(err)
	}
	steps := []struct{ method, path, body string }{
		{http.MethodPatch, "/customers/ada@example.com", `{"firstName":"Ada Augusta"}`},
		{http.MethodPut, "/customers/grace@example.com", `{"firstName":"Grace"}`},
		{http.MethodDelete, "/customers/ada@example.com", ``},
	}
	for _, s := range steps {
		if status, _, body := call(t, srv, s.method, s.path, s.body); status >= 300 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, status, body)
		}
	}
	if status, _, _ := call(t, srv, http.MethodGet, "/customers/nobody@example.com", ""); status != http.StatusNotFound {
		t.Fatal("a read must not notify")
	}
	waitFor(t, "three accepted deliveries", func() bool { return rc.accepted() == 3 })

	rc.mu.Lock()
	defer rc.mu.Unlock()
	wantTypes := []string{"updated", "created", "deleted"}
	wantFirst := []string{"Ada Augusta", "Grace", "Ada Augusta"}
	for i, b := range rc.bodies {
		var d struct {
			Type     string          `json:"type"`
			Customer json.RawMessage `json:"customer"`
		}
		if err := json.Unmarshal([]byte(b), &d); err != nil {
			t.Fatal(err)
		}
		rec, err := systemb.UnmarshalCustomer(d.Customer)
		if err != nil || d.Type != wantTypes[i] || rec.Get(merge.FieldFirstName) != wantFirst[i] {
			t.Errorf("delivery %d: type %q customer %+v (%v), want %s of %s", i+1, d.Type, rec, err, wantTypes[i], wantFirst[i])
		}
	}
	if rc.attempts != 5 || rc.badSigs != 0 || rc.ids[0] != "sim-1" || rc.ids[2] != "sim-3" {
		t.Errorf("attempts %d, bad signatures %d, ids %v; want 5, 0, sim-1..3", rc.attempts, rc.badSigs, rc.ids)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sleeps) != 2 || sleeps[0] != time.Second || sleeps[1] != 2*time.Second {
		t.Errorf("waits %v, want [1s 2s]", sleeps)
	}
	if st := sim.WebhookStats(); st.Sent != 3 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestWebhookGivesUp: a receiver that never accepts gets WebhookAttempts
// attempts, with waits doubling up to WebhookMaxWait.
func TestWebhookGivesUp(t *testing.T) {
	var mu sync.Mutex
	var sleeps []time.Duration
	sim, srv := newTestServer(t, Config{Sleep: func(_ context.Context, d time.Duration) bool {
		mu.Lock()
		defer mu.Unlock()
		sleeps = append(sleeps, d)
		return true
	}}, customer("ada@example.com", "Ada"))
	rc := &receiver{fail: 1 << 30}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	if err := sim.SetWebhook(WebhookConfig{URL: hook.URL, Secret: "whsec-test"}); err != nil {
		t.Fatal(err)
	}
	call(t, srv, http.MethodPatch, "/customers/ada@example.com", `{"city":"Leeds"}`)
	waitFor(t, "the delivery given up", func() bool { return sim.WebhookStats().Failed == 1 })
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if len(sleeps) != len(want) {
		t.Fatalf("waits %v, want %v", sleeps, want)
	}
	for i := range want {
		if sleeps[i] != want[i] {
			t.Errorf("waits %v, want %v", sleeps, want)
			break
		}
	}
}

func TestWebhookAdmin(t *testing.T) {
	sim, srv := newTestServer(t, Config{})
	tests := []struct {
		name, body string
		status     int
		wantURL    string
	}{
		{"set", `{"url":"http://127.0.0.1:3000/webhooks/system-b","secret":"s"}`, http.StatusNoContent, "http://127.0.0.1:3000/webhooks/system-b"},
		{"not a URL", `{"url":"ftp://x"}`, http.StatusBadRequest, "http://127.0.0.1:3000/webhooks/system-b"},
		{"unknown field", `{"uri":"http://x"}`, http.StatusBadRequest, "http://127.0.0.1:3000/webhooks/system-b"},
		{"off", `{"url":""}`, http.StatusNoContent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, _, body := call(t, srv, http.MethodPut, "/_sim/webhook", tt.body); status != tt.status {
				t.Fatalf("PUT: %d %s, want %d", status, body, tt.status)
			}
			if got := sim.Webhook().URL; got != tt.wantURL {
				t.Errorf("URL %q, want %q", got, tt.wantURL)
			}
			_, _, body := call(t, srv, http.MethodGet, "/_sim/webhook", "")
			if strings.Contains(string(body), `"s"`) || !strings.Contains(string(body), tt.wantURL) {
				t.Errorf("GET /_sim/webhook = %s: want the URL and never the secret", body)
			}
		})
	}
}
