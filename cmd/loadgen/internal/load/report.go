package load

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Latency holds a phase's latency percentiles, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50Ms"`
	P90  float64 `json:"p90Ms"`
	P99  float64 `json:"p99Ms"`
	Max  float64 `json:"maxMs"`
	Mean float64 `json:"meanMs"`
}

// LatencyOf reads h's percentiles.
func LatencyOf(h *Histogram) Latency {
	return Latency{
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		Max: ms(h.Max()), Mean: ms(h.Mean()),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Result is one phase's outcome.
type Result struct {
	Phase     string           `json:"phase"`
	Rule      string           `json:"rule"`
	Judged    bool             `json:"judged"`
	StoppedBy string           `json:"stoppedBy"` // duration, max-requests or interrupted
	Elapsed   float64          `json:"elapsedSeconds"`
	Requests  int64            `json:"requests"` // answered plus transport errors
	Rate      float64          `json:"requestsPerSecond"`
	Status    map[string]int64 `json:"status"` // answers by HTTP status
	ByKind    map[Kind]int64   `json:"byKind"` // answers by kind of customer
	Partial   int64            `json:"partial"`
	// Unknown counts the 503s the rule allows (a missing customer while
	// System B fails: unknown, not absent); they are not counted as 5xx.
	Unknown int64 `json:"unknown"`
	// WithConflicts counts answers that listed at least one conflict.
	WithConflicts   int64            `json:"withConflicts"`
	Latency         Latency          `json:"latency"`
	TransportErrors int64            `json:"transportErrors"`
	Errors          map[string]int64 `json:"errors,omitempty"`     // transport errors by text (no URLs)
	Unexpected      map[string]int64 `json:"unexpected,omitempty"` // answers the rule does not allow, by "kind→status"
	SystemB         *SimStats        `json:"systemB,omitempty"`    // the simulator's counters over the phase
	Failures        []string         `json:"failures,omitempty"`
	OK              bool             `json:"ok"`
}

func newResult(ph Phase, t *tally, elapsed time.Duration) Result {
	r := Result{
		Phase: ph.Name, Rule: ph.Rule(), Judged: !ph.Unjudged,
		Elapsed:  elapsed.Seconds(),
		Requests: int64(t.hist.Count()) + t.transport,
		Status:   map[string]int64{}, ByKind: map[Kind]int64{},
		Partial: t.partial, Unknown: t.unknown, WithConflicts: t.conflicts,
		Latency: LatencyOf(&t.hist), TransportErrors: t.transport,
	}
	if elapsed > 0 {
		r.Rate = float64(r.Requests) / elapsed.Seconds()
	}
	for s, n := range t.status {
		r.Status[strconv.Itoa(s)] = n
	}
	for _, k := range Kinds() {
		r.ByKind[k] = t.byKind[k]
	}
	if len(t.errs) > 0 {
		r.Errors = t.errs
	}
	if len(t.unexpected) > 0 {
		r.Unexpected = t.unexpected
	}
	return r
}

// judge fills Failures and OK by the phase's rule.
func (r *Result) judge(ph Phase) {
	if r.StoppedBy == "interrupted" {
		r.Failures = append(r.Failures, "interrupted")
	}
	if !ph.Unjudged {
		var fives []string
		var n5 int64
		for _, s := range sortedKeys(r.Status) {
			if strings.HasPrefix(s, "5") {
				n5 += r.Status[s]
				fives = append(fives, fmt.Sprintf("%s=%d", s, r.Status[s]))
			}
		}
		if r.Unknown > 0 {
			fives = append(fives, fmt.Sprintf("of which %d allowed as unknown", r.Unknown))
		}
		if n5 -= r.Unknown; n5 > 0 {
			r.Failures = append(r.Failures, fmt.Sprintf("%d answers were 5xx (%s)", n5, strings.Join(fives, " ")))
		}
		if r.TransportErrors > 0 {
			r.Failures = append(r.Failures, fmt.Sprintf("%d transport errors", r.TransportErrors))
		}
		var bad int64
		for _, n := range r.Unexpected {
			bad += n
		}
		if bad > 0 {
			r.Failures = append(r.Failures, fmt.Sprintf("%d answers the rule does not allow", bad))
		}
		if r.Requests == 0 {
			r.Failures = append(r.Failures, "no requests were made")
		}
		if ph.Faults != nil && r.SystemB != nil && r.Requests > 0 && r.SystemB.Injected == 0 {
			r.Failures = append(r.Failures, "the simulator injected no errors: the phase proved nothing")
		}
	}
	r.OK = len(r.Failures) == 0
}

// Line renders the result on one line for people.
func (r Result) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %d req in %.1fs (%.1f/s, stopped by %s) status", r.Phase, r.Requests, r.Elapsed, r.Rate, r.StoppedBy)
	for _, s := range sortedKeys(r.Status) {
		fmt.Fprintf(&b, " %s=%d", s, r.Status[s])
	}
	fmt.Fprintf(&b, " partial=%d", r.Partial)
	if r.Unknown > 0 {
		fmt.Fprintf(&b, " unknown=%d", r.Unknown)
	}
	fmt.Fprintf(&b, " conflicts=%d", r.WithConflicts)
	l := r.Latency
	fmt.Fprintf(&b, " p50=%.1fms p90=%.1fms p99=%.1fms max=%.1fms errors=%d", l.P50, l.P90, l.P99, l.Max, r.TransportErrors)
	if r.SystemB != nil {
		fmt.Fprintf(&b, " systemB(calls=%d injected=%d)", r.SystemB.Requests, r.SystemB.Injected)
	}
	switch {
	case !r.Judged:
		b.WriteString(" (not judged)")
	case r.OK:
		b.WriteString(" PASS")
	default:
		b.WriteString(" FAIL: " + strings.Join(r.Failures, "; "))
	}
	return b.String()
}

// Details renders what a failing phase got wrong, one item a line; "" when
// there is nothing to add.
func (r Result) Details() string {
	var b strings.Builder
	for _, k := range sortedKeys(r.Unexpected) {
		fmt.Fprintf(&b, "  unexpected %s: %d\n", k, r.Unexpected[k])
	}
	for _, k := range sortedKeys(r.Errors) {
		fmt.Fprintf(&b, "  transport error %q: %d\n", k, r.Errors[k])
	}
	return b.String()
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel,omitempty"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Go        string `json:"go"`
	LoadStart string `json:"loadAverageAtStart,omitempty"` // 1, 5 and 15 minutes, Linux only
	LoadEnd   string `json:"loadAverageAtEnd,omitempty"`
}

// ThisMachine describes this machine (CPU model and load average from /proc
// when there is one).
func ThisMachine() Machine {
	return Machine{
		CPUs: runtime.NumCPU(), CPUModel: cpuModel(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		Go: runtime.Version(), LoadStart: LoadAverage(),
	}
}

// LoadAverage returns the 1, 5 and 15-minute load averages ("" when
// unknown).
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Report is a whole run.
type Report struct {
	Command     string   `json:"command"`
	URL         string   `json:"url"`
	Concurrency int      `json:"concurrency"`
	Duration    string   `json:"durationPerPhase"`
	MaxRequests int64    `json:"maxRequestsPerPhase"` // 0: no bound
	Mix         string   `json:"mix"`                 // existing/missing/conflicting
	Data        string   `json:"data"`                // the demo data the emails come from
	Machine     Machine  `json:"machine"`
	Phases      []Result `json:"phases"`
	OK          bool     `json:"ok"`
}

// Judge sets OK: every judged phase passed, and at least one ran.
func (r *Report) Judge() {
	judged, failed := 0, 0
	for _, p := range r.Phases {
		if p.Judged {
			judged++
			if !p.OK {
				failed++
			}
		}
	}
	r.OK = judged > 0 && failed == 0
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "loadgen: %s\n", r.Command)
	fmt.Fprintf(&b, "machine: %d CPUs %s (%s/%s, %s), load average %s at start, %s at end\n",
		m.CPUs, m.CPUModel, m.OS, m.Arch, m.Go, orUnknown(m.LoadStart), orUnknown(m.LoadEnd))
	bound := "no request bound"
	if r.MaxRequests > 0 {
		bound = fmt.Sprintf("at most %d requests", r.MaxRequests)
	}
	fmt.Fprintf(&b, "target: %s, %d clients, %s per phase (%s), mix existing/missing/conflicting %s, data %s\n",
		r.URL, r.Concurrency, r.Duration, bound, r.Mix, r.Data)
	for _, p := range r.Phases {
		b.WriteString(p.Line() + "\n")
		if !p.OK {
			b.WriteString(p.Details())
		}
	}
	if r.OK {
		b.WriteString("result: PASS\n")
	} else {
		b.WriteString("result: FAIL\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
