package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBadConfig is returned (wrapped) by Run for an unusable Config or Phase.
var ErrBadConfig = errors.New("load: bad config")

// Phase is one stretch of load and the rule its answers must keep.
type Phase struct {
	Name string
	// Faults, when set, is PUT to the simulator's /_sim/faults before the
	// load (the simulator is reset before and after, whatever happens).
	Faults json.RawMessage
	// Degraded allows partial answers (System B is expected to fail).
	Degraded bool
	// Unjudged phases (a warm-up) are reported but keep no rule.
	Unjudged bool
}

// Rule describes the phase's rule in words.
func (p Phase) Rule() string {
	if p.Unjudged {
		return "none (warm-up)"
	}
	if p.Degraded {
		return "no 5xx but a missing customer's 503 naming System B (unknown, not absent), no transport error; existing and conflicting 200 (partial allowed), missing 404"
	}
	return "no 5xx, no transport error; existing 200, conflicting 200 with conflicts, missing 404; nothing partial"
}

// Config says where and how hard to load.
type Config struct {
	URL         string        // the API's base URL (start-api)
	Concurrency int           // clients, each one request at a time
	Duration    time.Duration // a phase stops issuing requests after this long
	MaxRequests int64         // and after this many requests; 0: no bound
	Workload    *Workload
	Client      *http.Client     // default: NewClient(Concurrency, 15s)
	Sim         *Sim             // the System B simulator; nil when there is none (no faults then)
	Now         func() time.Time // default time.Now
}

// maxBody caps how much of an answer is read.
const maxBody = 1 << 20

// maxErrorKinds bounds the distinct transport error texts kept.
const maxErrorKinds = 8

