package reconcile_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
)

var event = reconcile.Event{ID: "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c", Time: time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC)}

// countingB counts List calls and records served, and can slow them down.
type countingB struct {
	next    reconcile.SystemB
	lists   atomic.Int64
	records atomic.Int64
	// onRecord runs before each record is served (advances a fake clock).
	onRecord func()
}

func (c *countingB) List(ctx context.Context) iter.Seq2[*merge.Record, error] {
	c.lists.Add(1)
	return func(yield func(*merge.Record, error) bool) {
		for r, err := range c.next.List(ctx) {
			c.records.Add(1)
			if c.onRecord != nil {
				c.onRecord()
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

func newReconciler(t *testing.T, sys *testkit.Systems) (*reconcile.Reconciler, *countingB, string) {
	t.Helper()
	dir := t.TempDir()
	b := &countingB{next: sys.ReconcileB()}
	return &reconcile.Reconciler{
		A: sys.ReconcileA(), B: b, Reports: &report.FileStore{Dir: dir},
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), Metrics: testkit.NewMetrics(),
		TempDir: t.TempDir(),
	}, b, dir
}

func truth(t *testing.T, n int) demodata.Truth {
	t.Helper()
	cfg := demodata.NewConfig(1, n)
	cfg.Showcase = true
	cfg.ExportedAt, cfg.Now = testkit.ExportedAt, testkit.ReadAt
	g, err := demodata.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g.Truth()
}

func readDetails(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("details is not gzip: %v", err)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("details line: %v", err)
		}
		lines = append(lines, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("details stream: %v", err)
	}
	return lines
}

func TestRunMatchesGroundTruth(t *testing.T) {
	const n = 3000
	want := truth(t, n)
	sys := testkit.NewSystems(t, n)
	r, _, dir := newReconciler(t, sys)
	sum, err := r.Run(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	got := sum.Counts
	if !sum.Complete || sum.Status != reconcile.StatusRan {
		t.Fatalf("complete=%v status=%s", sum.Complete, sum.Status)
	}
	wantCounts := reconcile.Counts{
		SystemA: want.SystemA, SystemB: want.SystemB, InBoth: want.InBoth, InSync: want.InSync,
		WithConflicts: want.WithConflicts, OnlyInSystemA: want.OnlyInSystemA, OnlyInSystemB: want.OnlyInSystemB,
	}
	if got != wantCounts {
		t.Errorf("counts = %+v\nwant     %+v", got, wantCounts)
	}
	for field, c := range want.ConflictsByField {
		if sum.ConflictsByField[field] != c {
			t.Errorf("conflictsByField[%s] = %d, want %d", field, sum.ConflictsByField[field], c)
		}
	}
	if len(sum.ConflictsByField) != len(want.ConflictsByField) {
		t.Errorf("conflictsByField = %v, want %v", sum.ConflictsByField, want.ConflictsByField)
	}
	if sum.NewerSource[merge.SystemA] != want.NewerSource.SystemA || sum.NewerSource[merge.SystemB] != want.NewerSource.SystemB {
		t.Errorf("newerSource = %v, want %+v", sum.NewerSource, want.NewerSource)
	}
	if sum.Snapshot.VersionID != "v1" || !sum.Snapshot.ExportedAt.Equal(testkit.ExportedAt) {
		t.Errorf("snapshot = %+v", sum.Snapshot)
	}

	day := filepath.Join(dir, "2026-11-24", event.ID)
	if want := filepath.Join(day, "attempts", sum.Attempt, "details-0001.jsonl.gz"); sum.Attempt == "" || localPath(sum.Details) != want {
		t.Errorf("details at %s, want %s (under the attempt)", sum.Details, want)
	}
	details := readDetails(t, localPath(sum.Details))
	if wantLines := want.WithConflicts + want.OnlyInSystemA + want.OnlyInSystemB; len(details) != wantLines {
		t.Errorf("details has %d lines, want %d", len(details), wantLines)
	}
	for _, d := range details {
		if d["email"] == "" || d["presence"] == nil {
			t.Fatalf("details line without email or presence: %v", d)
		}
	}
	var stored reconcile.Summary
	b, err := os.ReadFile(filepath.Join(day, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &stored); err != nil || stored.Counts != got || !stored.Complete {
		t.Errorf("stored summary = %+v (%v)", stored, err)
	}
	if stored.BadRecords[merge.SystemA] != 0 || stored.BadRecords[merge.SystemB] != 0 || len(stored.BadRecords) != 2 {
		t.Errorf("badRecords = %v, want both systems at 0", stored.BadRecords)
	}
}

// localPath turns a file:// location into a path.
func localPath(loc string) string { return strings.TrimPrefix(loc, "file://") }

func TestRunTwiceDoesNotRecompute(t *testing.T) {
	sys := testkit.NewSystems(t, 200)
	r, b, dir := newReconciler(t, sys)
	first, err := r.Run(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	summaryPath := filepath.Join(dir, "2026-11-24", event.ID, "summary.json")
	before, _ := os.ReadFile(summaryPath)
	second, err := r.Run(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	if second.Status != reconcile.StatusDuplicate || second.Counts != first.Counts {
		t.Errorf("second delivery: status %s counts %+v, want duplicate with %+v", second.Status, second.Counts, first.Counts)
	}
	if b.lists.Load() != 1 {
		t.Errorf("System B was listed %d times, want 1 (no second scan)", b.lists.Load())
	}
	after, _ := os.ReadFile(summaryPath)
	if !bytes.Equal(before, after) {
		t.Error("the second delivery overwrote summary.json")
	}
}

func TestRunConcurrentDeliveries(t *testing.T) {
	sys := testkit.NewSystems(t, 500)
	r, b, _ := newReconciler(t, sys)
	var wg sync.WaitGroup
	statuses := make([]reconcile.Status, 4)
	errs := make([]error, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := r.Run(context.Background(), event)
			statuses[i], errs[i] = s.Status, err
		}()
	}
	wg.Wait()
	ran := 0
	for i, s := range statuses {
		if errs[i] != nil {
			t.Errorf("delivery %d: %v", i, errs[i])
		}
		if s == reconcile.StatusRan {
			ran++
		}
	}
	if ran != 1 || b.lists.Load() != 1 {
		t.Errorf("statuses %v, %d scans of System B; want exactly one run", statuses, b.lists.Load())
	}
}

// TestRunStopsBeforeDeadline: production timings on an injectable clock.
// The function's Timeout is 900 s and System B serves a record per 0.5 s
// of the fake clock (the whole list takes longer than one invocation). The
// run stops its reserve (30 s) before the deadline, between two customers:
// it writes its details part and checkpoint.json (not summary.json),
// releases its lease and answers StatusContinued without an error; the
// next delivery, at once, continues from the checkpoint to the end.
func TestRunStopsBeforeDeadline(t *testing.T) {
	sys := testkit.NewSystems(t, 3000)
	r, b, dir := newReconciler(t, sys)
	clock := newClock(time.Now())
	r.Now = clock.Now
	b.onRecord = func() { clock.Advance(500 * time.Millisecond) }
	metrics := testkit.NewMetrics()
	r.Metrics = metrics
	ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(900*time.Second))
	defer cancel()
	sum, err := r.Run(ctx, event)
	if err != nil {
		t.Fatalf("a run stopped for its deadline: err %v, want none (it continues)", err)
	}
	if sum.Complete || sum.Status != reconcile.StatusContinued || sum.StoppedAfter != "" || sum.Error != "" {
		t.Fatalf("summary = %s complete %v after %q error %q; want continued, without the join key (it goes into the state machine's history)", sum.Status, sum.Complete, sum.StoppedAfter, sum.Error)
	}
	// 870 s of the fake clock at 0.5 s a record, a record or two ahead.
	if got := b.records.Load(); got < 1739 || got > 1742 {
		t.Errorf("System B served %d records before the stop, want about 1740 (870 s)", got)
	}
	if metrics.Counts[emf.ReconcileIncomplete] != 0 {
		t.Errorf("reconcile.incomplete.total = %d, want 0: a continuation is not a failure", metrics.Counts[emf.ReconcileIncomplete])
	}
	day := filepath.Join(dir, "2026-11-24", event.ID)
	if _, err := os.Stat(filepath.Join(day, "summary.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a continued run wrote the night's summary.json (%v)", err)
	}
	readDetails(t, filepath.Join(day, "attempts", sum.Attempt, "details-0001.jsonl.gz")) // whole gzip stream
	if _, err := os.Stat(filepath.Join(day, "checkpoint.json")); err != nil {
		t.Errorf("no checkpoint: %v", err)
	}
	if c := readClaim(t, r.Reports); !c.Released || c.Token != sum.Attempt {
		t.Errorf("claim %+v, want this attempt's, released", c)
	}

	// The continuation: the same event, delivered again right away.
	b.onRecord = nil
	first := int(b.records.Load())
	again, err := r.Run(context.Background(), event)
	if err != nil || again.Status != reconcile.StatusRan || !again.Complete || again.Attempt == sum.Attempt || again.Invocations != 2 {
		t.Fatalf("the continuation: %s complete %v attempt %q invocations %d, %v; want a complete run by a new attempt, the second invocation",
			again.Status, again.Complete, again.Attempt, again.Invocations, err)
	}
	if again.TookOverFrom != sum.Attempt || !again.StartedAt.Equal(sum.StartedAt) {
		t.Errorf("tookOverFrom %q startedAt %s, want the released attempt %q and the first start %s", again.TookOverFrom, again.StartedAt, sum.Attempt, sum.StartedAt)
	}
	want := truth(t, 3000)
	if again.Counts.SystemA != want.SystemA || again.Counts.SystemB != want.SystemB || again.Counts.InSync != want.InSync {
		t.Errorf("counts %+v, want the truth's", again.Counts)
	}
	// This System B has no positions (not a ResumableB): the continuation
	// reads it again from the start and passes over what was joined.
	if got := int(b.records.Load()); got != first+len(sys.B) {
		t.Errorf("System B served %d records over both invocations, want %d+%d", got, first, len(sys.B))
	}
}

// reserveCutB behaves like the System B client near a deadline: it cuts
// its calls at the context's deadline minus its own reserve, so the list
// fails with a timeout a little before the context ends.
type reserveCutB struct {
	next    reconcile.SystemB
	reserve time.Duration
	now     func() time.Time
}

func (c reserveCutB) List(ctx context.Context) iter.Seq2[*merge.Record, error] {
	return func(yield func(*merge.Record, error) bool) {
		for r, err := range c.next.List(ctx) {
			if dl, ok := ctx.Deadline(); ok && dl.Sub(c.now()) < c.reserve {
				yield(nil, fmt.Errorf("systemb: request timed out: %w", context.DeadlineExceeded))
				return
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

// TestRunStopsWhenSystemBCutsAtItsReserve: a System B call cut at its own
// reserve within StopSlack of the stop (a page fetch that was in flight at
// the stop) ends the run as stopped before the deadline, not as a System B
// failure. A reserve of 0.7 s leaves no room for a clean stop: the clock
// jumps 1 s a record.
func TestRunStopsWhenSystemBCutsAtItsReserve(t *testing.T) {
	sys := testkit.NewSystems(t, 3000)
	r, _, dir := newReconciler(t, sys)
	clock := newClock(time.Now())
	r.Now = clock.Now
	cut := &countingB{next: sys.ReconcileB(), onRecord: func() { clock.Advance(time.Second) }}
	r.B = reserveCutB{next: cut, reserve: 1500 * time.Millisecond, now: clock.Now}
	r.Reserve = 700 * time.Millisecond
	ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(100*time.Second))
	defer cancel()
	sum, err := r.Run(ctx, event)
	if !errors.Is(err, reconcile.ErrIncomplete) {
		t.Fatalf("err %v, want ErrIncomplete", err)
	}
	if sum.Complete || sum.Error != "" || sum.StoppedAfter == "" || !strings.Contains(sum.StoppedReason, "deadline") {
		t.Errorf("summary = complete %v reason %q error %q after %q; want a deadline stop, not a failure", sum.Complete, sum.StoppedReason, sum.Error, sum.StoppedAfter)
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-11-24", event.ID, "attempts", sum.Attempt, "summary.json")); err != nil {
		t.Errorf("no partial report: %v", err)
	}
}

func TestRunSystemBFailsMidway(t *testing.T) {
	sys := testkit.NewSystems(t, 500)
	sys.BErr = errors.New("systemb: unavailable")
	r, _, dir := newReconciler(t, sys)
	sum, err := r.Run(context.Background(), event)
	if !errors.Is(err, reconcile.ErrIncomplete) || !errors.Is(err, sys.BErr) {
		t.Fatalf("err %v, want ErrIncomplete wrapping System B's failure", err)
	}
	if sum.Complete || sum.Error == "" || sum.Status != reconcile.StatusIncomplete {
		t.Errorf("summary = %+v", sum)
	}
	day := filepath.Join(dir, "2026-11-24", event.ID)
	if _, err := os.Stat(filepath.Join(day, "attempts", sum.Attempt, "summary.json")); err != nil {
		t.Errorf("no partial report written for the failed run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(day, "summary.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed run wrote the night's summary.json (%v)", err)
	}
}

func TestRunRejects(t *testing.T) {
	tests := []struct {
		name string
		ev   reconcile.Event
		aErr error
		want error
	}{
		{"path traversal in id", reconcile.Event{ID: "../../etc", Time: event.Time}, nil, reconcile.ErrBadEvent},
		{"empty id", reconcile.Event{Time: event.Time}, nil, reconcile.ErrBadEvent},
		{"no time", reconcile.Event{ID: "x"}, nil, reconcile.ErrBadEvent},
		{"system A unavailable", event, errors.New("systema: unavailable"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := testkit.NewSystems(t, 10)
			sys.AErr = tt.aErr
			r, _, dir := newReconciler(t, sys)
			_, err := r.Run(context.Background(), tt.ev)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a rejected run wrote %d entries", len(entries))
			}
		})
	}
}

func customer(email string) *merge.Record {
	var r merge.Record
	r.Values[merge.FieldEmail] = email
	r.LastUpdated = testkit.ExportedAt
	return &r
}

// TestRunJoinOrderAndDuplicates feeds hand-made streams: System A holds one
// customer twice by non-ASCII case ("JÖRG@" and "jörg@" share a key), which
// is counted and joined once; a System B stream that goes backwards stops
// the run as a failure.
func TestRunJoinOrderAndDuplicates(t *testing.T) {
	t.Run("duplicate key in System A", func(t *testing.T) {
		sys := &testkit.Systems{
			A: []*merge.Record{customer("a@example.com"), customer("jörg@example.com"), customer("JÖRG@example.com"), customer("z@example.com")},
			B: []*merge.Record{customer("jörg@example.com")},
		}
		r, _, _ := newReconciler(t, sys)
		sum, err := r.Run(context.Background(), event)
		if err != nil {
			t.Fatal(err)
		}
		want := reconcile.Counts{SystemA: 3, SystemB: 1, InBoth: 1, InSync: 1, OnlyInSystemA: 2}
		if sum.Counts != want || sum.DuplicateKeys[merge.SystemA] != 1 {
			t.Errorf("counts %+v duplicates %v, want %+v and 1 duplicate in System A", sum.Counts, sum.DuplicateKeys, want)
		}
	})
	t.Run("System B out of order", func(t *testing.T) {
		sys := &testkit.Systems{
			A: []*merge.Record{customer("a@example.com")},
			B: []*merge.Record{customer("m@example.com"), customer("b@example.com")},
		}
		r, _, _ := newReconciler(t, sys)
		sum, err := r.Run(context.Background(), event)
		if !errors.Is(err, reconcile.ErrIncomplete) || sum.Complete || !strings.Contains(sum.Error, "not in join order") {
			t.Errorf("err %v, summary complete=%v error=%q; want a failed run naming the order", err, sum.Complete, sum.Error)
		}
	})
}
