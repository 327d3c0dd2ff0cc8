//go:build bench

package benchmarks

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"iter"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/cmd/local/internal/schedule"
	"github.com/acme/unified-customer-service/cmd/local/internal/statemachine"
	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/systemb"
)

var (
	flagSlowLatency = flag.Duration("e2e.slow-latency", 30*time.Millisecond, "System B latency per request of TestE2EReconcileSlowSystemB")
	flagSlowSweepN  = flag.Int("e2e.slow-sweep-n", 100000, "customers of the page size / prefetch sweep")
	flagSlowSweep   = flag.String("e2e.slow-pages", "100,250,500,1000", "page sizes of the sweep")
	flagSlowN       = flag.Int("e2e.slow-n", 1000000, "customers of the slow-System-B runs through the real bootstrap")
	flagSlowTimeout = flag.Duration("e2e.slow-timeout", 20*time.Second, "the small Timeout of the checkpointed run (0: skip it)")
)

// TestE2EReconcileSlowSystemB measures the reconciliation against a remote
// System B: the simulator waits -e2e.slow-latency (30 ms) on every request.
//
//  1. The sweep, in this process (shared/app's wiring, its System B client
//     and the engine, the page size and prefetch varied), on
//     -e2e.slow-sweep-n customers: which page size and prefetch are best.
//  2. The real bootstrap with the template's Timeout (900 s), driven by
//     the template's state machine, on -e2e.slow-n customers: the rate.
//  3. The same with a small Timeout (-e2e.slow-timeout): the run
//     checkpoints and continues until complete; its invocation count and
//     what a continuation costs.
//
// Then it computes what a 10,000,000-customer night takes in 900 s
// invocations. Every run's summary must equal the ground truth.
func TestE2EReconcileSlowSystemB(t *testing.T) {
	tpl := loadTemplate(t)
	f := templateFunction(t, tpl, reconcileFn)
	lat := *flagSlowLatency
	t.Logf("load average at the start (/proc/loadavg): %s", loadavgLine())

	// 1. The sweep.
	sweep := &table{header: []string{"customers", "page size", "prefetch", "pages", "duration", "customers/s", "latency share", "load avg"}}
	{
		r := newRig(t, tpl, *flagSlowSweepN)
		r.sim = bsimWithLatency(t, r, lat)
		a := inProcessApp(t, r, f)
		for _, ps := range sizes(t, *flagSlowSweep) {
			for _, prefetch := range []bool{true, false} {
				client, err := systemb.New(systemb.Config{
					BaseURL: r.simURL, Token: systemb.StaticToken(r.token), MaxAttempts: 4,
					HTTPClient: &http.Client{Transport: systemb.NewTransport()}, DisablePrefetch: !prefetch,
				})
				if err != nil {
					t.Fatal(err)
				}
				rec := a.Reconciler()
				rec.B = pagedB{c: client, size: ps}
				ev := reconcile.Event{ID: fmt.Sprintf("sweep-%d-%v-%d", ps, prefetch, time.Now().UnixNano()), Time: time.Now()}
				r.sim.ResetStats()
				load := startLoad()
				ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
				start := time.Now()
				sum, err := rec.Run(ctx, ev)
				took := time.Since(start)
				cancel()
				load.stop()
				if err != nil {
					t.Fatal(err)
				}
				if err := checkTruth(sum, r.truth); err != nil {
					t.Fatal(err)
				}
				pages := r.sim.Stats().List
				n := sum.Counts.InBoth + sum.Counts.OnlyInSystemA + sum.Counts.OnlyInSystemB
				sweep.add(strconv.Itoa(n), strconv.Itoa(ps), strconv.FormatBool(prefetch), strconv.FormatInt(pages, 10), sec(took),
					fmt.Sprintf("%.0f", float64(n)/took.Seconds()),
					fmt.Sprintf("%.0f%%", 100*float64(pages)*lat.Seconds()/took.Seconds()), load.String())
			}
		}
		a.Store.Close() //nolint:errcheck // test teardown
	}
	t.Logf("\nPage size and prefetch against System B at %s a request (in this process: shared/app's client and the engine); machine: %s\n%s",
		lat, machine(), sweep)

	// 2 and 3. The real bootstrap through the state machine.
	bootstrap := buildFunction(t, f, filepath.Join(t.TempDir(), "build"), "", "")
	r := newRig(t, tpl, *flagSlowN)
	r.sim = bsimWithLatency(t, r, lat)
	sched := reconcileSchedule(t, tpl)
	runs := &table{header: []string{"customers", "Timeout", "invocations", "total REPORT Duration", "customers/s",
		"per invocation (s)", "list requests", "Max Memory Used", "load avg"}}
	var rate float64
	var whole time.Duration
	var contCost time.Duration
	for _, timeout := range []time.Duration{f.Timeout, *flagSlowTimeout} {
		if timeout == 0 {
			continue
		}
		log := &funcLog{}
		fn := r.functionTimeout(t, reconcileFn, bootstrap, log, timeout)
		ev, err := schedule.Event(sched, schedule.Options{Function: "ReconcileStateMachine", Time: time.Now(), Region: tpl.Region,
			AccountID: tpl.AccountID, StackName: tpl.StackName, ID: fmt.Sprintf("slow-%s-%d", timeout, time.Now().UnixNano())})
		if err != nil {
			t.Fatal(err)
		}
		r.sim.ResetStats()
		load := startLoad()
		results := runMachine(t, tpl, fn, log, ev, timeout)
		load.stop()
		last := results[len(results)-1]
		var sum reconcile.Summary
		if err := json.Unmarshal(last.Payload, &sum); err != nil {
			t.Fatal(err)
		}
		if err := checkTruth(sum, r.truth); err != nil {
			t.Fatal(err)
		}
		if sum.Invocations != len(results) {
			t.Fatalf("the summary counts %d invocations, the state machine made %d", sum.Invocations, len(results))
		}
		var total time.Duration
		var per []string
		maxMem := 0
		for _, res := range results {
			total += res.Duration
			per = append(per, fmt.Sprintf("%.1f", res.Duration.Seconds()))
			maxMem = max(maxMem, res.MaxMemoryMB)
		}
		n := sum.Counts.InBoth + sum.Counts.OnlyInSystemA + sum.Counts.OnlyInSystemB
		if timeout == f.Timeout {
			rate, whole = float64(n)/total.Seconds(), total
		} else if len(results) > 1 {
			contCost = (total - whole) / time.Duration(len(results)-1)
		}
		runs.add(strconv.Itoa(n), timeout.String(), strconv.Itoa(len(results)), sec(total), fmt.Sprintf("%.0f", float64(n)/total.Seconds()),
			strings.Join(per, " "), strconv.FormatInt(r.sim.Stats().List, 10), fmt.Sprintf("%d MB", maxMem), load.String())
		closeFunction(t, fn, bootstrap)
	}
	t.Logf("\nReconciliation through the real bootstrap (%s, MemorySize %d MB), driven by the template's ReconcileStateMachine, System B at %s a request; machine: %s\n%s",
		reconcileFn, f.MemoryMB, lat, machine(), runs)

	// What 10,000,000 customers cost: an invocation joins for its Timeout
	// minus its reserve (30 s at 900 s); a continuation costs contCost more
	// than the customers it joins (the page fetched again, System A read
	// again up to the checkpoint: it grows with the position).
	if rate > 0 {
		const n10 = 10_000_000
		budget := f.Timeout - 30*time.Second
		perInv := rate * budget.Seconds()
		inv := math.Ceil(n10 / perInv)
		t.Logf("\n10,000,000 customers at the measured %.0f customers/s: %.0f customers per %s invocation (Timeout %s minus the 30 s reserve) -> %.0f invocations, %.0f min of joining; "+
			"a continuation cost %s more than its share in the %s run (measured, at %d customers)",
			rate, perInv, budget, f.Timeout, inv, n10/rate/60, contCost.Round(time.Millisecond), *flagSlowTimeout, *flagSlowN)
	}
}

