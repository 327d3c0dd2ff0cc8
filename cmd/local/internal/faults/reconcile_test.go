package faults

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"iter"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/cmd/local/internal/statemachine"
	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

// scheduledAt is the scheduled time of the rows' events.
var scheduledAt = time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC)

// reportDir is the S3 prefix of an event's report.
func reportDir(id string) string {
	return reportPrefix + "/" + scheduledAt.Format("2006-01-02") + "/" + id + "/"
}

// summaryOf decodes a reconcile invocation's result.
func summaryOf(t *testing.T, c *call) reconcile.Summary {
	t.Helper()
	c.ok()
	var s reconcile.Summary
	if err := json.Unmarshal(c.res.Payload, &s); err != nil {
		t.Fatalf("the result is not a summary: %v: %s", err, c.res.Payload)
	}
	return s
}

// truthCounts are the counts a complete run over the data set must find.
func truthCounts() reconcile.Counts {
	tr := data.truth
	return reconcile.Counts{
		SystemA: tr.SystemA, SystemB: tr.SystemB, InBoth: tr.InBoth, InSync: tr.InSync,
		WithConflicts: tr.WithConflicts, OnlyInSystemA: tr.OnlyInSystemA, OnlyInSystemB: tr.OnlyInSystemB,
	}
}

// wantWriteOnce asserts the event's report objects: summary.json and the
// details parts of a run of the given number of invocations written once
// each (the versioned bucket would show a second version had anything been
// overwritten), the lease, claim.json, which is rewritten at every renewal,
// and, for a run of several invocations, checkpoint.json, rewritten by
// every invocation but the last.
func wantWriteOnce(t *testing.T, r *rig, id string, invocations int) {
	t.Helper()
	got := r.objectVersions(reportBucket, reportDir(id))
	details := 0
	for key, n := range got {
		switch {
		case key == "claim.json" && n >= 1:
		case key == "summary.json" && n == 1:
		case key == "checkpoint.json" && n == invocations-1:
		case strings.HasPrefix(key, "attempts/") && detailsPart.MatchString(key) && n == 1:
			details++
		default:
			t.Errorf("report object %s has %d versions", key, n)
		}
	}
	if got["claim.json"] == 0 || got["summary.json"] != 1 || details != invocations {
		t.Errorf("report objects (versions) %v, want claim.json, summary.json and %d details part(s), each written once", got, invocations)
	}
}

// detailsPart matches the key of a details part.
var detailsPart = regexp.MustCompile(`/details-[0-9]{4}\.jsonl\.gz$`)

// objectKey turns a report location (s3://bucket/key) into its key.
func objectKey(t *testing.T, loc string) string {
	t.Helper()
	key, ok := strings.CutPrefix(loc, "s3://"+reportBucket+"/")
	if !ok {
		t.Fatalf("location %q is not in s3://%s", loc, reportBucket)
	}
	return key
}

// storedReport reads the event's summary.json and the details it points
// to and checks that both are whole: the summary valid JSON, the details a
// complete gzip stream with one JSON line per customer not in sync or bad
// record.
func storedReport(t *testing.T, r *rig, id string) (reconcile.Summary, int) {
	t.Helper()
	return readReport(t, r, reportDir(id)+"summary.json")
}

// readReport reads a summary (the night's or an attempt's) and its details.
func readReport(t *testing.T, r *rig, summaryKey string) (reconcile.Summary, int) {
	t.Helper()
	var s reconcile.Summary
	raw := r.getObject(reportBucket, summaryKey)
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not whole JSON: %v", summaryKey, err)
	}
	if len(s.DetailsParts) == 0 || s.DetailsParts[0] != s.Details {
		t.Fatalf("details %s, parts %v", s.Details, s.DetailsParts)
	}
	lines := 0
	for n, part := range s.DetailsParts {
		zr, err := gzip.NewReader(bytes.NewReader(r.getObject(reportBucket, objectKey(t, part))))
		if err != nil {
			t.Fatalf("details part %d: %v", n+1, err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				t.Fatalf("details line %d is not JSON", lines+1)
			}
			lines++
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("details part %d is not a whole gzip stream: %v", n+1, err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Fatal(err)
		}
	}
	c := s.Counts
	if want := c.WithConflicts + c.OnlyInSystemA + c.OnlyInSystemB + s.BadRecords[merge.SystemA] + s.BadRecords[merge.SystemB]; lines != want {
		t.Errorf("details has %d lines, the summary counts %d customers not in sync and bad records", lines, want)
	}
	return s, lines
}

