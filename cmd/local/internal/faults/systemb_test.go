package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// The showcase customers the rows look up.
const (
	conflictEmail = demodata.ShowcaseConflict      // in both systems, phone differs
	inSyncEmail   = demodata.ShowcaseInSync        // in both, identical
	onlyAEmail    = demodata.ShowcaseOnlyInSystemA // System A only
	onlyBEmail    = demodata.ShowcaseOnlyInSystemB // System B only
)

// lookupTimeout is LookupFunction's Timeout in the template.
func lookupTimeout(t *testing.T) time.Duration {
	t.Helper()
	f, _ := tpl.Function(lookupFn)
	return f.Timeout
}

// wantFromAOnly asserts a lookup answered from System A alone because
// System B failed: nothing of System B is in it.
func wantFromAOnly(t *testing.T, c *call) lookupBody {
	t.Helper()
	return wantPartial(t, c, "systemA")
}

// wantFromBOnly asserts a lookup answered from System B alone because
// System A failed: nothing of the bad snapshot is in it.
func wantFromBOnly(t *testing.T, c *call) lookupBody {
	t.Helper()
	return wantPartial(t, c, "systemB")
}

// wantPartial asserts a 200 answered from the system up alone, the other
// one degraded: only up's data, lastUpdated and freshness, no conflicts,
// the partial metric and the warning naming the system down.
func wantPartial(t *testing.T, c *call, up string) lookupBody {
	t.Helper()
	down, phone := "systemB", demodata.ShowcaseConflictPhoneA
	if up == "systemB" {
		down, phone = "systemA", demodata.ShowcaseConflictPhoneB
	}
	var b lookupBody
	if st := c.status(&b); st != http.StatusOK {
		t.Fatalf("status %d, want 200 from %s", st, up)
	}
	if !b.Partial || !slices.Equal(b.Degraded, []string{down}) {
		t.Errorf("partial=%v degraded=%v, want true [%s]", b.Partial, b.Degraded, down)
	}
	lu, fr := b.LastUpdated.SystemB, b.Freshness.SystemB
	if down == "systemA" {
		lu, fr = b.LastUpdated.SystemA, b.Freshness.SystemA
	}
	if lu != nil || fr != nil {
		t.Errorf("%s's lastUpdated/freshness used: %+v %+v", down, b.LastUpdated, b.Freshness)
	}
	for field, src := range b.Sources {
		if src != up {
			t.Errorf("sources[%s] = %s: %s's data was used", field, src, down)
		}
	}
	if len(b.Conflicts) != 0 {
		t.Errorf("conflicts with %s down: %v", down, b.Conflicts)
	}
	if b.Email == conflictEmail && b.Customer["phone"] != phone {
		t.Errorf("phone = %v, want %s's", b.Customer["phone"], up)
	}
	if c.count(emf.SyncPartialResults) != 1 {
		t.Errorf("sync.partial_results.total = %v, want 1", c.count(emf.SyncPartialResults))
	}
	if _, n := c.metric(emf.SyncLag); (n == 0) != (down == "systemA") {
		t.Errorf("sync.lag.seconds has %d samples with %s down", n, down)
	}
	// "system unavailable" or, for bad data and other kinds, "system degraded".
	c.wantLog("WARN", "system ", `"emailHash"`, `"system":"`+down+`"`)
	return b
}

// wantBothSystems asserts a full (not partial) lookup answer that used
// System B.
func wantBothSystems(t *testing.T, c *call) lookupBody {
	t.Helper()
	var b lookupBody
	if st := c.status(&b); st != http.StatusOK {
		t.Fatalf("status %d, want 200", st)
	}
	if b.Partial || len(b.Degraded) != 0 {
		t.Errorf("partial=%v degraded=%v, want a full answer", b.Partial, b.Degraded)
	}
	if b.Email == conflictEmail && (b.Customer["phone"] != demodata.ShowcaseConflictPhoneB || b.LastUpdated.SystemB == nil) {
		t.Errorf("phone %v lastUpdated %+v: System B's newer phone not used", b.Customer["phone"], b.LastUpdated)
	}
	if n, _ := c.metric(emf.SyncPartialResults); n != 0 {
		t.Errorf("sync.partial_results.total = %v on a full answer", n)
	}
	c.noLog("WARN", "system unavailable")
	c.noLog("WARN", "system degraded")
	return b
}

