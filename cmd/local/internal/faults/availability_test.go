package faults

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

// Row 13: both systems down: 503 problem+json naming both, with no PII,
// from lookup (also for a customer only one system holds) and sync.
func TestRow13BothDown(t *testing.T) {
	t.Parallel()
	r := newRig(t, withoutSnapshot())
	r.setFaults(bsim.Faults{Down: true})
	for _, email := range []string{conflictEmail, onlyAEmail, onlyBEmail} {
		c := r.invoke(lookupFn, lookupEvent(t, email))
		p := c.wantProblem(http.StatusServiceUnavailable)
		if !strings.Contains(p.Detail, "System A and System B") || len(p.Degraded) != 2 {
			t.Errorf("problem %+v does not name both systems", p)
		}
		if n := c.count(emf.SyncPartialResults); n != 1 {
			t.Errorf("sync.partial_results.total = %v, want 1", n)
		}
		c.wantLog("WARN", "system unavailable", "system A")
		c.wantLog("WARN", "system unavailable", "system B")
	}
	wantSyncDown(t, r.invoke(syncFn, syncEvent(t, conflictEmail, onlyBEmail)), "systemA", "systemB")
}

// invokeAsync starts an invocation; the channel gets its call.
func (r *rig) invokeAsync(fn string, event []byte) <-chan *call {
	done := make(chan *call, 1)
	go func() {
		res, err := r.fns.Invoke(context.Background(), fn, event, sandbox.InvokeOptions{CaptureLog: true})
		if err != nil {
			r.t.Errorf("invoke %s: %v", fn, err)
			close(done)
			return
		}
		done <- newCall(r.t, fn, res)
	}()
	return done
}

// Row 14: a function that exceeds its timeout, or crashes as a panic does,
// under the local tool: the invocation fails cleanly (Lambda's error, the
// process group killed, a REPORT with its status) and the next invocation
// succeeds on a fresh process, which sweeps the snapshot file the dead one
// left in /tmp. The real functions never overrun on their own (every wait
// is cut at the deadline minus a reserve, rows 1 and 12), so the process is
// frozen (SIGSTOP) or aborted (SIGABRT: a Go crash dump and exit 2, as an
// unrecovered panic) while it waits for a hung System B.
func TestRow14TimeoutAndCrash(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	tests := []struct {
		name      string
		sig       syscall.Signal
		errorType string
		status    string
		line      string
	}{
		{"exceeds its timeout", syscall.SIGSTOP, "Sandbox.Timedout", "Status: timeout", "Task timed out after 2.00 seconds"},
		{"crashes", syscall.SIGABRT, "Runtime.ExitError", "Status: error", "SIGABRT: abort"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Download mode: a range-mode process keeps no snapshot file
			// that its death could leave behind.
			r := newRig(t, withTimeout(lookupFn, timeout), withEnv("SNAPSHOT_MODE", "download"))
			wantBothSystems(t, r.invoke(lookupFn, lookupEvent(t, conflictEmail)))
			old := r.pid(lookupFn)
			r.setFaults(bsim.Faults{Hang: true})
			r.sim.ResetStats()
			done := r.invokeAsync(lookupFn, lookupEvent(t, conflictEmail))
			waitFor(t, "the lookup to call System B", func() bool { return r.sim.Stats().Requests > 0 })
			// The sandbox hands an event to a new process when the warm one
			// dies within 100 ms of taking it (it takes that for a death while
			// idle); die later, as a handler mid-call does.
			time.Sleep(150 * time.Millisecond)
			r.signal(lookupFn, tc.sig)
			c := <-done
			if c == nil {
				t.FailNow()
			}
			if c.res.FunctionError != "Unhandled" || c.res.ErrorType != tc.errorType {
				t.Errorf("function error %q type %q, want Unhandled %s: %s", c.res.FunctionError, c.res.ErrorType, tc.errorType, c.res.Payload)
			}
			if !strings.Contains(c.report, tc.status) || !strings.Contains(strings.Join(c.lines, "\n"), tc.line) {
				t.Errorf("REPORT %q / log lack %q and %q", c.report, tc.status, tc.line)
			}
			if pids := rigProcesses(r.id, lookupFn); len(pids) != 0 {
				t.Errorf("the failed process is still there: %v", pids)
			}

			r.setFaults(bsim.Faults{})
			next := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
			wantBothSystems(t, next)
			if next.res.InitDuration == 0 || r.pid(lookupFn) == old {
				t.Errorf("the next invocation did not run on a fresh process")
			}
			next.wantLog("INFO", "systema: removed a stale snapshot file")
		})
	}
}

// shared/systema's Store logs its snapshot checks with the request's
// context, so its records ("systema: snapshot loaded", "snapshot
// unavailable", "snapshot refresh failed") carry the Lambda request id that
// issue 3 asks every function log to carry (the rig checks every line).
func TestStoreLogsCarryRequestID(t *testing.T) {
	t.Parallel()
	r := newRig(t, withoutSnapshot())
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	c.wantLog("ERROR", "systema: snapshot unavailable")
}