// runMachine runs the template's ReconcileStateMachine on fn and returns
// every invocation's result; no invocation may fail.
func runMachine(t *testing.T, tpl *samtemplate.Template, fn *sandbox.Function, log *funcLog, ev []byte, timeout time.Duration) []*sandbox.Result {
	t.Helper()
	sm, ok := tpl.StateMachine("ReconcileStateMachine")
	if !ok {
		t.Fatal("no ReconcileStateMachine")
	}
	m, err := statemachine.New(sm.Definition)
	if err != nil {
		t.Fatal(err)
	}
	var results []*sandbox.Result
	m.Invoke = func(ctx context.Context, _ string, payload []byte) (statemachine.Result, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
		defer cancel()
		res, err := fn.Invoke(ctx, payload, sandbox.InvokeOptions{})
		checkInvocation(t, res, err, log)
		results = append(results, res)
		t.Logf("invocation %d: %s, %d MB", len(results), sec(res.Duration), res.MaxMemoryMB)
		return statemachine.Result{Payload: res.Payload}, nil
	}
	m.Send = func(_ context.Context, q string, body []byte) error {
		t.Fatalf("dead letter to %s: %s", q, body)
		return nil
	}
	if _, err := m.Run(context.Background(), ev, "bench"); err != nil {
		t.Fatal(err)
	}
	return results
}