// wantSyncDown asserts sync's 503 naming the systems down: they failed for
// every customer of the request.
func wantSyncDown(t *testing.T, c *call, systems ...string) {
	t.Helper()
	wantSyncFailed(t, c, http.StatusServiceUnavailable, systems...)
}

// wantSyncFailed asserts sync's problem with status naming the systems that
// failed for every customer of the request.
func wantSyncFailed(t *testing.T, c *call, status int, systems ...string) {
	t.Helper()
	p := c.wantProblem(status)
	want := map[string]string{"systemA": "System A", "systemB": "System B"}
	for _, s := range systems {
		if !strings.Contains(p.Detail, want[s]) {
			t.Errorf("detail %q does not name %s", p.Detail, want[s])
		}
	}
	if !slices.Equal(p.Degraded, systems) {
		t.Errorf("degraded = %v, want %v", p.Degraded, systems)
	}
	if c.count(emf.SyncPartialResults) != 1 {
		t.Errorf("sync.partial_results.total = %v, want 1", c.count(emf.SyncPartialResults))
	}
}

// wantCalls asserts the System B requests the simulator saw and that the
// function recorded one system_b.latency sample per request.
func wantCalls(t *testing.T, r *rig, c *call, requests int64) {
	t.Helper()
	if got := r.sim.Stats().Requests; got != requests {
		t.Errorf("System B saw %d requests, want %d", got, requests)
	}
	if _, n := c.metric(emf.SystemBLatency); int64(n) != requests {
		t.Errorf("system_b.latency has %d samples, want one per request (%d)", n, requests)
	}
}

// Row 1: System B hangs. Every call is cut at its budget (here
// SYSTEM_B_TIMEOUT_MS=300) and the whole read at app.SystemBBudget (two
// calls and a backoff: 1.1 s, minus the client's 250 ms reserve), which
// leaves room for exactly three cut calls; the lookup answers from System A
// well inside the Lambda timeout; sync answers 503
// naming System B. With a Timeout shorter than SYSTEM_B_TIMEOUT_MS, the one
// call is cut at the deadline minus the client's reserve, so the lookup
// still answers before the deadline.
func TestRow01SystemBHangs(t *testing.T) {
	t.Parallel()
	t.Run("cut at SYSTEM_B_TIMEOUT_MS", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, withEnv("SYSTEM_B_TIMEOUT_MS", "300"))
		r.setFaults(bsim.Faults{Hang: true})
		c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		wantFromAOnly(t, c)
		c.answeredBefore(app.SystemBBudget(300 * time.Millisecond))
		wantCalls(t, r, c, 3)
		c.wantLog("WARN", "system unavailable", "timed out")

		r.sim.ResetStats()
		s := r.invoke(syncFn, syncEvent(t, conflictEmail, inSyncEmail))
		wantSyncDown(t, s, "systemB")
		s.answeredBefore(lookupTimeout(t))
		s.wantLog("WARN", "system unavailable", "timed out")
	})
	t.Run("cut at the Lambda deadline", func(t *testing.T) {
		t.Parallel()
		const timeout = 2 * time.Second // the call's own budget (2000 ms) does not fit
		r := newRig(t, withTimeout(lookupFn, timeout), withTimeout(syncFn, timeout))
		r.setFaults(bsim.Faults{Hang: true})
		c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		wantFromAOnly(t, c)
		c.answeredBefore(timeout)
		wantCalls(t, r, c, 1) // no time is left for a retry
		s := r.invoke(syncFn, syncEvent(t, conflictEmail))
		wantSyncDown(t, s, "systemB")
		s.answeredBefore(timeout)
	})
}

