package bsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/systemb"
)

const (
	itemPath = "/customers/a@x.com"
	listPath = "/customers?limit=10"
)

func TestErrorFaults(t *testing.T) {
	tests := []struct {
		name       string
		faults     Faults
		wantStatus int
		wantRetry  string
	}{
		{"error rate 1 default status", Faults{ErrorRate: 1}, 503, ""},
		{"error rate 1 status 500", Faults{ErrorRate: 1, Status: 500}, 500, ""},
		{"429 with Retry-After", Faults{ErrorRate: 1, Status: 429, RetryAfter: "3600"}, 429, "3600"},
		{"error rate 0 serves", Faults{ErrorRate: 0, Status: 500}, 200, ""},
		{"latency then serves", Faults{LatencyMs: 1}, 200, ""},
		{"redirect to another host", Faults{Redirect: "http://elsewhere.invalid/customers"}, 302, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, srv := newTestServer(t, Config{}, customer("a@x.com", "A"))
			if err := sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{itemPath, listPath} {
				status, h, body := call(t, srv, http.MethodGet, path, "")
				if status != tt.wantStatus {
					t.Errorf("GET %s: status %d, want %d", path, status, tt.wantStatus)
				}
				if got := h.Get("Retry-After"); got != tt.wantRetry {
					t.Errorf("GET %s: Retry-After %q, want %q", path, got, tt.wantRetry)
				}
				if status >= 400 && (h.Get("Content-Type") != "application/problem+json" || !json.Valid(body)) {
					t.Errorf("GET %s: not a problem document: %s", path, body)
				}
				if status == 302 && h.Get("Location") != tt.faults.Redirect {
					t.Errorf("Location %q", h.Get("Location"))
				}
			}
			wantInjected := int64(2)
			if tt.wantStatus == 200 {
				wantInjected = 0
			}
			if got := sim.Stats().Injected; got != wantInjected {
				t.Errorf("Stats().Injected = %d, want %d", got, wantInjected)
			}
		})
	}
}