// NewClient returns an HTTP client for c concurrent clients on one host,
// with a whole-request timeout and no redirects followed.
func NewClient(c int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = c
	tr.MaxIdleConnsPerHost = c
	tr.MaxConnsPerHost = c
	tr.IdleConnTimeout = 30 * time.Second
	tr.ResponseHeaderTimeout = timeout
	tr.DisableCompression = true
	tr.Proxy = nil // local targets only: never through a proxy
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (cfg *Config) check() error {
	switch {
	case cfg.Concurrency < 1:
		return fmt.Errorf("%w: concurrency %d, want at least 1", ErrBadConfig, cfg.Concurrency)
	case cfg.Duration <= 0:
		return fmt.Errorf("%w: duration %s, want more than 0", ErrBadConfig, cfg.Duration)
	case cfg.MaxRequests < 0:
		return fmt.Errorf("%w: max requests %d, want 0 (no bound) or more", ErrBadConfig, cfg.MaxRequests)
	case cfg.Workload == nil:
		return fmt.Errorf("%w: no workload", ErrBadConfig)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: url %q is not an http(s) URL", ErrBadConfig, cfg.URL)
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(cfg.Concurrency, 15*time.Second)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// answer is what a lookup's body tells the judge.
type answer struct {
	Partial   bool       `json:"partial"`
	Degraded  []string   `json:"degraded"`
	Conflicts []struct{} `json:"conflicts"`
}

func (a answer) partial() bool { return a.Partial || len(a.Degraded) > 0 }

// tally is one worker's counts; merged at the end.
type tally struct {
	hist       Histogram
	status     map[int]int64
	byKind     [numKinds]int64
	partial    int64
	unknown    int64 // 503s the rule allows: unknown, not absent
	conflicts  int64
	transport  int64
	errs       map[string]int64
	unexpected map[string]int64
}

func newTally() *tally {
	return &tally{status: map[int]int64{}, errs: map[string]int64{}, unexpected: map[string]int64{}}
}

func (t *tally) merge(o *tally) {
	t.hist.Merge(&o.hist)
	for k, v := range o.status {
		t.status[k] += v
	}
	for i, v := range o.byKind {
		t.byKind[i] += v
	}
	t.partial += o.partial
	t.unknown += o.unknown
	t.conflicts += o.conflicts
	t.transport += o.transport
	for k, v := range o.errs {
		addBounded(t.errs, k, v)
	}
	for k, v := range o.unexpected {
		t.unexpected[k] += v
	}
}

// addBounded counts v under k, folding new keys into "other" once the map
// holds maxErrorKinds.
func addBounded(m map[string]int64, k string, v int64) {
	if _, ok := m[k]; !ok && len(m) >= maxErrorKinds {
		k = "other"
	}
	m[k] += v
}

// Run runs one phase: it resets the simulator (when there is one), sets the
// phase's faults, has cfg.Concurrency clients send lookups until
// cfg.Duration has passed or cfg.MaxRequests were sent (requests in flight
// then finish, each bounded by the client's timeout), reads the
// simulator's counters and resets it again. Cancelling ctx interrupts the
// phase. The error is for a phase that could not be set up; a phase that
// breaks its rule has Result.OK false.
func Run(ctx context.Context, cfg Config, ph Phase) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	if ph.Faults != nil && cfg.Sim == nil {
		return Result{}, fmt.Errorf("%w: phase %s injects faults and there is no simulator", ErrBadConfig, ph.Name)
	}
	if cfg.Sim != nil {
		if err := cfg.Sim.Reset(ctx); err != nil {
			return Result{}, fmt.Errorf("load: phase %s: %w", ph.Name, err)
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = cfg.Sim.Reset(rctx) // best effort: a failure here cannot change the result
		}()
		if ph.Faults != nil {
			if err := cfg.Sim.SetFaults(ctx, ph.Faults); err != nil {
				return Result{}, fmt.Errorf("load: phase %s: %w", ph.Name, err)
			}
		}
	}

	base := strings.TrimRight(cfg.URL, "/") + "/customer/"
	stopCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var issued atomic.Int64
	tallies := make([]*tally, cfg.Concurrency)
	start := cfg.Now()
	var wg sync.WaitGroup
	for i := range tallies {
		t := newTally()
		tallies[i] = t
		wg.Go(func() {
			for stopCtx.Err() == nil {
				n := issued.Add(1) - 1
				if cfg.MaxRequests > 0 && n >= cfg.MaxRequests {
					return
				}
				tg := cfg.Workload.Pick(uint64(n))
				t.one(ctx, cfg, ph, base, tg)
			}
		})
	}
	wg.Wait()
	elapsed := cfg.Now().Sub(start)

	all := newTally()
	for _, t := range tallies {
		all.merge(t)
	}
	res := newResult(ph, all, elapsed)
	switch {
	case ctx.Err() != nil:
		res.StoppedBy = "interrupted"
	case cfg.MaxRequests > 0 && issued.Load() >= cfg.MaxRequests:
		res.StoppedBy = "max-requests"
	default:
		res.StoppedBy = "duration"
	}
	if cfg.Sim != nil && ctx.Err() == nil {
		st, err := cfg.Sim.Stats(ctx)
		if err != nil {
			res.Failures = append(res.Failures, "could not read the simulator's counters: "+err.Error())
		} else {
			res.SystemB = &st
		}
	}
	res.judge(ph)
	return res, nil
}

// one sends one lookup and counts its outcome in t.
func (t *tally) one(ctx context.Context, cfg Config, ph Phase, base string, tg Target) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+url.PathEscape(tg.Email), nil)
	if err != nil { // cannot happen for a parsed base URL; count it rather than hide it
		t.transport++
		addBounded(t.errs, "request: "+err.Error(), 1)
		return
	}
	req.Header.Set("Accept", "application/json")
	begin := cfg.Now()
	resp, err := cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // interrupted: not the service's fault
		}
		t.transport++
		addBounded(t.errs, errorText(err), 1)
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil { // a truncated or reset answer
		if ctx.Err() != nil {
			return
		}
		t.transport++
		addBounded(t.errs, "read body: "+errorText(err), 1)
		return
	}
	t.hist.Record(cfg.Now().Sub(begin))
	var a answer
	var readErr error
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNotFound, http.StatusServiceUnavailable:
		readErr = json.Unmarshal(body, &a)
	}
	t.status[resp.StatusCode]++
	t.byKind[tg.Kind]++
	if a.partial() {
		t.partial++
	}
	if len(a.Conflicts) > 0 {
		t.conflicts++
	}
	if readErr != nil {
		t.unexpected[fmt.Sprintf("%s→%d with an unreadable body", tg.Kind, resp.StatusCode)]++
		return
	}
	if p := judgeAnswer(tg.Kind, resp.StatusCode, a, ph.Degraded); p != "" {
		t.unexpected[p]++
	} else if resp.StatusCode == http.StatusServiceUnavailable {
		t.unknown++
	}
}

// judgeAnswer returns "" when status and body are what a lookup of kind k
// must answer, else a label naming what was wrong (no email in it).
func judgeAnswer(k Kind, status int, a answer, degraded bool) string {
	label := k.String() + "→" + strconv.Itoa(status)
	want := http.StatusOK
	if k == Missing {
		want = http.StatusNotFound
	}
	switch {
	case k == Missing && degraded && status == http.StatusServiceUnavailable && slices.Contains(a.Degraded, "systemB"):
		// With System B failing, a customer System A does not hold is
		// unknown, not absent: 503 naming System B is the right answer.
		return ""
	case status != want:
		return label
	case a.partial() && !degraded:
		return label + " partial"
	case k == Conflicting && len(a.Conflicts) == 0 && !a.partial():
		return label + " without conflicts"
	}
	return ""
}

// errorText describes a transport error without the URL (it holds an
// email).
func errorText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
