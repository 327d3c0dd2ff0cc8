package load

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/loadgen/internal/fakeapi"
)

// newRun returns a fake service and a Config against it that stops only at
// maxRequests (the duration is a minute: the tests never wait for it).
func newRun(t *testing.T, maxRequests int64) (*fakeapi.Server, Config) {
	t.Helper()
	srv := fakeapi.New()
	t.Cleanup(srv.Close)
	w, err := NewWorkload(DefaultMix, testPools())
	if err != nil {
		t.Fatal(err)
	}
	return srv, Config{
		URL: srv.URL, Concurrency: 8, Duration: time.Minute, MaxRequests: maxRequests,
		Workload: w, Sim: &Sim{URL: srv.URL},
	}
}

var faults = json.RawMessage(`{"errorRate":0.2,"status":503}`)

func TestRunHealthyStopsAtMaxRequests(t *testing.T) {
	srv, cfg := newRun(t, 200)
	res, err := Run(context.Background(), cfg, Phase{Name: "healthy"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || len(res.Failures) > 0 {
		t.Errorf("healthy phase failed: %v", res.Failures)
	}
	if res.Requests != 200 || srv.Lookups() != 200 {
		t.Errorf("requests = %d, server saw %d, want 200 each", res.Requests, srv.Lookups())
	}
	if res.StoppedBy != "max-requests" {
		t.Errorf("stopped by %q, want max-requests", res.StoppedBy)
	}
	// The first 200 picks of 60/20/20 are exactly 120/40/40.
	if want := map[Kind]int64{Existing: 120, Missing: 40, Conflicting: 40}; !maps.Equal(res.ByKind, want) {
		t.Errorf("by kind = %v, want %v", res.ByKind, want)
	}
	if want := map[string]int64{"200": 160, "404": 40}; !maps.Equal(res.Status, want) {
		t.Errorf("status = %v, want %v", res.Status, want)
	}
	if res.WithConflicts != 160 || res.Partial != 0 {
		t.Errorf("withConflicts = %d, partial = %d, want 160 and 0", res.WithConflicts, res.Partial)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency p50 %v p99 %v max %v: not ordered", res.Latency.P50, res.Latency.P99, res.Latency.Max)
	}
	if res.SystemB == nil || res.SystemB.Requests != 200 {
		t.Errorf("System B counters = %+v, want the simulator's 200", res.SystemB)
	}
	// No worker is left running: nothing more arrives.
	time.Sleep(20 * time.Millisecond)
	if srv.Lookups() != 200 {
		t.Errorf("server saw %d lookups after Run returned, want 200", srv.Lookups())
	}
}

func TestRunFailsThePhase(t *testing.T) {
	tests := []struct {
		name        string
		script      func(n int64) int
		partial     bool
		phase       Phase
		injected    int64
		wantFailure string
		wantStatus  string
		wantBad     string
	}{
		{
			name:   "a 5xx in the healthy phase",
			script: when(func(n int64) bool { return n%10 == 3 }, 503),
			phase:  Phase{Name: "healthy"}, wantFailure: "answers were 5xx (503=", wantStatus: "503",
		},
		{
			name:   "a single 500",
			script: when(func(n int64) bool { return n == 42 }, 500),
			phase:  Phase{Name: "healthy"}, wantFailure: "1 answers were 5xx (500=1)", wantStatus: "500",
		},
		{
			name:   "a 5xx in the faults phase",
			script: when(func(n int64) bool { return n%7 == 0 }, 502),
			phase:  Phase{Name: "faults", Faults: faults, Degraded: true}, injected: 5, wantFailure: "answers were 5xx (502=",
		},
		{
			name:   "transport errors",
			script: when(func(n int64) bool { return n%20 == 1 }, fakeapi.Drop),
			phase:  Phase{Name: "healthy"}, wantFailure: "transport errors",
		},
		{
			name:   "a 4xx that is not a missing customer's 404",
			script: when(func(n int64) bool { return n%10 == 0 }, 429),
			phase:  Phase{Name: "healthy"}, wantFailure: "answers the rule does not allow", wantBad: "existing→429",
		},
		{
			name:    "partial answers while System B is healthy",
			partial: true,
			phase:   Phase{Name: "healthy"}, wantFailure: "answers the rule does not allow", wantBad: "existing→200 partial",
		},
		{
			name:  "faults that were never injected",
			phase: Phase{Name: "faults", Faults: faults, Degraded: true}, wantFailure: "injected no errors",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cfg := newRun(t, 100)
			srv.Script, srv.Partial, srv.Injected = tt.script, tt.partial, tt.injected
			res, err := Run(context.Background(), cfg, tt.phase)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK {
				t.Fatalf("phase passed, want a failure containing %q; result %+v", tt.wantFailure, res)
			}
			if !slices.ContainsFunc(res.Failures, func(f string) bool { return strings.Contains(f, tt.wantFailure) }) {
				t.Errorf("failures %q, want one containing %q", res.Failures, tt.wantFailure)
			}
			if tt.wantStatus != "" && res.Status[tt.wantStatus] == 0 {
				t.Errorf("status %v has no %s", res.Status, tt.wantStatus)
			}
			if tt.wantBad != "" && res.Unexpected[tt.wantBad] == 0 {
				t.Errorf("unexpected %v has no %q", res.Unexpected, tt.wantBad)
			}
			if res.Requests != 100 {
				t.Errorf("requests = %d, want 100 (failures do not stop the phase early)", res.Requests)
			}
			for e := range res.Errors {
				if strings.Contains(e, "@") || strings.Contains(e, "/customer/") {
					t.Errorf("error text %q names a customer or URL", e)
				}
			}
		})
	}
}

func TestRunFaultsPhase(t *testing.T) {
	srv, cfg := newRun(t, 50)
	srv.Partial, srv.Injected = true, 9
	res, err := Run(context.Background(), cfg, Phase{Name: "faults", Faults: faults, Degraded: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Errorf("faults phase with partial answers failed: %v (unexpected %v)", res.Failures, res.Unexpected)
	}
	if res.Partial != 50 {
		t.Errorf("partial = %d, want 50", res.Partial)
	}
	want := []string{
		"POST /_sim/reset",
		`PUT /_sim/faults {"errorRate":0.2,"status":503}`,
		"GET /_sim/stats",
		"POST /_sim/reset",
	}
	if got := srv.Admin(); !slices.Equal(got, want) {
		t.Errorf("simulator calls = %q, want %q", got, want)
	}
	if res.SystemB == nil || res.SystemB.Injected != 9 {
		t.Errorf("System B counters = %+v, want injected 9", res.SystemB)
	}
}

func TestRunStopsAtTheDuration(t *testing.T) {
	srv, cfg := newRun(t, 0)
	cfg.Duration = 50 * time.Millisecond
	res, err := Run(context.Background(), cfg, Phase{Name: "healthy"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StoppedBy != "duration" || !res.OK {
		t.Errorf("stopped by %q, ok %t (%v); want duration, ok", res.StoppedBy, res.OK, res.Failures)
	}
	if res.Requests == 0 || res.Requests != srv.Lookups() {
		t.Errorf("requests = %d, server saw %d: want the same, above 0", res.Requests, srv.Lookups())
	}
}

func TestRunInterrupted(t *testing.T) {
	srv, cfg := newRun(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	srv.Script = func(n int64) int {
		if n == 30 {
			cancel()
		}
		return 0
	}
	res, err := Run(ctx, cfg, Phase{Name: "healthy"})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.StoppedBy != "interrupted" {
		t.Errorf("ok %t, stopped by %q; want a failed, interrupted phase", res.OK, res.StoppedBy)
	}
	if res.TransportErrors != 0 {
		t.Errorf("the interruption counted %d transport errors, want 0", res.TransportErrors)
	}
	if got := srv.Admin(); len(got) == 0 || got[len(got)-1] != "POST /_sim/reset" {
		t.Errorf("simulator calls = %q, want a reset last even when interrupted", got)
	}
}

func TestUnjudgedPhaseKeepsNoRule(t *testing.T) {
	srv, cfg := newRun(t, 40)
	srv.Script = func(int64) int { return 503 }
	res, err := Run(context.Background(), cfg, Phase{Name: "warmup", Unjudged: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Judged {
		t.Errorf("warm-up: ok %t judged %t (%v), want ok and not judged", res.OK, res.Judged, res.Failures)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	_, good := newRun(t, 1)
	tests := []struct {
		name  string
		edit  func(*Config)
		phase Phase
	}{
		{"no clients", func(c *Config) { c.Concurrency = 0 }, Phase{Name: "p"}},
		{"no duration", func(c *Config) { c.Duration = 0 }, Phase{Name: "p"}},
		{"negative max", func(c *Config) { c.MaxRequests = -1 }, Phase{Name: "p"}},
		{"no workload", func(c *Config) { c.Workload = nil }, Phase{Name: "p"}},
		{"not a URL", func(c *Config) { c.URL = "127.0.0.1:3000" }, Phase{Name: "p"}},
		{"faults without a simulator", func(c *Config) { c.Sim = nil }, Phase{Name: "faults", Faults: faults}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			if _, err := Run(context.Background(), cfg, tt.phase); !errors.Is(err, ErrBadConfig) {
				t.Errorf("Run error = %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestRunReportsASimulatorThatRefuses(t *testing.T) {
	_, cfg := newRun(t, 1)
	cfg.Sim = &Sim{URL: cfg.URL + "/nowhere"} // the fake answers 404 there
	if _, err := Run(context.Background(), cfg, Phase{Name: "faults", Faults: faults}); !errors.Is(err, ErrSim) {
		t.Errorf("Run error = %v, want ErrSim", err)
	}
}

func TestJudgeAnswer(t *testing.T) {
	conflicts := []struct{}{{}}
	tests := []struct {
		kind     Kind
		status   int
		a        answer
		degraded bool
		want     string
	}{
		{Existing, 200, answer{}, false, ""},
		{Existing, 404, answer{}, false, "existing→404"},
		{Existing, 200, answer{Partial: true}, false, "existing→200 partial"},
		{Existing, 200, answer{Partial: true}, true, ""},
		{Missing, 404, answer{}, false, ""},
		{Missing, 404, answer{Degraded: []string{"systemB"}}, true, ""},
		{Missing, 404, answer{Degraded: []string{"systemB"}}, false, "missing→404 partial"},
		{Missing, 503, answer{Degraded: []string{"systemB"}}, true, ""},
		{Missing, 503, answer{Degraded: []string{"systemB"}}, false, "missing→503"},
		{Missing, 503, answer{Degraded: []string{"systemA"}}, true, "missing→503"},
		{Existing, 503, answer{Degraded: []string{"systemB"}}, true, "existing→503"},
		{Missing, 200, answer{}, false, "missing→200"},
		{Conflicting, 200, answer{Conflicts: conflicts}, false, ""},
		{Conflicting, 200, answer{}, false, "conflicting→200 without conflicts"},
		{Conflicting, 200, answer{Partial: true}, true, ""},
		{Conflicting, 503, answer{}, true, "conflicting→503"},
	}
	for _, tt := range tests {
		got := judgeAnswer(tt.kind, tt.status, tt.a, tt.degraded)
		if got != tt.want {
			t.Errorf("judgeAnswer(%s, %d, %+v, degraded %t) = %q, want %q", tt.kind, tt.status, tt.a, tt.degraded, got, tt.want)
		}
	}
}

// when scripts status for the lookups pick selects.
func when(pick func(n int64) bool, status int) func(int64) int {
	return func(n int64) int {
		if pick(n) {
			return status
		}
		return 0
	}
}