func TestErrorRateUsesRand(t *testing.T) {
	draws := []float64{0.1, 0.9, 0.49, 0.5, 0.7, 0.2}
	i := 0
	next := func() float64 { d := draws[i%len(draws)]; i++; return d }
	sim, srv := newTestServer(t, Config{Rand: next}, customer("a@x.com", "A"))
	if err := sim.SetFaults(Faults{ErrorRate: 0.5}); err != nil {
		t.Fatal(err)
	}
	var got []int
	for range draws {
		status, _, _ := call(t, srv, http.MethodGet, itemPath, "")
		got = append(got, status)
	}
	want := []int{503, 200, 503, 200, 200, 503} // fails when the draw < 0.5
	if !slices.Equal(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
}

func TestErrorRateSeedIsReproducible(t *testing.T) {
	run := func() []int {
		sim, srv := newTestServer(t, Config{Seed: 42}, customer("a@x.com", "A"))
		if err := sim.SetFaults(Faults{ErrorRate: 0.3}); err != nil {
			t.Fatal(err)
		}
		var got []int
		for range 40 {
			status, _, _ := call(t, srv, http.MethodGet, itemPath, "")
			got = append(got, status)
		}
		return got
	}
	a, b := run(), run()
	fails := 0
	for k := range a {
		if a[k] != b[k] {
			t.Fatalf("two runs with one seed differ at request %d", k)
		}
		if a[k] == 503 {
			fails++
		}
	}
	if fails == 0 || fails == len(a) {
		t.Errorf("%d of %d requests failed at errorRate 0.3", fails, len(a))
	}
}

func TestFailNext(t *testing.T) {
	sim, srv := newTestServer(t, Config{}, customer("a@x.com", "A"))
	if err := sim.SetFaults(Faults{FailNext: 3}); err != nil {
		t.Fatal(err)
	}
	var got []int
	for range 5 {
		status, _, _ := call(t, srv, http.MethodGet, itemPath, "")
		got = append(got, status)
	}
	if want := []int{503, 503, 503, 200, 200}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if st := sim.Stats(); st.Requests != 5 || st.Injected != 3 {
		t.Errorf("Stats() = %+v, want 5 requests, 3 injected", st)
	}
	if f := sim.Faults(); f.FailNext != 0 {
		t.Errorf("Faults().FailNext = %d after firing, want 0", f.FailNext)
	}
}

func TestDown(t *testing.T) {
	sim, srv := newTestServer(t, Config{}, customer("a@x.com", "A"))
	if err := sim.SetFaults(Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	resp, err := send(context.Background(), srv, http.MethodGet, itemPath, "")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("down: got status %d, want a transport error", resp.StatusCode)
	}
	if sim.Stats().Injected < 1 {
		t.Error("down was not counted")
	}
	if err := sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := call(t, srv, http.MethodGet, itemPath, ""); status != 200 {
		t.Errorf("after down is cleared: status %d", status)
	}
}

func TestHang(t *testing.T) {
	type result struct {
		status int
		err    error
	}
	start := func(t *testing.T, ctx context.Context, do func(context.Context) (*http.Response, error)) chan result {
		t.Helper()
		done := make(chan result, 1)
		go func() {
			resp, err := do(ctx)
			if err != nil {
				done <- result{err: err}
				return
			}
			resp.Body.Close()
			done <- result{status: resp.StatusCode}
		}()
		return done
	}
	tests := []struct {
		name    string
		release func(sim *Sim, cancel context.CancelFunc)
		want    int   // status, or 0 for an error
		wantErr error // when want is 0
	}{
		{"released by clearing the fault", func(sim *Sim, _ context.CancelFunc) { _ = sim.SetFaults(Faults{}) }, 200, nil},
		{"released to the new faults", func(sim *Sim, _ context.CancelFunc) { _ = sim.SetFaults(Faults{ErrorRate: 1, Status: 502}) }, 502, nil},
		{"client gives up", func(_ *Sim, cancel context.CancelFunc) { cancel() }, 0, context.Canceled},
		{"simulator closed", func(sim *Sim, _ context.CancelFunc) { sim.Close() }, 503, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, srv := newTestServer(t, Config{}, customer("a@x.com", "A"))
			if err := sim.SetFaults(Faults{Hang: true}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := start(t, ctx, func(ctx context.Context) (*http.Response, error) {
				return send(ctx, srv, http.MethodGet, itemPath, "")
			})
			waitFor(t, "the request to hang", func() bool { return sim.Stats().Injected == 1 })
			select {
			case r := <-done:
				t.Fatalf("hang answered before release: %+v", r)
			default:
			}
			tt.release(sim, cancel)
			r := <-done
			if tt.want == 0 {
				if !errors.Is(r.err, tt.wantErr) {
					t.Errorf("error %v, want %v", r.err, tt.wantErr)
				}
				return
			}
			if r.err != nil || r.status != tt.want {
				t.Errorf("got %+v, want status %d", r, tt.want)
			}
		})
	}
}

func TestLatencyHoldsUntilClientGivesUp(t *testing.T) {
	sim, srv := newTestServer(t, Config{}, customer("a@x.com", "A"))
	if err := sim.SetFaults(Faults{LatencyMs: MaxLatencyMs}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		resp, err := send(ctx, srv, http.MethodGet, itemPath, "")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the request to arrive", func() bool { return sim.Stats().Requests == 1 })
	select {
	case err := <-done:
		t.Fatalf("answered during a ten-minute latency: %v", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestBodyFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, body []byte, readErr error)
	}{
		{"malformed", Faults{Malformed: true}, func(t *testing.T, body []byte, readErr error) {
			if readErr != nil || json.Valid(body) {
				t.Errorf("want a complete body that is not JSON, got %v %q", readErr, body)
			}
		}},
		{"truncated", Faults{Truncated: true}, func(t *testing.T, body []byte, readErr error) {
			if !errors.Is(readErr, io.ErrUnexpectedEOF) {
				t.Errorf("read error %v, want unexpected EOF", readErr)
			}
			if len(body) == 0 || json.Valid(body) {
				t.Errorf("want half a body, got %q", body)
			}
		}},
		{"oversized", Faults{Oversized: true, OversizedBytes: 1 << 20}, func(t *testing.T, body []byte, readErr error) {
			if readErr != nil || len(body) != 1<<20 || !json.Valid(body) {
				t.Errorf("want 1 MiB of valid JSON, got %d bytes, %v", len(body), readErr)
			}
		}},
		{"bad lastUpdated", Faults{BadLastUpdated: true}, func(t *testing.T, body []byte, readErr error) {
			if readErr != nil || !json.Valid(body) {
				t.Fatalf("want valid JSON, got %v %q", readErr, body)
			}
			doc := body
			if p := (page{}); json.Unmarshal(body, &p) == nil && len(p.Items) > 0 {
				doc = p.Items[0]
			}
			if _, err := systemb.UnmarshalCustomer(doc); !errors.Is(err, systemb.ErrBadData) {
				t.Errorf("decoding gave %v, want ErrBadData", err)
			}
		}},
	}
	for _, tt := range tests {
		for _, path := range []string{itemPath, listPath} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				sim, srv := newTestServer(t, Config{}, customer("a@x.com", "A"), customer("b@x.com", "B"))
				if err := sim.SetFaults(tt.faults); err != nil {
					t.Fatal(err)
				}
				resp, err := send(context.Background(), srv, http.MethodGet, path, "")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d, want 200", resp.StatusCode)
				}
				body, readErr := io.ReadAll(resp.Body)
				tt.check(t, body, readErr)
				if got := sim.Stats().Injected; got != 1 {
					t.Errorf("Stats().Injected = %d, want 1", got)
				}
				// A 404 is not broken by body faults.
				if status, _, _ := call(t, srv, http.MethodGet, "/customers/nobody@x.com", ""); status != 404 {
					t.Errorf("missing customer under %s: status %d, want 404", tt.name, status)
				}
			})
		}
	}
}