// Row 2: System B answers 503 three times, then 200: the client's bounded,
// jittered retries (MaxAttempts 4 in shared/app) get the answer; the
// simulator sees exactly four requests, so no other layer retries.
func TestRow02SystemB503ThenOK(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.setFaults(bsim.Faults{FailNext: 3, Status: http.StatusServiceUnavailable})
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	wantBothSystems(t, c)
	wantCalls(t, r, c, 4)
	if st := r.sim.Stats(); st.Injected != 3 || st.Get != 1 {
		t.Errorf("simulator stats %+v, want 3 injected then 1 get served", st)
	}
}

// Row 3: System B 400 and 404 are not retried; a 404 means "only in
// System A", not a failure.
func TestRow03SystemB4xx(t *testing.T) {
	t.Parallel()
	t.Run("400 is a failure, not retried", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		r.setFaults(bsim.Faults{ErrorRate: 1, Status: http.StatusBadRequest})
		c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		wantFromAOnly(t, c)
		wantCalls(t, r, c, 1)
		c.wantLog("WARN", "system unavailable", "status 400")
	})
	t.Run("404 is only in System A", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		c := r.invoke(lookupFn, lookupEvent(t, onlyAEmail)) // System B really answers 404
		b := wantBothSystems(t, c)
		if b.LastUpdated.SystemA == nil || b.LastUpdated.SystemB != nil || b.Freshness.SystemB == nil {
			t.Errorf("lastUpdated %+v freshness %+v: want System A's record, System B asked", b.LastUpdated, b.Freshness)
		}
		wantCalls(t, r, c, 1)

		r.sim.ResetStats() // an injected 404 for a customer System B holds reads the same
		r.setFaults(bsim.Faults{ErrorRate: 1, Status: http.StatusNotFound})
		c = r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		var b2 lookupBody
		if st := c.status(&b2); st != http.StatusOK || b2.Partial || b2.Customer["phone"] != demodata.ShowcaseConflictPhoneA {
			t.Errorf("status %d partial %v phone %v, want 200 from System A, not partial", st, b2.Partial, b2.Customer["phone"])
		}
		wantCalls(t, r, c, 1)

		s := r.invoke(syncFn, syncEvent(t, onlyAEmail))
		var sb syncBody
		if st := s.status(&sb); st != http.StatusOK || len(sb.Results) != 1 || !slices.Equal(sb.Results[0].PresentIn, []string{"systemA"}) || sb.Results[0].InSync {
			t.Errorf("sync: status %d %+v, want 200, present in System A only, not in sync", st, sb)
		}
	})
}

// Row 4: System B 429 with Retry-After: 3600: no hour-long wait (the wait
// is over the client's cap, so no retry), a degraded answer within budget.
func TestRow04SystemB429RetryAfter(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.setFaults(bsim.Faults{ErrorRate: 1, Status: http.StatusTooManyRequests, RetryAfter: "3600"})
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	wantFromAOnly(t, c)
	c.answeredBefore(lookupTimeout(t))
	wantCalls(t, r, c, 1)
	c.wantLog("WARN", "system unavailable", "status 429", "no retry")
	s := r.invoke(syncFn, syncEvent(t, conflictEmail))
	wantSyncDown(t, s, "systemB")
	s.answeredBefore(lookupTimeout(t))
}