// bsimWithLatency replaces the rig's simulator by one with Config.Latency
// lat holding the same customers, on a new port, and points the rig at it.
func bsimWithLatency(t testing.TB, r *rig, lat time.Duration) *bsim.Sim {
	t.Helper()
	sim := bsim.New(bsim.Config{Seed: 1, Latency: lat})
	f, err := os.Open(filepath.Join(r.dataDir, demodata.SystemBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := sim.Load(f); err != nil {
		t.Fatal(err)
	}
	srv, err := sim.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sim.Close()
		srv.Close() //nolint:errcheck // test teardown
	})
	r.simURL, r.token = srv.URL(), sim.Token()
	return sim
}

// inProcessApp is shared/app wired from the template's environment against
// the rig's servers, as the bootstrap's main wires it.
func inProcessApp(t testing.TB, r *rig, f *samtemplate.Function) *app.App {
	t.Helper()
	env, _ := f.ComposeEnv(map[string]string{"SYSTEM_B_URL": r.simURL, "SYSTEM_B_TOKEN": r.token})
	env["AWS_ENDPOINT_URL_S3"] = r.s3.URL()
	env["AWS_REGION"] = r.tpl.Region
	env["AWS_ACCESS_KEY_ID"] = sandbox.FakeAccessKeyID
	env["AWS_SECRET_ACCESS_KEY"] = sandbox.FakeSecretAccessKey
	env["AWS_CONFIG_FILE"] = os.DevNull
	env["AWS_SHARED_CREDENTIALS_FILE"] = os.DevNull
	env["AWS_LAMBDA_FUNCTION_NAME"] = reconcileFn
	env["TMPDIR"] = t.TempDir()
	for k, v := range env {
		t.Setenv(k, v)
	}
	a, err := app.New(context.Background(), app.Options{Function: "reconcile", Need: config.Need{Report: true}, Getenv: os.Getenv, Stdout: &funcLog{}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// pagedB lists System B with a page size of its own.
type pagedB struct {
	c    *systemb.Client
	size int
}

func (b pagedB) List(ctx context.Context) iter.Seq2[*merge.Record, error] {
	return func(yield func(*merge.Record, error) bool) {
		p := b.c.List(ctx, b.size)
		defer p.Close()
		for rec, err := range p.All() {
			if !yield(rec, err) {
				return
			}
		}
	}
}

// loadavgLine is /proc/loadavg: the load of the machine.
func loadavgLine() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
