//go:build bench

package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/cmd/local/internal/schedule"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/reconcile"
)

// reconcileRun is one measured invocation of ReconcileFunction.
type reconcileRun struct {
	n        int
	rep      int
	kind     string // "cold" (downloads and validates the snapshot) or "warm"
	res      *sandbox.Result
	sum      reconcile.Summary
	snapLoad time.Duration // the snapshot load the function logged (cold runs)
	load     loadSpan
}

func (r reconcileRun) visited() int {
	c := r.sum.Counts
	return c.InBoth + c.OnlyInSystemA + c.OnlyInSystemB
}

// TestE2EReconcile runs ReconcileFunction's bootstrap on a scheduled event
// for each data set (-e2e.reconcile), -e2e.repeat times in a fresh process:
// a cold run, then a warm one in the same process (another event). Each
// run's summary must equal the generator's ground truth.
func TestE2EReconcile(t *testing.T) {
	tpl := loadTemplate(t)
	f := templateFunction(t, tpl, reconcileFn)
	bootstrap := buildFunction(t, f, filepath.Join(t.TempDir(), "build"), "", "")
	sched := reconcileSchedule(t, tpl)
	var runs []reconcileRun
	for _, n := range sizes(t, *flagReconcile) {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			r := newRig(t, tpl, n)
			for rep := 1; rep <= *flagRepeat; rep++ {
				log := &funcLog{}
				fn := r.function(t, reconcileFn, bootstrap, log)
				for _, kind := range []string{"cold", "warm"} {
					ev, err := schedule.Event(sched, schedule.Options{
						Function: reconcileFn, Time: time.Now(), Region: tpl.Region, AccountID: tpl.AccountID,
						StackName: tpl.StackName, ID: fmt.Sprintf("bench-%d-%d-%s-%d", n, rep, kind, time.Now().UnixNano()),
					})
					if err != nil {
						t.Fatal(err)
					}
					run := reconcileRun{n: n, rep: rep, kind: kind, load: startLoad()}
					ctx, cancel := context.WithTimeout(context.Background(), f.Timeout+time.Minute)
					res, err := fn.Invoke(ctx, ev, sandbox.InvokeOptions{})
					cancel()
					run.load.stop()
					checkInvocation(t, res, err, log)
					run.res = res
					if err := json.Unmarshal(res.Payload, &run.sum); err != nil {
						t.Fatalf("the function's answer is not a summary: %v\n%s", err, res.Payload)
					}
					if err := checkTruth(run.sum, r.truth); err != nil {
						t.Fatalf("%s run %d: %v", kind, rep, err)
					}
					if kind == "cold" {
						run.snapLoad, _ = log.lastSnapshotLoad()
					}
					t.Logf("n=%d rep %d %s: %s, %d MB peak RSS, init %s (load %s)",
						n, rep, kind, sec(res.Duration), res.MaxMemoryMB, ms(res.InitDuration), run.load)
					runs = append(runs, run)
				}
				closeFunction(t, fn, bootstrap)
			}
		})
	}
	t.Logf("\nReconciliation through the real bootstrap (%s, MemorySize %d MB, Timeout %s); machine: %s\n%s",
		reconcileFn, f.MemoryMB, f.Timeout, machine(), reconcileTable(runs))
}

// reconcileSchedule is the nightly schedule, which the template gives to
// ReconcileStateMachine (it starts the state machine, which invokes the
// function with the event as it came).
func reconcileSchedule(t testing.TB, tpl *samtemplate.Template) samtemplate.Schedule {
	t.Helper()
	sm, ok := tpl.StateMachine("ReconcileStateMachine")
	if !ok {
		t.Fatal("template.yaml has no ReconcileStateMachine")
	}
	sched, err := schedule.Pick(&samtemplate.Function{LogicalID: sm.LogicalID, Schedules: sm.Schedules}, "")
	if err != nil {
		t.Fatal(err)
	}
	return sched
}

// checkTruth compares a run's summary with the generator's ground truth.
func checkTruth(s reconcile.Summary, tr demodata.Truth) error {
	got := s.Counts
	want := reconcile.Counts{
		SystemA: tr.SystemA, SystemB: tr.SystemB, InBoth: tr.InBoth, InSync: tr.InSync,
		WithConflicts: tr.WithConflicts, OnlyInSystemA: tr.OnlyInSystemA, OnlyInSystemB: tr.OnlyInSystemB,
	}
	switch {
	case s.Status != reconcile.StatusRan || !s.Complete:
		return fmt.Errorf("%w: status %q, complete %v (%s %s)", errNotEqual, s.Status, s.Complete, s.StoppedReason, s.Error)
	case got != want:
		return fmt.Errorf("%w: counts %+v, want %+v", errNotEqual, got, want)
	case !maps.Equal(s.ConflictsByField, tr.ConflictsByField):
		return fmt.Errorf("%w: conflictsByField %v, want %v", errNotEqual, s.ConflictsByField, tr.ConflictsByField)
	case newerTally(s.NewerSource) != tr.NewerSource:
		return fmt.Errorf("%w: newerSource %v, want %+v", errNotEqual, s.NewerSource, tr.NewerSource)
	case len(s.DuplicateKeys) > 0:
		return fmt.Errorf("%w: duplicate keys %v", errNotEqual, s.DuplicateKeys)
	}
	return nil
}

func reconcileTable(runs []reconcileRun) *table {
	tb := &table{header: []string{"customers", "run", "REPORT Duration", "customers/s", "join (startedAt→finishedAt)",
		"snapshot load (logged)", "Max Memory Used (VmHWM)", "Init Duration", "not in sync", "load avg"}}
	for _, r := range runs {
		c := r.sum.Counts
		join := r.sum.FinishedAt.Sub(r.sum.StartedAt)
		snap := "-"
		if r.snapLoad > 0 {
			snap = sec(r.snapLoad)
		}
		initD := "-"
		if r.res.InitDuration > 0 {
			initD = ms(r.res.InitDuration)
		}
		tb.add(fmt.Sprintf("%d", r.visited()), fmt.Sprintf("%d %s", r.rep, r.kind), sec(r.res.Duration),
			fmt.Sprintf("%.0f", float64(r.visited())/r.res.Duration.Seconds()), sec(join), snap,
			fmt.Sprintf("%d MB", r.res.MaxMemoryMB), initD,
			fmt.Sprintf("%.2f%%", 100*float64(c.WithConflicts+c.OnlyInSystemA+c.OnlyInSystemB)/float64(r.visited())),
			r.load.String())
	}
	return tb
}