func TestSetFaultsValidation(t *testing.T) {
	tests := []struct {
		name string
		f    Faults
	}{
		{"negative latency", Faults{LatencyMs: -1}},
		{"latency too long", Faults{LatencyMs: MaxLatencyMs + 1}},
		{"error rate above 1", Faults{ErrorRate: 1.5}},
		{"negative error rate", Faults{ErrorRate: -0.1}},
		{"status 200", Faults{Status: 200}},
		{"status 600", Faults{Status: 600}},
		{"negative failNext", Faults{FailNext: -1}},
		{"negative oversized bytes", Faults{OversizedBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := New(Config{})
			if err := sim.SetFaults(Faults{Down: true}); err != nil {
				t.Fatal(err)
			}
			if err := sim.SetFaults(tt.f); !errors.Is(err, ErrBadFaults) {
				t.Errorf("SetFaults = %v, want ErrBadFaults", err)
			}
			if !sim.Faults().Down {
				t.Error("a rejected SetFaults changed the faults")
			}
		})
	}
	got := New(Config{}).Faults()
	if got.Status != 503 || got.OversizedBytes != DefaultOversizedBytes {
		t.Errorf("default faults %+v", got)
	}
}

func TestAdminEndpoints(t *testing.T) {
	sim, srv := newTestServer(t, Config{}, customer("a@x.com", "A"))
	noAuth := ""

	status, _, body := call(t, srv, http.MethodPut, "/_sim/faults", `{"errorRate":1,"status":500,"retryAfter":"5"}`, noAuth)
	if status != 200 {
		t.Fatalf("PUT /_sim/faults: %d %s", status, body)
	}
	var f Faults
	if err := json.Unmarshal(body, &f); err != nil || f.ErrorRate != 1 || f.Status != 500 || f.RetryAfter != "5" {
		t.Errorf("PUT answer %s", body)
	}
	if got := sim.Faults(); got.Status != 500 || got.ErrorRate != 1 {
		t.Errorf("Faults() = %+v after PUT", got)
	}
	if status, _, _ := call(t, srv, http.MethodGet, itemPath, ""); status != 500 {
		t.Errorf("API under errorRate 1: status %d, want 500", status)
	}
	if status, _, body := call(t, srv, http.MethodGet, "/_sim/faults", "", noAuth); status != 200 || !strings.Contains(string(body), `"status":500`) {
		t.Errorf("GET /_sim/faults: %d %s", status, body)
	}

	var st Stats
	status, _, body = call(t, srv, http.MethodGet, "/_sim/stats", "", noAuth)
	if err := json.Unmarshal(body, &st); status != 200 || err != nil || st.Requests != 1 || st.Injected != 1 {
		t.Errorf("GET /_sim/stats: %d %s", status, body)
	}

	for _, bad := range []struct{ name, body string }{
		{"unknown field", `{"errorRat":1}`},
		{"invalid value", `{"errorRate":2}`},
		{"not JSON", `down`},
	} {
		t.Run("rejects "+bad.name, func(t *testing.T) {
			if status, h, _ := call(t, srv, http.MethodPut, "/_sim/faults", bad.body, noAuth); status != 400 || h.Get("Content-Type") != "application/problem+json" {
				t.Errorf("status %d, want a 400 problem", status)
			}
		})
	}
	if sim.Faults().Status != 500 {
		t.Error("a rejected PUT changed the faults")
	}

	if status, _, _ := call(t, srv, http.MethodPost, "/_sim/reset", "", noAuth); status != http.StatusNoContent {
		t.Errorf("POST /_sim/reset: status %d", status)
	}
	if got := sim.Faults(); got.ErrorRate != 0 || got.Status != 503 {
		t.Errorf("faults after reset %+v", got)
	}
	if got := sim.Stats(); got != (Stats{}) {
		t.Errorf("stats after reset %+v", got)
	}
	if status, _, body := call(t, srv, http.MethodGet, "/_sim/", "", noAuth); status != 200 || !strings.Contains(string(body), "/_sim/faults") {
		t.Errorf("GET /_sim/: %d %s", status, body)
	}
	if status, _, _ := call(t, srv, http.MethodDelete, "/_sim/faults", "", noAuth); status != 404 {
		t.Errorf("DELETE /_sim/faults: status %d, want 404", status)
	}
	if got := sim.Stats().Requests; got != 0 {
		t.Errorf("admin requests were counted: %d", got)
	}
}

