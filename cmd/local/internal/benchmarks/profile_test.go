//go:build bench

package benchmarks

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/reconcile"
)

var flagProfileDir = flag.String("e2e.profile-dir", "", "where TestProfileReconcile writes its CPU and allocation profiles (default .local/bench/profile)")

// TestProfileReconcile runs ReconcileFunction's code path in this process:
// shared/app wired from the template's environment exactly as the
// bootstrap's main does, against the same servers, on -e2e.profile-n
// customers: a cold run (snapshot download and validation, the join, the
// report), then a warm one (the snapshot kept). For each <run> it writes a
// CPU profile (the simulator serving the pages is in it too, under
// cmd/local/internal/bsim) and allocation profiles before and after, so that
//
//	go tool pprof -top .local/bench/profile/cpu-cold.pprof
//	go tool pprof -sample_index=alloc_space -top -base .local/bench/profile/allocs-before-cold.pprof .local/bench/profile/allocs-after-cold.pprof
//
// show where the run's time and allocations go, apart from the simulator's
// loading. It starts its own CPU profiles: do not add -cpuprofile.
func TestProfileReconcile(t *testing.T) {
	tpl := loadTemplate(t)
	f := templateFunction(t, tpl, reconcileFn)
	r := newRig(t, tpl, *flagProfileN)
	env, _ := f.ComposeEnv(map[string]string{"SYSTEM_B_URL": r.simURL, "SYSTEM_B_TOKEN": r.token})
	env["AWS_ENDPOINT_URL_S3"] = r.s3.URL()
	env["AWS_REGION"] = tpl.Region
	env["AWS_ACCESS_KEY_ID"] = sandbox.FakeAccessKeyID
	env["AWS_SECRET_ACCESS_KEY"] = sandbox.FakeSecretAccessKey
	env["AWS_CONFIG_FILE"] = os.DevNull
	env["AWS_SHARED_CREDENTIALS_FILE"] = os.DevNull
	env["AWS_LAMBDA_FUNCTION_NAME"] = reconcileFn
	env["TMPDIR"] = t.TempDir() // the snapshot's file
	for k, v := range env {
		t.Setenv(k, v)
	}
	dir := *flagProfileDir
	if dir == "" {
		dir = filepath.Join(repoRoot(t), ".local", "bench", "profile")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	log := &funcLog{}
	a, err := app.New(context.Background(), app.Options{Function: "reconcile", Need: config.Need{Report: true}, Getenv: os.Getenv, Stdout: log})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Store.Close() //nolint:errcheck // test teardown
	rec := a.Reconciler()
	tb := &table{header: []string{"customers", "run", "duration", "customers/s", "allocated", "allocated per customer",
		"allocations per customer", "GC cycles", "load avg"}}
	for _, kind := range []string{"cold", "warm"} {
		ev := reconcile.Event{ID: fmt.Sprintf("profile-%s-%d", kind, time.Now().UnixNano()), Time: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
		stop := profile(t, dir, kind)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		load := startLoad()
		start := time.Now()
		sum, err := rec.Run(ctx, ev)
		took := time.Since(start)
		load.stop()
		runtime.ReadMemStats(&after)
		stop()
		cancel()
		a.Flush()
		if err != nil {
			t.Fatalf("%v\nlast log lines:\n%s", err, log)
		}
		if err := checkTruth(sum, r.truth); err != nil {
			t.Fatal(err)
		}
		n := sum.Counts.InBoth + sum.Counts.OnlyInSystemA + sum.Counts.OnlyInSystemB
		alloc := after.TotalAlloc - before.TotalAlloc
		tb.add(fmt.Sprintf("%d", n), kind, sec(took), fmt.Sprintf("%.0f", float64(n)/took.Seconds()),
			fmt.Sprintf("%.0f MB", float64(alloc)/1e6), fmt.Sprintf("%.0f B", float64(alloc)/float64(n)),
			fmt.Sprintf("%.1f", float64(after.Mallocs-before.Mallocs)/float64(n)),
			fmt.Sprintf("%d", after.NumGC-before.NumGC), load.String())
	}
	t.Logf("\nReconciliation in this process (shared/app wiring, the simulator and S3 server in the same process); machine: %s\n%s\nprofiles in %s", machine(), tb, dir)
}

// profile starts a CPU profile and writes an allocation profile into dir,
// their names suffixed with -<run>; the returned func stops the CPU profile
// and writes the allocation profile again.
func profile(t testing.TB, dir, run string) func() {
	t.Helper()
	writeHeap := func(name string) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	writeHeap("allocs-before-" + run + ".pprof")
	cpu, err := os.Create(filepath.Join(dir, "cpu-"+run+".pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		runtime.GC()
		writeHeap("allocs-after-" + run + ".pprof")
	}
}