// Row 5: broken System B answers are System B failures; nothing of them is
// used, and a redirect is not followed.
func TestRow05SystemBBadAnswers(t *testing.T) {
	t.Parallel()
	var redirected atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		w.Write([]byte(`{"email":"grace.hopper@example.com","phone":"+1 202 555 0100"}`)) //nolint:errcheck // test server
	}))
	t.Cleanup(target.Close)
	tests := []struct {
		name   string
		faults bsim.Faults
		cause  string // in the logged error
		kind   string // the failure's reason
		sync   int    // the status of a sync of that customer alone
	}{
		{"invalid JSON", bsim.Faults{Malformed: true}, "breaks the System B contract", "badData", http.StatusBadGateway},
		{"truncated body", bsim.Faults{Truncated: true}, "truncated body", "badData", http.StatusBadGateway},
		{"body over the cap", bsim.Faults{Oversized: true, OversizedBytes: 2 << 20}, "cap", "badData", http.StatusBadGateway},
		{"record without a valid lastUpdated", bsim.Faults{BadLastUpdated: true}, "lastUpdated", "badData", http.StatusBadGateway},
		{"302 to another host", bsim.Faults{Redirect: target.URL + "/customers/grace.hopper@example.com"}, "redirect not followed", "unavailable", http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			r.setFaults(tc.faults)
			c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
			if b := wantFromAOnly(t, c); b.Reasons["systemB"] != tc.kind {
				t.Errorf("reasons %v, want systemB: %s", b.Reasons, tc.kind)
			}
			wantCalls(t, r, c, 1)
			c.wantLog("WARN", "system ", tc.cause, `"kind":"`+tc.kind+`"`)
			s := r.invoke(syncFn, syncEvent(t, conflictEmail))
			wantSyncFailed(t, s, tc.sync, "systemB")
		})
	}
	t.Cleanup(func() {
		if n := redirected.Load(); n != 0 {
			t.Errorf("the redirect target got %d requests", n)
		}
	})
}

// Row 6: a sustained System B outage: the retry budget (a token bucket of
// 10 retries, +0.2 per call, +1 per second) stops the retry storm. Without
// it, every lookup would make MaxAttempts = 4 requests.
func TestRow06SustainedOutage(t *testing.T) {
	t.Parallel()
	const lookups = 40
	r := newRig(t)
	r.invoke(lookupFn, lookupEvent(t, inSyncEmail)).ok() // warm: the budget lives in the process
	r.setFaults(bsim.Faults{ErrorRate: 1, Status: http.StatusServiceUnavailable})
	r.sim.ResetStats()
	start := time.Now()
	exhausted := 0
	for i := range lookups {
		c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		wantFromAOnly(t, c)
		if len(c.logged("WARN", "system unavailable")) > 0 && strings.Contains(strings.Join(c.lines, "\n"), "retry budget exhausted") {
			exhausted++
		}
		if t.Failed() {
			t.Fatalf("lookup %d failed", i)
		}
	}
	elapsed := time.Since(start)
	got := r.sim.Stats().Requests
	// One request per lookup, plus at most what the bucket holds, earns and
	// refills meanwhile.
	bound := int64(lookups + 10 + lookups/5 + int(elapsed.Seconds()) + 1)
	if got > bound {
		t.Errorf("System B saw %d requests for %d lookups in %v, over the retry budget's %d", got, lookups, elapsed, bound)
	}
	if got >= 4*lookups {
		t.Errorf("System B saw %d requests: a retry storm", got)
	}
	if exhausted == 0 {
		t.Errorf("no lookup logged that the retry budget was exhausted")
	}
	t.Logf("%d lookups during the outage: %d System B requests (%d without a budget), %d lookups refused a retry by the budget, in %v",
		lookups, got, 4*lookups, exhausted, elapsed.Round(time.Millisecond))
}

