//go:build soak

package faults

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/shared/reconcile"
)

// The long variants of the rows, run by
//
//	go test -tags soak -run Soak ./cmd/local/internal/faults/

// Row 1 with the template's own settings (SYSTEM_B_TIMEOUT_MS=2000,
// Timeout 10 s, MaxAttempts 4): a hanging System B costs four cut calls,
// and the lookup still answers before its Timeout.
func TestSoakRow01TemplateSettings(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.setFaults(bsim.Faults{Hang: true})
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	wantFromAOnly(t, c)
	c.answeredBefore(lookupTimeout(t))
	wantCalls(t, r, c, 4)
	t.Logf("lookup with System B hanging, template settings: answered in %v of its %v Timeout", c.reportedDuration(), lookupTimeout(t))
	s := r.invoke(syncFn, syncEvent(t, conflictEmail))
	wantSyncDown(t, s, "systemB")
	s.answeredBefore(lookupTimeout(t))
}

// Row 6 sustained: four execution environments answer 400 lookups while
// System B fails every request; each environment's retry budget bounds
// its retries.
func TestSoakRow06LongOutage(t *testing.T) {
	t.Parallel()
	const envs, lookups = 4, 400
	r := newRig(t, withInstances(lookupFn, envs))
	r.setFaults(bsim.Faults{ErrorRate: 1, Status: http.StatusServiceUnavailable})
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				res := r.invokeAsync(lookupFn, lookupEvent(t, conflictEmail))
				if c := <-res; c == nil || c.res.FunctionError != "" {
					t.Errorf("a lookup failed: %+v", c)
				}
			}
		}()
	}
	for i := range lookups {
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	got := r.sim.Stats().Requests
	bound := int64(lookups + envs*10 + lookups/5 + envs*(int(elapsed.Seconds())+1))
	if got > bound {
		t.Errorf("System B saw %d requests for %d lookups on %d environments in %v, over the budgets' %d", got, lookups, envs, elapsed, bound)
	}
	t.Logf("%d lookups on %d environments during an outage: %d System B requests (bound %d, %d without a budget) in %v",
		lookups, envs, got, bound, 4*lookups, elapsed.Round(time.Millisecond))
}

// Row 11 with more deliveries: eight copies of the event at once on four
// environments; one runs, none scans twice, nothing is overwritten.
func TestSoakRow11ManyDeliveries(t *testing.T) {
	t.Parallel()
	const envs, copies = 4, 8
	r := newRig(t, withInstances(reconcileFn, envs))
	r.setFaults(bsim.Faults{LatencyMs: 100})
	ev := scheduledEvent(t, "faults-storm", scheduledAt)
	var chans []<-chan *call
	for range copies {
		chans = append(chans, r.invokeAsync(reconcileFn, ev))
	}
	var statuses []string
	for _, ch := range chans {
		c := <-ch
		if c == nil {
			t.FailNow()
		}
		statuses = append(statuses, string(summaryOf(t, c).Status))
	}
	slices.Sort(statuses)
	if n := slices.Index(statuses, string(reconcile.StatusRan)); n < 0 || slices.Contains(statuses[n+1:], string(reconcile.StatusRan)) {
		t.Errorf("statuses %v, want exactly one ran", statuses)
	}
	pages := int64(data.truth.SystemB/1000 + 1)
	if n := r.sim.Stats().List; n > pages {
		t.Errorf("%d list requests, one scan makes %d", n, pages)
	}
	wantWriteOnce(t, r, "faults-storm", 1)
	if s, _ := storedReport(t, r, "faults-storm"); !s.Complete || s.Counts != truthCounts() {
		t.Errorf("stored summary %+v", s)
	}
}

// Row 14 for the reconciliation with production timings, on the real
// bootstrap and the real clock: the template's lease (RECONCILE_LEASE_SECONDS
// 30, renewed every 10 s), a run killed (SIGKILL, as an out-of-memory kill)
// while it lists System B, and Lambda's retry of the same invocation (same
// request id) a full minute later. The retry finds the dead run's lease
// expired and no report, takes the event over and completes the night; a
// later delivery gets the stored report. (The fast row uses a 2 s lease;
// shared/reconcile's fake-clock tests add the second retry at +180 s.)
func TestSoakRow14ReconcileKilledProductionTimings(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.setFaults(bsim.Faults{LatencyMs: 1500}) // about 4.5 s for the three list pages
	ev := scheduledEvent(t, "faults-killed-production", scheduledAt)
	const requestID = "8f14e45f-ceea-467f-a0e6-ab0d1b3c4d5e"
	invoke := func() <-chan *call {
		done := make(chan *call, 1)
		go func() {
			defer close(done)
			res, err := r.fns.Invoke(context.Background(), reconcileFn, ev, sandbox.InvokeOptions{CaptureLog: true, RequestID: requestID})
			if err != nil {
				t.Errorf("invoke: %v", err)
				return
			}
			done <- newCall(t, reconcileFn, res)
		}()
		return done
	}
	done := invoke()
	waitFor(t, "the run to list System B", func() bool { return r.sim.Stats().List > 0 }) // its claim is written by then
	r.signal(reconcileFn, syscall.SIGKILL)
	if c := <-done; c == nil || c.res.ErrorType != "Runtime.ExitError" {
		t.Fatalf("the killed run: %+v", c)
	}
	dead := claimOf(t, r, "faults-killed-production")
	killedAt := time.Now()
	if dead.Released || !killedAt.Before(dead.ExpiresAt) || !strings.HasPrefix(dead.Token, requestID+"-") {
		t.Fatalf("after the kill: claim %+v; want the killed invocation's live, unreleased lease", dead)
	}

	r.setFaults(bsim.Faults{})
	time.Sleep(time.Minute) // Lambda's wait before its first retry of a failed asynchronous invocation
	retry := <-invoke()
	if retry == nil {
		t.FailNow()
	}
	s := summaryOf(t, retry)
	if s.Status != reconcile.StatusRan || !s.Complete || s.Counts != truthCounts() || s.TookOverFrom != dead.Token {
		t.Fatalf("Lambda's retry at +1 min: %s complete=%v counts %+v tookOverFrom %q; want it to take over %q and complete",
			s.Status, s.Complete, s.Counts, s.TookOverFrom, dead.Token)
	}
	if !strings.HasPrefix(s.Attempt, requestID+"-") || s.Attempt == dead.Token {
		t.Errorf("the retry's attempt %q: want a new token of the same invocation", s.Attempt)
	}
	wantWriteOnce(t, r, "faults-killed-production", 1)
	if again := summaryOf(t, r.invoke(reconcileFn, ev)); again.Status != reconcile.StatusDuplicate || again.Attempt != s.Attempt {
		t.Errorf("a later delivery: %s attempt %q, want the stored report of %q", again.Status, again.Attempt, s.Attempt)
	}
}