// attemptSummaries lists the keys of the event's attempts' summaries.
func attemptSummaries(r *rig, id string) []string {
	var keys []string
	for key := range r.objectVersions(reportBucket, reportDir(id)+"attempts/") {
		if strings.HasSuffix(key, "/summary.json") {
			keys = append(keys, reportDir(id)+"attempts/"+key)
		}
	}
	return keys
}

// claimOf reads the event's claim.json.
func claimOf(t *testing.T, r *rig, id string) (c struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	Released  bool      `json:"released"`
}) {
	t.Helper()
	if err := json.Unmarshal(r.getObject(reportBucket, reportDir(id)+"claim.json"), &c); err != nil {
		t.Fatalf("claim.json: %v", err)
	}
	return c
}

// Row 11: the same scheduled event delivered twice, one after the other
// and at the same time: one report, never overwritten, and the second
// delivery does no full scan (the simulator counts the list requests).
func TestRow11DuplicateDelivery(t *testing.T) {
	t.Parallel()
	r := newRig(t, withInstances(reconcileFn, 2))

	// One after the other.
	ev := scheduledEvent(t, "faults-sequential", scheduledAt)
	c := r.invoke(reconcileFn, ev)
	first := summaryOf(t, c)
	if first.Status != reconcile.StatusRan || !first.Complete || first.Counts != truthCounts() {
		t.Fatalf("first delivery: status %s complete %v counts %+v, want ran, complete, %+v", first.Status, first.Complete, first.Counts, truthCounts())
	}
	if first.Snapshot.VersionID != r.versions[0] {
		t.Errorf("the report names snapshot %q, want %q", first.Snapshot.VersionID, r.versions[0])
	}
	c.wantLog("INFO", "reconciliation finished", `"complete":true`)
	if n := c.count(emf.ReconcileCustomers); n != float64(first.Counts.InBoth+first.Counts.OnlyInSystemA+first.Counts.OnlyInSystemB) {
		t.Errorf("reconcile.customers.total = %v", n)
	}
	scan := r.sim.Stats().List
	if scan < 1 {
		t.Fatalf("the run listed nothing")
	}

	c = r.invoke(reconcileFn, ev)
	second := summaryOf(t, c)
	if second.Status != reconcile.StatusDuplicate || !second.StartedAt.Equal(first.StartedAt) || second.Counts != first.Counts {
		t.Errorf("second delivery: %+v, want the stored summary with status duplicate", second)
	}
	if n := r.sim.Stats().List; n != scan {
		t.Errorf("the second delivery listed System B: %d list requests, want %d", n, scan)
	}
	c.wantLog("INFO", "duplicate delivery")
	if n, _ := c.metric(emf.ReconcileCustomers); n != 0 {
		t.Errorf("the duplicate counted %v customers", n)
	}
	wantWriteOnce(t, r, "faults-sequential", 1)
	if stored, _ := storedReport(t, r, "faults-sequential"); stored.Status != reconcile.StatusRan || stored.Counts != first.Counts {
		t.Errorf("stored summary %+v, want the first run's", stored)
	}

	// At the same time, on two execution environments; System B is slowed
	// so that the runs overlap.
	r.setFaults(bsim.Faults{LatencyMs: 150})
	r.sim.ResetStats()
	ev = scheduledEvent(t, "faults-concurrent", scheduledAt)
	var wg sync.WaitGroup
	calls := make([]*call, 2)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.fns.Invoke(context.Background(), reconcileFn, ev, sandbox.InvokeOptions{CaptureLog: true})
			if err != nil {
				t.Error(err)
				return
			}
			calls[i] = newCall(t, reconcileFn, res)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var statuses []string
	for _, c := range calls {
		statuses = append(statuses, string(summaryOf(t, c).Status))
	}
	slices.Sort(statuses)
	if statuses[1] != string(reconcile.StatusRan) || (statuses[0] != string(reconcile.StatusInProgress) && statuses[0] != string(reconcile.StatusDuplicate)) {
		t.Errorf("concurrent deliveries answered %v, want one ran and one inProgress (or duplicate)", statuses)
	}
	if n := r.sim.Stats().List; n != scan {
		t.Errorf("concurrent deliveries made %d list requests, one full scan makes %d", n, scan)
	}
	wantWriteOnce(t, r, "faults-concurrent", 1)
	if s, _ := storedReport(t, r, "faults-concurrent"); !s.Complete || s.Counts != truthCounts() {
		t.Errorf("stored summary %+v, want complete with the truth's counts", s)
	}
}