// TestConfigLatency: Config.Latency delays every API request, never the
// admin paths, and the latencyMs fault adds to it (waits recorded through
// Config.Sleep, not timed).
func TestConfigLatency(t *testing.T) {
	var mu sync.Mutex
	var waits []time.Duration
	cfg := Config{Latency: 30 * time.Millisecond, Sleep: func(_ context.Context, d time.Duration) bool {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return true
	}}
	sim, srv := newTestServer(t, cfg, manyCustomers(5)...)
	if sim.Latency() != 30*time.Millisecond {
		t.Fatalf("Latency() = %v", sim.Latency())
	}
	tests := []struct {
		name   string
		faults Faults
		path   string
		want   []time.Duration
	}{
		{"a list page", Faults{}, "/customers?limit=2", []time.Duration{30 * time.Millisecond}},
		{"a get", Faults{}, itemPath, []time.Duration{30 * time.Millisecond}},
		{"with the latency fault", Faults{LatencyMs: 20}, "/customers?limit=2", []time.Duration{30 * time.Millisecond, 20 * time.Millisecond}},
		{"the admin path", Faults{}, "/_sim/faults", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := sim.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			waits = nil
			mu.Unlock()
			call(t, srv, http.MethodGet, tc.path, "")
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(waits, tc.want) {
				t.Errorf("waits %v, want %v", waits, tc.want)
			}
		})
	}
}
