//go:build bench

package benchmarks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/apigw"
	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/systema"
)

// recordingInvoker is start-api's invoker with the sandbox's result of the
// last invocation kept: its REPORT numbers.
type recordingInvoker struct {
	fn   *sandbox.Function
	mu   sync.Mutex
	last *sandbox.Result
}

var _ apigw.Invoker = (*recordingInvoker)(nil)

func (ri *recordingInvoker) Invoke(ctx context.Context, _ string, payload []byte, opts sandbox.InvokeOptions) (*sandbox.Result, error) {
	res, err := ri.fn.Invoke(ctx, payload, opts)
	ri.mu.Lock()
	ri.last = res
	ri.mu.Unlock()
	return res, err
}

func (ri *recordingInvoker) lastResult() *sandbox.Result {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return ri.last
}

// startAPI serves the template's routes of fn as start-api does, on a free
// 127.0.0.1 port, until the test ends; it returns the base URL.
func startAPI(t testing.TB, tpl *samtemplate.Template, inv apigw.Invoker, fn string) string {
	t.Helper()
	var routes []samtemplate.FunctionRoute
	for _, r := range tpl.SortedRoutes() {
		if r.Function == fn {
			routes = append(routes, r)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           &apigw.Server{Router: apigw.NewRouter(routes), Invoker: inv, AccountID: tpl.AccountID},
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close() //nolint:errcheck // test teardown
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("start-api: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// sampleEmails returns k emails of customers both systems hold (inBoth of
// them), spread evenly over the data set's key range.
func sampleEmails(t testing.TB, gen demodata.Config, inBoth, k int) []string {
	t.Helper()
	g, err := demodata.New(gen)
	if err != nil {
		t.Fatal(err)
	}
	stride := max(inBoth/k, 1)
	var out []string
	i := 0
	for p := range g.Pairs() {
		if len(out) == k {
			break
		}
		if i%stride == 0 && p.A != nil && p.B != nil {
			out = append(out, p.A.Email())
		}
		if p.A != nil && p.B != nil {
			i++
		}
	}
	if len(out) < k {
		t.Fatalf("the data set has %d customers in both systems on the sampling stride, want %d", len(out), k)
	}
	return out
}

// lookupAnswer is the part of the lookup's 200 answer the benchmark checks.
type lookupAnswer struct {
	Email    string   `json:"email"`
	Partial  bool     `json:"partial"`
	Degraded []string `json:"degraded"`
}

// get fetches u and returns the time to the last byte of the body.
func get(t testing.TB, c *http.Client, u, token string) (time.Duration, int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	return took, resp.StatusCode, body
}

// lookup asks start-api for one customer and checks it is a whole answer
// from both systems.
func lookup(t testing.TB, c *http.Client, api, email string, log *funcLog) time.Duration {
	t.Helper()
	took, status, body := get(t, c, api+"/customer/"+url.PathEscape(email), "")
	var a lookupAnswer
	if status != http.StatusOK || json.Unmarshal(body, &a) != nil || a.Partial || len(a.Degraded) > 0 {
		t.Fatalf("lookup: status %d, want a whole 200 answer: %.300s\nlast function log lines:\n%s", status, body, log)
	}
	return took
}

// coldLookup is a fresh function's first answers.
type coldLookup struct {
	n, rep    int
	init      time.Duration // REPORT Init Duration
	first     time.Duration // the first answer, through start-api
	firstDur  time.Duration // its REPORT Duration
	snapLoad  time.Duration // the snapshot load the function logged
	second    time.Duration // the second answer, through start-api
	secondDur time.Duration
	maxMemory int // REPORT Max Memory Used after the warm lookups
	load      loadSpan
	split     loadSplit
}

// warmLookups are the sorted samples of the measured warm lookups.
type warmLookups struct {
	n, rep    int
	http      []time.Duration // through start-api, client side
	report    []time.Duration // REPORT Duration
	systemB   []float64       // system_b.latency, ms
	direct    []time.Duration // GET /customers/{email} straight to the simulator
	load      loadSpan
	requests  int
	maxMemory int
}

// TestE2ELookup measures LookupFunction through start-api for each data set
// (-e2e.cold), -e2e.repeat times in a fresh process: the cold start, then
// -e2e.lookups sequential warm lookups of existing customers after
// -e2e.warmup, with System B at zero added latency; then the same GETs sent
// straight to the simulator.
func TestE2ELookup(t *testing.T) {
	tpl := loadTemplate(t)
	f := templateFunction(t, tpl, lookupFn)
	bootstrap := buildFunction(t, f, filepath.Join(t.TempDir(), "build"), "", "")
	var colds []coldLookup
	var warms []warmLookups
	for _, n := range sizes(t, *flagCold) {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			r := newRig(t, tpl, n)
			emails := sampleEmails(t, demodata.Config{Seed: dataSeed, N: n, Mix: benchMix(t)}, r.truth.InBoth, *flagWarmup+*flagLookups+2)
			for rep := 1; rep <= *flagRepeat; rep++ {
				c, w := lookupRun(t, r, bootstrap, emails)
				c.n, c.rep, w.n, w.rep = n, rep, n, rep
				c.split = snapshotLoadSplit(t, r)
				colds, warms = append(colds, c), append(warms, w)
			}
		})
	}
	t.Logf("\nLookup cold start through start-api (%s, MemorySize %d MB, Timeout %s; quick_check on); machine: %s\n%s",
		lookupFn, f.MemoryMB, f.Timeout, machine(), coldTable(colds))
	t.Logf("\nWarm lookups through start-api, %d sequential after %d warm-up, System B at zero added latency; machine: %s\n%s",
		*flagLookups, *flagWarmup, machine(), warmTable(warms))
}

// lookupRun is one repetition: a fresh function behind a fresh start-api.
func lookupRun(t *testing.T, r *rig, bootstrap string, emails []string) (coldLookup, warmLookups) {
	t.Helper()
	log := &funcLog{}
	fn := r.function(t, lookupFn, bootstrap, log)
	inv := &recordingInvoker{fn: fn}
	api := startAPI(t, r.tpl, inv, lookupFn)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	defer client.CloseIdleConnections()

	c := coldLookup{load: startLoad()}
	c.first = lookup(t, client, api, emails[0], log)
	res := inv.lastResult()
	c.init, c.firstDur = res.InitDuration, res.Duration
	c.snapLoad, _ = log.lastSnapshotLoad()
	t.Logf("the function logged: %s", log.snapshotLine)
	c.second = lookup(t, client, api, emails[1], log)
	c.secondDur = inv.lastResult().Duration
	c.load.stop()

	emails = emails[2:]
	for i := range *flagWarmup {
		lookup(t, client, api, emails[i], log)
	}
	log.takeLatencies()
	measured := emails[*flagWarmup : *flagWarmup+*flagLookups]
	w := warmLookups{load: startLoad(), requests: len(measured)}
	for _, e := range measured {
		w.http = append(w.http, lookup(t, client, api, e, log))
		w.report = append(w.report, inv.lastResult().Duration)
	}
	w.systemB = log.takeLatencies()
	w.maxMemory = inv.lastResult().MaxMemoryMB
	c.maxMemory = w.maxMemory
	if len(w.systemB) != len(measured) {
		t.Errorf("%d system_b.latency samples for %d lookups (retries?)", len(w.systemB), len(measured))
	}
	for i := range *flagWarmup {
		directGet(t, client, r, emails[i])
	}
	for _, e := range measured {
		w.direct = append(w.direct, directGet(t, client, r, e))
	}
	w.load.stop()
	closeFunction(t, fn, bootstrap)
	slices.Sort(w.http)
	slices.Sort(w.report)
	slices.Sort(w.direct)
	slices.Sort(w.systemB)
	t.Logf("rep: cold init %s, first answer %s, second %s; warm p50 %s (direct to System B %s) (load %s / %s)",
		ms(c.init), ms(c.first), ms(c.second), us(percentile(w.http, 50)), us(percentile(w.direct, 50)), c.load, w.load)
	return c, w
}

// directGet asks the simulator for one customer, as the function's System B
// client does, and returns the time taken.
func directGet(t testing.TB, c *http.Client, r *rig, email string) time.Duration {
	t.Helper()
	took, status, body := get(t, c, r.simURL+"/customers/"+url.PathEscape(email), r.token)
	if status != http.StatusOK {
		t.Fatalf("System B GET: status %d: %.200s", status, body)
	}
	return took
}

// loadSplit is the snapshot load measured in this process, the way the
// function's store does it, against the same S3 server.
type loadSplit struct {
	download     time.Duration // HEAD and GET to a file
	noCheck      time.Duration // a store's first Acquire with SkipIntegrityCheck
	withCheck    time.Duration // a store's first Acquire with quick_check (the default)
	snapshotSize int64
}

// snapshotLoadSplit times the parts of a first snapshot load.
func snapshotLoadSplit(t testing.TB, r *rig) loadSplit {
	t.Helper()
	ctx := context.Background()
	src := systema.NewS3Source(r.s3.Client(), r.snap.bucket, r.snap.key)
	var out loadSplit
	f, err := os.CreateTemp(t.TempDir(), "download-*.db")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	v, err := src.Stat(ctx)
	if err == nil {
		err = src.Fetch(ctx, v, f)
	}
	out.download = time.Since(start)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	out.snapshotSize = v.Size
	for _, skip := range []bool{true, false} {
		st, err := systema.New(systema.Config{Source: src, Dir: t.TempDir(), SkipIntegrityCheck: skip})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		snap, err := st.Acquire(ctx)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		snap.Release()
		st.Close() //nolint:errcheck // test teardown
		if skip {
			out.noCheck = took
		} else {
			out.withCheck = took
		}
	}
	return out
}

func coldTable(runs []coldLookup) *table {
	tb := &table{header: []string{"snapshot customers", "rep", "Init Duration", "first answer (start-api)", "its REPORT Duration",
		"snapshot load (logged)", "in the test process: download only / load without quick_check / load with it", "second answer", "its REPORT Duration",
		"Max Memory Used", "load avg"}}
	for _, c := range runs {
		tb.add(fmt.Sprintf("%d (%.0f MB)", c.n, float64(c.split.snapshotSize)/1e6), fmt.Sprintf("%d", c.rep), ms(c.init), ms(c.first), ms(c.firstDur),
			ms(c.snapLoad), ms(c.split.download)+" / "+ms(c.split.noCheck)+" / "+ms(c.split.withCheck),
			ms(c.second), ms(c.secondDur), fmt.Sprintf("%d MB", c.maxMemory), c.load.String())
	}
	return tb
}

func warmTable(runs []warmLookups) *table {
	tb := &table{header: []string{"snapshot customers", "rep", "start-api p50 / p99", "REPORT Duration p50 / p99",
		"system_b.latency p50 / p99", "direct System B GET p50 / p99", "added over System B (p50)", "load avg"}}
	for _, w := range runs {
		sbP50 := time.Duration(percentile(w.systemB, 50) * float64(time.Millisecond))
		sbP99 := time.Duration(percentile(w.systemB, 99) * float64(time.Millisecond))
		tb.add(fmt.Sprintf("%d", w.n), fmt.Sprintf("%d", w.rep),
			us(percentile(w.http, 50))+" / "+us(percentile(w.http, 99)),
			us(percentile(w.report, 50))+" / "+us(percentile(w.report, 99)),
			us(sbP50)+" / "+us(sbP99),
			us(percentile(w.direct, 50))+" / "+us(percentile(w.direct, 99)),
			fmt.Sprintf("%s (in the function: %s)", us(percentile(w.http, 50)-percentile(w.direct, 50)), us(percentile(w.report, 50)-sbP50)),
			w.load.String())
	}
	return tb
}