// Row 16: System B fails for one customer of a batch (the next request
// answered 400, which is not retried): that customer's result is
// "unknown", naming System B, with its own problem; the others are
// answered from both systems, and the batch is 200, partial.
func TestRow16SystemBFailsForOneCustomerOfABatch(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.setFaults(bsim.Faults{FailNext: 1, Status: http.StatusBadRequest})
	emails := []string{conflictEmail, inSyncEmail, onlyAEmail}
	s := r.invoke(syncFn, syncEvent(t, emails...))
	var b syncBody
	if st := s.status(&b); st != http.StatusOK || len(b.Results) != len(emails) {
		t.Fatalf("status %d with %d results, want 200 with %d: %+v", st, len(b.Results), len(emails), b)
	}
	if !b.Partial || !slices.Equal(b.Degraded, []string{"systemB"}) {
		t.Errorf("partial %v degraded %v, want true [systemB]", b.Partial, b.Degraded)
	}
	want := map[string]string{conflictEmail: "conflicts", inSyncEmail: "inSync", onlyAEmail: "conflicts"}
	unknown := 0
	for _, res := range b.Results {
		if res.Status != "unknown" {
			if res.Status != want[res.Email] || len(res.Degraded) != 0 || res.Problem != nil {
				t.Errorf("%s: status %s degraded %v problem %+v, want %s from both systems", res.Email, res.Status, res.Degraded, res.Problem, want[res.Email])
			}
			continue
		}
		unknown++
		if !slices.Equal(res.Degraded, []string{"systemB"}) || res.Reasons["systemB"] != "unavailable" || res.InSync || len(res.Conflicts) != 0 ||
			res.Problem == nil || res.Problem.Status != http.StatusServiceUnavailable || !strings.Contains(res.Problem.Detail, "System B could not be asked") {
			t.Errorf("unknown result %+v problem %+v, want System B unavailable, no conflicts, a 503 problem", res, res.Problem)
		}
		if !slices.Equal(res.PresentIn, []string{"systemA"}) {
			t.Errorf("unknown result presentIn %v, want what System A answered: [systemA]", res.PresentIn)
		}
	}
	if unknown != 1 {
		t.Errorf("%d unknown results, want exactly the one whose System B request failed", unknown)
	}
	wantCalls(t, r, s, int64(len(emails)))
	if s.count(emf.SyncPartialResults) != 1 {
		t.Errorf("sync.partial_results.total = %v, want 1", s.count(emf.SyncPartialResults))
	}
	s.wantLog("WARN", "system unavailable", `"emailHash"`, `"system":"systemB"`, "status 400")
	s.answeredBefore(lookupTimeout(t))
}

// Row 17: System B is down and the customer is only in System B (created
// there today): the lookup answers 503 naming System B, with Retry-After,
// not 404: the customer is unknown, not absent. With System B back, it is
// found.
func TestRow17SystemBDownCustomerOnlyInB(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.setFaults(bsim.Faults{Down: true})
	c := r.invoke(lookupFn, lookupEvent(t, onlyBEmail))
	p := c.wantProblem(http.StatusServiceUnavailable)
	if p.Detail != "the customer is not in System A and System B could not be asked; try again later" ||
		!slices.Equal(p.Degraded, []string{"systemB"}) || p.Reasons["systemB"] != "unavailable" {
		t.Errorf("problem %+v, want System B named as unavailable", p)
	}
	if ra := c.http().Header.Get("Retry-After"); ra != "30" {
		t.Errorf("Retry-After %q, want 30", ra)
	}
	if c.count(emf.SyncPartialResults) != 1 {
		t.Errorf("sync.partial_results.total = %v, want 1", c.count(emf.SyncPartialResults))
	}
	c.wantLog("WARN", "system unavailable", `"emailHash"`, `"system":"systemB"`)
	c.wantLog("INFO", "lookup", `"status":503`)

	r.setFaults(bsim.Faults{})
	var b lookupBody
	if st := r.invoke(lookupFn, lookupEvent(t, onlyBEmail)).status(&b); st != http.StatusOK || b.Partial || b.LastUpdated.SystemB == nil {
		t.Errorf("with System B back: status %d partial %v, want 200 from System B", st, b.Partial)
	}
}