// Row 12: the Lambda deadline arrives mid-reconciliation, again and again:
// the template's state machine (ReconcileStateMachine, its definition run
// by cmd/local/internal/statemachine) drives the real bootstrap with a
// tiny Timeout until the night is complete. Each invocation stops its
// reserve before the deadline, between two customers, writes its details
// part and checkpoint.json, releases its lease and answers continued (a
// success: no retry, no reconcile.incomplete.total); the next one takes
// the lease over and goes on from the checkpoint, System B from the page
// it stopped in. The night's summary.json then holds the truth's counts
// and its parts the details of every customer not in sync, once.
func TestRow12DeadlineMidRun(t *testing.T) {
	t.Parallel()
	// 3 s: an invocation stops at the deadline minus its 1 s reserve;
	// System B's three list pages take 800 ms each.
	const timeout = 3 * time.Second
	r := newRig(t, withTimeout(reconcileFn, timeout))
	warm := summaryOf(t, r.invoke(reconcileFn, scheduledEvent(t, "faults-warm", scheduledAt)))
	if !warm.Complete {
		t.Fatalf("the warm-up run did not complete: %+v", warm)
	}
	sm, ok := tpl.StateMachine("ReconcileStateMachine")
	if !ok {
		t.Fatal("template.yaml has no ReconcileStateMachine")
	}
	m, err := statemachine.New(sm.Definition)
	if err != nil {
		t.Fatal(err)
	}
	var calls []*call
	m.Invoke = func(ctx context.Context, fn string, payload []byte) (statemachine.Result, error) {
		res, err := r.fns.Invoke(ctx, fn, payload, sandbox.InvokeOptions{CaptureLog: true})
		if err != nil {
			return statemachine.Result{}, err
		}
		calls = append(calls, newCall(t, fn, res))
		if res.FunctionError != "" {
			return statemachine.Result{Error: cmp.Or(res.ErrorType, "Unhandled"), Cause: string(res.Payload)}, nil
		}
		return statemachine.Result{Payload: res.Payload}, nil
	}
	m.Send = func(_ context.Context, q string, body []byte) error {
		t.Errorf("dead letter to %s: %s", q, body)
		return nil
	}
	m.Sleep = func(_ context.Context, d time.Duration) error {
		t.Errorf("a retry (after %s): no invocation should fail", d)
		return nil
	}

	r.setFaults(bsim.Faults{LatencyMs: 800})
	r.sim.ResetStats()
	ev := scheduledEvent(t, "faults-deadline", scheduledAt)
	out, err := m.Run(context.Background(), ev, "faults-execution")
	if err != nil {
		t.Fatalf("the execution: %v", err)
	}
	if len(calls) < 2 {
		t.Fatalf("%d invocations: the run did not need the loop (System B too fast for the Timeout?)", len(calls))
	}
	t.Logf("%d invocations, %d list requests", len(calls), r.sim.Stats().List)
	for i, c := range calls {
		s := summaryOf(t, c)
		last := i == len(calls)-1
		switch {
		case !last && (s.Status != reconcile.StatusContinued || s.Complete || s.StoppedAfter != ""):
			t.Errorf("invocation %d: %s complete=%v stoppedAfter %q; want continued (no join key in the answer)", i+1, s.Status, s.Complete, s.StoppedAfter)
		case last && (s.Status != reconcile.StatusRan || !s.Complete || s.Invocations != len(calls)):
			t.Errorf("the last invocation: %s complete=%v invocations %d; want ran, complete, %d", s.Status, s.Complete, s.Invocations, len(calls))
		}
		// Each stops on its own before its Timeout, and none is a failure.
		if d := c.reportedDuration(); d >= timeout || strings.Contains(c.report, "Status: timeout") {
			t.Errorf("invocation %d: REPORT %q: want it to end before its Timeout of %v", i+1, c.report, timeout)
		}
		if n, _ := c.metric(emf.ReconcileIncomplete); n != 0 {
			t.Errorf("invocation %d counted reconcile.incomplete.total %v", i+1, n)
		}
		if !last {
			c.wantLog("INFO", "reconciliation continues in the next invocation", `"eventId":"faults-deadline"`)
		}
	}
	var doc struct {
		Result struct {
			Status   string           `json:"status"`
			Complete bool             `json:"complete"`
			Counts   reconcile.Counts `json:"counts"`
		} `json:"result"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || doc.Result.Status != "ran" || doc.Result.Counts != truthCounts() {
		t.Errorf("the execution's output %s (%v)", out, err)
	}
	stored, lines := storedReport(t, r, "faults-deadline")
	if !stored.Complete || stored.Counts != truthCounts() || stored.Invocations != len(calls) || len(stored.DetailsParts) != len(calls) {
		t.Errorf("summary.json: complete=%v counts %+v invocations %d parts %d; want the truth's counts over %d invocations",
			stored.Complete, stored.Counts, stored.Invocations, len(stored.DetailsParts), len(calls))
	}
	if want := data.truth.WithConflicts + data.truth.OnlyInSystemA + data.truth.OnlyInSystemB; lines != want {
		t.Errorf("the details parts hold %d lines, want %d (every customer not in sync, once)", lines, want)
	}
	wantWriteOnce(t, r, "faults-deadline", len(calls))
	// System B is read once, plus a page again per continuation.
	if pages, most := r.sim.Stats().List, int64(3+len(calls)-1); pages > most {
		t.Errorf("%d list requests over %d invocations, want at most %d", pages, len(calls), most)
	}
}

// Row 14 for the reconciliation: a run killed mid-way (SIGKILL, as an
// out-of-memory kill) leaves its lease in claim.json, renewed until the
// kill. Its Lambda deadline (the rig's 30 s Timeout) is still far ahead
// when the retry comes, but its lease is not: the lease is a setting
// (RECONCILE_LEASE_SECONDS, 2 s here; 30 s in the template, under Lambda's
// 60 s first retry), and the test waits, as Lambda would, until the lease
// it reads in claim.json has expired. The retry, on a fresh process, takes
// the event over and writes the night's report. (With the earlier claim,
// which held until the dead run's deadline, it answered inProgress or
// failed, and the night had no report.) The fake-clock tests of
// shared/reconcile carry the production timings: 900 s Timeout, a kill at
// +240 s, retries at +60 s and +180 s.
func TestRow14ReconcileKilledMidRun(t *testing.T) {
	t.Parallel()
	r := newRig(t, withEnv(config.EnvReconcileLeaseSeconds, "2"))
	r.setFaults(bsim.Faults{LatencyMs: 1500}) // about 4.5 s for the three list pages
	ev := scheduledEvent(t, "faults-killed", scheduledAt)
	done := r.invokeAsync(reconcileFn, ev)
	// The claim is written before System B is listed; the heartbeat renews
	// it every 2/3 s (a second version of claim.json).
	waitFor(t, "the run to list System B", func() bool { return r.sim.Stats().List > 0 })
	waitFor(t, "the run to renew its lease", func() bool {
		return r.objectVersions(reportBucket, reportDir("faults-killed"))["claim.json"] >= 2
	})
	r.signal(reconcileFn, syscall.SIGKILL)
	c := <-done
	if c == nil || c.res.ErrorType != "Runtime.ExitError" {
		t.Fatalf("the killed run: %+v", c)
	}
	if got := r.objectVersions(reportBucket, reportDir("faults-killed")); got["summary.json"] != 0 || len(attemptSummaries(r, "faults-killed")) != 0 {
		t.Fatalf("after the kill: objects %v, want no report", got)
	}
	dead := claimOf(t, r, "faults-killed")
	if dead.Released {
		t.Fatalf("the killed run released its lease: %+v", dead)
	}

	r.setFaults(bsim.Faults{})
	waitFor(t, "the killed run's lease to expire", func() bool { return time.Now().After(dead.ExpiresAt) })
	retry := r.invoke(reconcileFn, ev)
	s := summaryOf(t, retry)
	if s.Status != reconcile.StatusRan || !s.Complete || s.Counts != truthCounts() {
		t.Fatalf("the retry: %s complete=%v counts %+v; want it to take over and complete", s.Status, s.Complete, s.Counts)
	}
	if s.TookOverFrom != dead.Token || s.Attempt == dead.Token {
		t.Errorf("attempt %q took over from %q, want a new attempt taking over the killed one's %q", s.Attempt, s.TookOverFrom, dead.Token)
	}
	if retry.res.InitDuration == 0 {
		t.Error("the retry did not run on a fresh process")
	}
	retry.wantLog("WARN", "took over an expired lease", `"eventId":"faults-killed"`)
	wantWriteOnce(t, r, "faults-killed", 1)
	if stored, _ := storedReport(t, r, "faults-killed"); stored.Attempt != s.Attempt || !stored.Complete {
		t.Errorf("summary.json %+v, want the retry's", stored)
	}
}

// hookB calls hook once, when System B's list has yielded after records.
type hookB struct {
	inner reconcile.SystemB
	after int
	once  *sync.Once
	hook  func()
}

func (h hookB) List(ctx context.Context) iter.Seq2[*merge.Record, error] {
	return func(yield func(*merge.Record, error) bool) {
		n := 0
		for rec, err := range h.inner.List(ctx) {
			if n++; n == h.after {
				h.once.Do(h.hook)
			}
			if !yield(rec, err) {
				return
			}
		}
	}
}

// Row 8: a newer snapshot appears while a reconciliation runs: the run
// finishes on the version it started with (even after the warm function
// has switched to the new one) and its report names that version; the
// next run uses the new one.
//
// Why in-process: the new version must appear, and be loaded by the same
// execution environment, at a known point of the run (after 1,500 System B
// records). A real bootstrap offers no hook there, and racing an upload
// against a running process would not be deterministic. So this row drives
// shared/app (the functions' wiring) and shared/reconcile against the same
// real servers. It sets process environment variables (the AWS SDK reads
// them), so it does not run in parallel.
func TestRow08SnapshotReplacedMidRun(t *testing.T) {
	// In range mode the run reads the pinned VersionId in place: no file.
	for _, mode := range []string{"download", "range"} {
		t.Run(mode, func(t *testing.T) { snapshotReplacedMidRun(t, mode) })
	}
}

// snapshotReplacedMidRun is row 8 with SNAPSHOT_MODE mode.
func snapshotReplacedMidRun(t *testing.T, mode string) {
	r := newRig(t)
	tmp := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3": r.s3.URL(), "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "faults", "AWS_SECRET_ACCESS_KEY": "faults-secret", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": filepath.Join(tmp, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(tmp, "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "TMPDIR": tmp,
	} {
		t.Setenv(k, v)
	}
	f, _ := tpl.Function(reconcileFn)
	env, _ := f.ComposeEnv(map[string]string{
		"SYSTEM_B_URL": r.simURL, "SYSTEM_B_TOKEN": r.token, "SNAPSHOT_REFRESH_SECONDS": "1", "SNAPSHOT_MODE": mode,
	})
	env["AWS_ENDPOINT_URL_S3"] = r.s3.URL()
	out := &lineLog{next: suiteLog}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.New(ctx, app.Options{Function: "reconcile", Need: config.Need{Report: true},
		Getenv: func(k string) string { return env[k] }, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Store.Close()

	v1 := r.versions[0]
	newer := data.truth.ExportedAt.Add(24 * time.Hour)
	dropped := 100 // the new snapshot lacks the first customers
	snap2 := newSnapshot(t, newer, data.a[dropped:])
	var v2 string
	var filesDuring []string
	rec := a.Reconciler()
	rec.B = hookB{inner: rec.B, after: 1500, once: &sync.Once{}, hook: func() {
		v2 = r.putSnapshot(snap2)
		time.Sleep(refreshWait)
		snap, err := a.Store.Acquire(ctx) // the warm environment's next request
		if err != nil {
			t.Errorf("acquire during the run: %v", err)
			return
		}
		if got := snap.Version().VersionID; got != v2 {
			t.Errorf("the store serves %q during the run, want the new %q", got, v2)
		}
		snap.Release()
		filesDuring, _ = filepath.Glob(filepath.Join(tmp, "systema-*.db"))
	}}

	s1, err := rec.Run(ctx, reconcile.Event{ID: "faults-run-1", Time: scheduledAt})
	if err != nil {
		t.Fatal(err)
	}
	if v2 == "" {
		t.Fatal("the new snapshot was never uploaded: the hook did not run")
	}
	if s1.Snapshot.VersionID != v1 || !s1.Snapshot.ExportedAt.Equal(data.truth.ExportedAt) || !s1.Complete || s1.Counts != truthCounts() {
		t.Errorf("run 1: snapshot %+v complete %v counts %+v; want version %s exported %v, complete, %+v",
			s1.Snapshot, s1.Complete, s1.Counts, v1, data.truth.ExportedAt, truthCounts())
	}
	wantFiles := [2]int{2, 1} // during the run: the pinned old one and the new one; after: the new one
	if mode == "range" {
		wantFiles = [2]int{0, 0}
	}
	if len(filesDuring) != wantFiles[0] {
		t.Errorf("snapshot files during the run: %v, want %d (the pinned old one and the new one in download mode)", filesDuring, wantFiles[0])
	}
	if files, _ := filepath.Glob(filepath.Join(tmp, "systema-*.db")); len(files) != wantFiles[1] {
		t.Errorf("snapshot files after the run: %v, want %d (only the new one in download mode: the old one released)", files, wantFiles[1])
	}
	if stored, _ := storedReport(t, r, "faults-run-1"); stored.Snapshot.VersionID != v1 {
		t.Errorf("summary.json names snapshot %q, want %q", stored.Snapshot.VersionID, v1)
	}

	s2, err := rec.Run(ctx, reconcile.Event{ID: "faults-run-2", Time: scheduledAt})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Snapshot.VersionID != v2 || !s2.Snapshot.ExportedAt.Equal(newer) || s2.Counts.SystemA != len(data.a)-dropped || !s2.Complete {
		t.Errorf("run 2: snapshot %+v counts %+v, want version %s exported %v with %d System A customers",
			s2.Snapshot, s2.Counts, v2, newer, len(data.a)-dropped)
	}
	a.Flush()
	lines := out.lines()
	loaded := 0
	for _, l := range lines {
		if strings.Contains(l, "systema: snapshot loaded") && (strings.Contains(l, v1) || strings.Contains(l, v2)) {
			loaded++
		}
	}
	if loaded != 2 {
		t.Errorf("%d \"snapshot loaded\" lines for the two versions, want 2:\n%s", loaded, strings.Join(lines, "\n"))
	}
	c := newCall(t, reconcileFn, &sandbox.Result{Log: []byte(strings.Join(lines, "\n"))})
	union := func(c reconcile.Counts) int { return c.InBoth + c.OnlyInSystemA + c.OnlyInSystemB }
	if n := c.count(emf.ReconcileCustomers); n != float64(union(s1.Counts)+union(s2.Counts)) {
		t.Errorf("reconcile.customers.total over both runs = %v, want %d", n, union(s1.Counts)+union(s2.Counts))
	}
}
