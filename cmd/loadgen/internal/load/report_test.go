package load

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleResult() Result {
	return Result{
		Phase: "healthy", Judged: true, StoppedBy: "duration", Elapsed: 30.04, Requests: 45000, Rate: 1498.0,
		Status:  map[string]int64{"404": 9000, "200": 36000},
		ByKind:  map[Kind]int64{Existing: 27000, Missing: 9000, Conflicting: 9000},
		Partial: 0, WithConflicts: 9000,
		Latency: Latency{P50: 12.34, P90: 20, P99: 45.67, Max: 120.5, Mean: 14},
		SystemB: &SimStats{Requests: 45000},
		OK:      true,
	}
}

func TestResultLine(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Result)
		want string
	}{
		{"pass", func(*Result) {},
			"healthy  45000 req in 30.0s (1498.0/s, stopped by duration) status 200=36000 404=9000 partial=0 conflicts=9000 p50=12.3ms p90=20.0ms p99=45.7ms max=120.5ms errors=0 systemB(calls=45000 injected=0) PASS"},
		{"fail", func(r *Result) {
			r.OK, r.Failures = false, []string{"3 answers were 5xx (503=3)", "2 transport errors"}
			r.TransportErrors = 2
			r.SystemB = nil
		},
			"healthy  45000 req in 30.0s (1498.0/s, stopped by duration) status 200=36000 404=9000 partial=0 conflicts=9000 p50=12.3ms p90=20.0ms p99=45.7ms max=120.5ms errors=2 FAIL: 3 answers were 5xx (503=3); 2 transport errors"},
		{"not judged", func(r *Result) { r.Judged, r.Phase = false, "warmup" },
			"warmup   45000 req in 30.0s (1498.0/s, stopped by duration) status 200=36000 404=9000 partial=0 conflicts=9000 p50=12.3ms p90=20.0ms p99=45.7ms max=120.5ms errors=0 systemB(calls=45000 injected=0) (not judged)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleResult()
			tt.edit(&r)
			if got := r.Line(); got != tt.want {
				t.Errorf("Line() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestNewResultAndJudge(t *testing.T) {
	tl := newTally()
	for i := range 100 {
		tl.hist.Record(time.Duration(i+1) * time.Millisecond)
	}
	tl.status[200], tl.status[503], tl.status[504] = 97, 2, 1
	tl.transport = 4
	tl.unexpected["missing→200"] = 3
	res := newResult(Phase{Name: "healthy"}, tl, 2*time.Second)
	if res.Requests != 104 || res.Rate != 52 {
		t.Errorf("requests %d rate %v, want 104 and 52/s", res.Requests, res.Rate)
	}
	if res.Latency.P50 != 50 && (res.Latency.P50 < 49.5 || res.Latency.P50 > 50.5) {
		t.Errorf("p50 = %vms, want about 50", res.Latency.P50)
	}
	if res.Latency.Max != 100 {
		t.Errorf("max = %vms, want 100", res.Latency.Max)
	}
	res.judge(Phase{Name: "healthy"})
	want := []string{"3 answers were 5xx (503=2 504=1)", "4 transport errors", "3 answers the rule does not allow"}
	if strings.Join(res.Failures, "|") != strings.Join(want, "|") || res.OK {
		t.Errorf("failures = %q (ok %t), want %q", res.Failures, res.OK, want)
	}

	empty := newResult(Phase{Name: "healthy"}, newTally(), time.Second)
	empty.judge(Phase{Name: "healthy"})
	if empty.OK || len(empty.Failures) != 1 || empty.Failures[0] != "no requests were made" {
		t.Errorf("empty phase: ok %t failures %q, want a failure for no requests", empty.OK, empty.Failures)
	}
}

func TestAddBoundedFoldsExtraKinds(t *testing.T) {
	m := map[string]int64{}
	for i := range maxErrorKinds + 5 {
		addBounded(m, strings.Repeat("e", i+1), 1)
	}
	if len(m) != maxErrorKinds+1 || m["other"] != 5 {
		t.Errorf("map has %d keys, other=%d; want %d keys and other=5", len(m), m["other"], maxErrorKinds+1)
	}
}

func TestReport(t *testing.T) {
	pass, fail, warm := sampleResult(), sampleResult(), sampleResult()
	fail.OK, fail.Failures, fail.Phase = false, []string{"1 transport errors"}, "faults"
	fail.Errors = map[string]int64{"connection reset by peer": 1}
	warm.Judged, warm.Phase = false, "warmup"
	tests := []struct {
		name   string
		phases []Result
		ok     bool
	}{
		{"all judged phases pass", []Result{warm, pass, pass}, true},
		{"one fails", []Result{warm, pass, fail}, false},
		{"only a warm-up", []Result{warm}, false},
		{"nothing", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Command: "loadgen -c 32", URL: "http://127.0.0.1:3000", Concurrency: 32, Duration: "30s", Mix: "60/20/20",
				Data: "seed 1", Machine: Machine{CPUs: 2, OS: "linux", Arch: "amd64", Go: "go1.26"}, Phases: tt.phases}
			r.Judge()
			if r.OK != tt.ok {
				t.Errorf("OK = %t, want %t", r.OK, tt.ok)
			}
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			text := b.String()
			last := map[bool]string{true: "result: PASS\n", false: "result: FAIL\n"}[tt.ok]
			if !strings.HasSuffix(text, last) || !strings.Contains(text, "machine: 2 CPUs") {
				t.Errorf("text report:\n%s\nwant the machine and %q", text, last)
			}
			if !tt.ok && len(tt.phases) == 3 && !strings.Contains(text, `transport error "connection reset by peer": 1`) {
				t.Errorf("text report does not detail the failure:\n%s", text)
			}
			var back Report
			doc, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(doc, &back); err != nil || back.OK != r.OK || len(back.Phases) != len(r.Phases) {
				t.Errorf("JSON round trip: %v, %s", err, doc)
			}
			if len(tt.phases) > 1 && !strings.Contains(string(doc), `"byKind":{"conflicting":9000,"existing":27000,"missing":9000}`) {
				t.Errorf("JSON report names kinds badly: %s", doc)
			}
		})
	}
}

// TestJudgeAllowsUnknown: the 503s the rule allows (a missing customer
// while System B fails: unknown, not absent) are not 5xx failures; any
// other 5xx still is.
func TestJudgeAllowsUnknown(t *testing.T) {
	tests := []struct {
		name    string
		unknown int64
		want    string // a failure; "" for none
	}{
		{"every 503 an unknown", 5, ""},
		{"two 503s not allowed", 3, "2 answers were 5xx (503=5 of which 3 allowed as unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleResult()
			r.Status["503"], r.Unknown = 5, tt.unknown
			r.judge(Phase{Name: "faults", Degraded: true})
			got := strings.Join(r.Failures, "; ")
			if got != tt.want || r.OK != (tt.want == "") {
				t.Errorf("failures %q ok %v, want %q", got, r.OK, tt.want)
			}
		})
	}
}