// Row 18: one System B customer breaks the contract (its lastUpdated does
// not parse) on a list page among good ones. The System B side guarantees
// that the stream reconciliation joins (the app's reconcile.SystemB over
// the real client, in-process against the rig's simulator) yields every
// other customer in join order, that one customer as a
// *merge.BadRecordError naming its page and item and the field, never a
// value, and carries on to the end; and, on the real lookup function, that
// other customers are answered from both systems while that one is
// answered from System A alone. (How the join counts the bad record is the
// reconciler's: see shared/reconcile.)
func TestRow18SystemBBadItem(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	bad := inSyncEmail
	r.setFaults(bsim.Faults{BadItem: bad})

	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	wantBothSystems(t, c)
	c = r.invoke(lookupFn, lookupEvent(t, bad))
	wantFromAOnly(t, c)
	c.wantLog("WARN", "system degraded", `"kind":"badData"`, "lastUpdated")

	// Where the bad customer sits in System B's list, pages of app.PageSize.
	var keys []string
	for line := range bytes.Lines(data.systemB) {
		rec, err := systemb.UnmarshalCustomer(bytes.TrimSpace(line))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, rec.Key())
	}
	slices.Sort(keys)
	at, ok := slices.BinarySearch(keys, merge.Key(bad))
	if !ok {
		t.Fatalf("the data set has no %s in System B", bad)
	}
	wantPosition := fmt.Sprintf("page %d item %d", at/app.PageSize+1, at%app.PageSize+1)

	snap := filepath.Join(t.TempDir(), snapshotKey)
	if err := os.WriteFile(snap, data.snapshot, 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := tpl.Function(reconcileFn)
	env, _ := f.ComposeEnv(map[string]string{"SYSTEM_B_URL": r.simURL, "SYSTEM_B_TOKEN": r.token, "SNAPSHOT_URI": "file://" + snap})
	out := &lineLog{next: suiteLog}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.New(ctx, app.Options{Function: "reconcile", Getenv: func(k string) string { return env[k] }, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Store.Close()
	var got []string
	var bads []*merge.BadRecordError
	for rec, err := range a.Reconciler().B.List(ctx) {
		var be *merge.BadRecordError
		switch {
		case err == nil:
			got = append(got, rec.Key())
		case errors.As(err, &be):
			bads = append(bads, be)
		default:
			t.Fatalf("the stream ended after %d customers: %v", len(got), err)
		}
	}
	want := slices.Delete(slices.Clone(keys), at, at+1)
	if !slices.Equal(got, want) {
		t.Errorf("the stream yielded %d customers, want the %d others in join order", len(got), len(want))
	}
	if len(bads) != 1 || bads[0].Source != merge.SystemB || bads[0].Position != wantPosition || !strings.Contains(bads[0].Reason, "lastUpdated") {
		t.Fatalf("bad records %v, want one of System B at %s about lastUpdated", bads, wantPosition)
	}
	if msg := bads[0].Error(); strings.Contains(msg, "@") || strings.Contains(msg, "not-a-time") {
		t.Errorf("the bad record %q quotes a value", msg)
	}

	// The real reconcile function counts it, lists it and completes.
	wantBadRecordCounted(t, r, "faults-bad-item", merge.SystemB)
}

// wantBadRecordCounted runs the real reconcile function for a fresh event
// over a data set in which one customer of src is malformed: the run
// completes, counts exactly that record in badRecords and its metric, and
// joins every other customer (src's count one below the truth).
func wantBadRecordCounted(t *testing.T, r *rig, id string, src merge.Source) {
	t.Helper()
	c := r.invoke(reconcileFn, scheduledEvent(t, id, scheduledAt))
	s := summaryOf(t, c)
	if s.Status != reconcile.StatusRan || !s.Complete {
		t.Fatalf("reconcile: status %s complete %v (%s %s), want a complete run despite the bad record", s.Status, s.Complete, s.StoppedReason, s.Error)
	}
	other := merge.SystemB
	metric, otherMetric := emf.ReconcileBadRecordsSystemA, emf.ReconcileBadRecordsSystemB
	want := truthCounts()
	gotN, wantN := s.Counts.SystemA, want.SystemA-1
	if src == merge.SystemB {
		other, metric, otherMetric = merge.SystemA, emf.ReconcileBadRecordsSystemB, emf.ReconcileBadRecordsSystemA
		gotN, wantN = s.Counts.SystemB, want.SystemB-1
	}
	if s.BadRecords[src] != 1 || s.BadRecords[other] != 0 {
		t.Errorf("badRecords %v, want 1 in %s and none in %s", s.BadRecords, src, other)
	}
	if gotN != wantN {
		t.Errorf("%s customers %d, want %d: all but the bad one", src, gotN, wantN)
	}
	if n := c.count(metric); n != 1 {
		t.Errorf("%s = %v, want 1", metric, n)
	}
	if n := c.count(otherMetric); n != 0 {
		t.Errorf("%s = %v, want 0", otherMetric, n)
	}
	c.wantLog("INFO", "reconciliation finished", `"complete":true`)
}

// Row 19: System B's token rotates (Secrets Manager holds the new one, the
// functions cache the old one for an hour): the first refused call reads
// the secret once more and is retried with the new token, so the lookup
// answers from both systems, one refresh counted
// (system_b.token_refreshes.total) and logged; the next lookups use the
// refreshed token. When the secret store still holds a refused token,
// each lookup makes exactly one refresh and answers from System A alone.
// The functions read the secret from a fake Secrets Manager through the
// real SDK (AWS_ENDPOINT_URL_SECRETS_MANAGER).
func TestRow19SystemBTokenRotation(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:system-b-token"
	sm := testkit.NewSecretsManager(t)
	r := newRig(t, withEnv("SYSTEM_B_TOKEN", ""), withEnv("SYSTEM_B_TOKEN_SECRET_ARN", arn),
		withForced("AWS_ENDPOINT_URL_SECRETS_MANAGER", sm.URL))
	sm.Put(arn, r.token)
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	wantBothSystems(t, c)
	if sm.Reads(arn) != 1 || c.count(emf.SystemBTokenRefreshes) != 0 {
		t.Fatalf("%d secret reads, %v refreshes before the rotation; want 1, 0", sm.Reads(arn), c.count(emf.SystemBTokenRefreshes))
	}

	rotated := "faults-rotated-" + randomHex(12)
	data.pii.addSecret(rotated)
	sm.Put(arn, rotated)
	if err := r.sim.SetToken(rotated); err != nil {
		t.Fatal(err)
	}
	r.sim.ResetStats()
	c = r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	wantBothSystems(t, c)
	if st := r.sim.Stats(); st.Requests != 2 || st.Unauthorized != 1 {
		t.Errorf("simulator stats %+v, want 2 requests: the old token refused, the new one served", st)
	}
	if sm.Reads(arn) != 2 || c.count(emf.SystemBTokenRefreshes) != 1 {
		t.Errorf("%d secret reads, %v refreshes; want 2, 1", sm.Reads(arn), c.count(emf.SystemBTokenRefreshes))
	}
	c.wantLog("INFO", "read it again from Secrets Manager")
	for range 2 {
		c = r.invoke(lookupFn, lookupEvent(t, inSyncEmail))
		wantBothSystems(t, c)
		if c.count(emf.SystemBTokenRefreshes) != 0 {
			t.Errorf("a refresh after the rotation was absorbed")
		}
	}
	if sm.Reads(arn) != 2 || r.sim.Stats().Unauthorized != 1 {
		t.Errorf("%d secret reads, %d refused requests after the rotation; want 2, 1", sm.Reads(arn), r.sim.Stats().Unauthorized)
	}

	// System B rotates again, but the secret store is not updated.
	unknown := "faults-unknown-" + randomHex(12)
	data.pii.addSecret(unknown)
	if err := r.sim.SetToken(unknown); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		c = r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		wantFromAOnly(t, c)
		c.wantLog("WARN", "system degraded", `"kind":"unauthorized"`, "refused the credentials")
		if c.count(emf.SystemBTokenRefreshes) != 1 || sm.Reads(arn) != 2+i {
			t.Errorf("lookup %d with a refused secret: %v refreshes, %d secret reads; want 1, %d", i, c.count(emf.SystemBTokenRefreshes), sm.Reads(arn), 2+i)
		}
	}
}
