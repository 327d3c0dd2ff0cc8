package reconcile_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// streams are the two systems of the checkpoint tests: the generator's
// records with bad records and a repeated key mixed in, and a System B
// customer after System A's last one.
type streams struct {
	a, b     []item
	pageSize int
	version  atomic.Value // the snapshot's VersionID
	served   atomic.Int64 // System B items served
}

func newStreams(t *testing.T, n, pageSize int) *streams {
	t.Helper()
	sys := testkit.NewSystems(t, n)
	s := &streams{pageSize: pageSize}
	s.version.Store("v1")
	for i, r := range sys.A {
		if i%97 == 5 {
			s.a = append(s.a, item{err: &merge.BadRecordError{Source: merge.SystemA, Position: "row " + strconv.Itoa(i), Reason: "last_updated: not RFC 3339"}})
		}
		s.a = append(s.a, item{rec: r})
		if i == 40 {
			s.a = append(s.a, item{rec: r}) // a repeated key
		}
	}
	for i, r := range sys.B {
		if i%89 == 3 {
			s.b = append(s.b, item{err: &merge.BadRecordError{Source: merge.SystemB, Position: fmt.Sprintf("page %d item %d", i/pageSize+1, i%pageSize+1), Reason: "email: missing"}})
		}
		s.b = append(s.b, item{rec: r})
	}
	// System B customers after System A's last one: several invocations
	// may run with System A ended.
	last := sys.A[len(sys.A)-1]
	for i := range 4 {
		after := &merge.Record{LastUpdated: last.LastUpdated}
		after.Values[merge.FieldEmail] = max(last.Key(), sys.B[len(sys.B)-1].Key()) + ".after" + strconv.Itoa(i)
		s.b = append(s.b, item{rec: after})
	}
	return s
}

// lastAStep is the number of join steps up to and including System A's
// last customer.
func (s *streams) lastAStep() int {
	keys := map[string]bool{}
	var lastA string
	for _, it := range s.a {
		if it.rec != nil {
			keys[it.rec.Key()], lastA = true, it.rec.Key()
		}
	}
	for _, it := range s.b {
		if it.rec != nil && it.rec.Key() <= lastA {
			keys[it.rec.Key()] = true
		}
	}
	return len(keys)
}

func (s *streams) Acquire(context.Context) (reconcile.Snapshot, error) { return snapA{s}, nil }

type snapA struct{ s *streams }

func (a snapA) All(ctx context.Context) iter.Seq2[*merge.Record, error] {
	return func(yield func(*merge.Record, error) bool) {
		for _, it := range a.s.a {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			if !yield(it.rec, it.err) {
				return
			}
		}
	}
}

func (a snapA) Version() reconcile.SnapshotVersion {
	v := a.s.version.Load().(string)
	return reconcile.SnapshotVersion{URI: "mem://systema", VersionID: v, ETag: `"` + v + `"`, ExportedAt: testkit.ExportedAt}
}

func (a snapA) Release() {}

// List lists System B from the start (the interface every System B has).
func (s *streams) List(ctx context.Context) iter.Seq2[*merge.Record, error] {
	seq, _ := s.ListFrom(ctx, "")
	return seq
}

// ListFrom is System B in pages with positions, like the real pager's:
// "page/item" of each item; a continuation starts at the page's first item
// (the page is fetched again) and passes over the items before.
func (s *streams) ListFrom(ctx context.Context, pos string) (iter.Seq2[*merge.Record, error], func() string) {
	start := 0
	if pos != "" {
		var page, it int
		if _, err := fmt.Sscanf(pos, "%d/%d", &page, &it); err != nil {
			return func(yield func(*merge.Record, error) bool) { yield(nil, fmt.Errorf("bad position %q", pos)) }, nil
		}
		start = page*s.pageSize + it
	}
	var cur atomic.Int64
	seq := func(yield func(*merge.Record, error) bool) {
		s.served.Add(int64(start % s.pageSize)) // the page's items before the position, fetched again
		for i := start; i < len(s.b); i++ {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			cur.Store(int64(i))
			s.served.Add(1)
			if !yield(s.b[i].rec, s.b[i].err) {
				return
			}
		}
	}
	return seq, func() string {
		i := int(cur.Load())
		return fmt.Sprintf("%d/%d", i/s.pageSize, i%s.pageSize)
	}
}

var _ reconcile.ResumableB = (*streams)(nil)

// newLooped returns a reconciler over s and a file store in dir.
func newLooped(t *testing.T, s *streams, st report.Store) *reconcile.Reconciler {
	t.Helper()
	return &reconcile.Reconciler{
		A: s, B: s, Reports: st,
		Log:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Metrics: testkit.NewMetrics(), TempDir: t.TempDir(),
	}
}

// loop delivers the event until a call does not answer continued, as the
// state machine does, and returns the last summary, the number of calls
// and the checkpoints read after each continued call.
func loop(t *testing.T, r *reconcile.Reconciler, st report.Store) (reconcile.Summary, int, []map[string]any) {
	t.Helper()
	var cps []map[string]any
	for calls := 1; calls < 10000; calls++ {
		sum, err := r.Run(context.Background(), event)
		if err != nil {
			t.Fatalf("call %d: %v", calls, err)
		}
		if sum.Status != reconcile.StatusContinued {
			return sum, calls, cps
		}
		b, _, err := st.Get(context.Background(), event.Time.Format("2006-01-02")+"/"+event.ID+"/checkpoint.json")
		if err != nil {
			t.Fatalf("call %d continued without a checkpoint: %v", calls, err)
		}
		var cp map[string]any
		if err := json.Unmarshal(b, &cp); err != nil {
			t.Fatal(err)
		}
		cps = append(cps, cp)
	}
	t.Fatal("the loop did not end")
	panic("unreachable")
}

// allDetails is the content of a summary's details parts, in order.
func allDetails(t *testing.T, sum reconcile.Summary) []byte {
	t.Helper()
	if len(sum.DetailsParts) != sum.Invocations || sum.Details != sum.DetailsParts[0] {
		t.Fatalf("details %s, parts %v for %d invocations", sum.Details, sum.DetailsParts, sum.Invocations)
	}
	var all bytes.Buffer
	for n, p := range sum.DetailsParts {
		if !strings.HasSuffix(p, fmt.Sprintf("/details-%04d.jsonl.gz", n+1)) {
			t.Errorf("part %d is %s", n+1, p)
		}
		f, err := os.Open(localPath(p))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("part %d: %v", n+1, err)
		}
		if _, err := io.Copy(&all, zr); err != nil {
			t.Fatalf("part %d: %v", n+1, err)
		}
		f.Close()
	}
	return all.Bytes()
}

// sameReport fails unless got reports what want does.
func sameReport(t *testing.T, got, want reconcile.Summary) {
	t.Helper()
	if !got.Complete || got.Status != reconcile.StatusRan {
		t.Fatalf("the loop ended with %s complete=%v", got.Status, got.Complete)
	}
	type report struct {
		Counts                                 reconcile.Counts
		BadRecords, NewerSource, DuplicateKeys map[merge.Source]int
		ConflictsByField                       map[string]int
		Snapshot                               reconcile.SnapshotVersion
		StoppedAfter                           string
	}
	g := report{got.Counts, got.BadRecords, got.NewerSource, got.DuplicateKeys, got.ConflictsByField, got.Snapshot, got.StoppedAfter}
	w := report{want.Counts, want.BadRecords, want.NewerSource, want.DuplicateKeys, want.ConflictsByField, want.Snapshot, want.StoppedAfter}
	gj, _ := json.Marshal(g)
	wj, _ := json.Marshal(w)
	if !bytes.Equal(gj, wj) {
		t.Errorf("the looped run reports\n%s\nthe uninterrupted one\n%s", gj, wj)
	}
	if gd, wd := allDetails(t, got), allDetails(t, want); !bytes.Equal(gd, wd) {
		t.Errorf("details differ: %d bytes over %d parts, %d bytes in one", len(gd), got.Invocations, len(wd))
	}
}

// TestContinueEqualsUninterrupted: a run split into invocations at forced
// points (MaxPerInvocation) writes the report one uninterrupted run
// writes: the same counts and tallies, and details whose parts, in order,
// are the uninterrupted run's details line for line.
func TestContinueEqualsUninterrupted(t *testing.T) {
	const n, pageSize = 300, 7
	base := newStreams(t, n, pageSize)
	whole := t.TempDir()
	want, calls, _ := loop(t, newLooped(t, base, &report.FileStore{Dir: whole}), &report.FileStore{Dir: whole})
	if calls != 1 || want.Invocations != 1 || want.BadRecords[merge.SystemA] == 0 || want.BadRecords[merge.SystemB] == 0 || want.DuplicateKeys[merge.SystemA] != 1 {
		t.Fatalf("the uninterrupted run: %d calls, %+v; want one call with bad records and a repeated key", calls, want)
	}
	steps := want.Counts.InBoth + want.Counts.OnlyInSystemA + want.Counts.OnlyInSystemB
	lastA := base.lastAStep()
	if lastA >= steps {
		t.Fatal("System B has no customer after System A's last")
	}

	tests := []struct {
		name string
		max  int
		// check looks at the first checkpoint
		check func(t *testing.T, cp map[string]any)
	}{
		{"every customer", 1, nil},
		{"mid System B page", 45, func(t *testing.T, cp map[string]any) {
			pos := cp["systemB"].(map[string]any)["position"].(string)
			if strings.HasSuffix(pos, "/0") {
				t.Errorf("System B position %s is at a page's start; want the middle of a page", pos)
			}
		}},
		{"a page's worth", pageSize, nil},
		{"after the last System A record", lastA, func(t *testing.T, cp map[string]any) {
			if a := cp["systemA"].(map[string]any); a["ended"] != true {
				t.Errorf("System A %v, want ended at the first checkpoint", a)
			}
			if b := cp["systemB"].(map[string]any); b["ended"] == true {
				t.Errorf("System B %v ended, want a customer left", b)
			}
		}},
		{"one before the end", steps - 1, nil},
		{"about a third", steps/3 + 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStreams(t, n, pageSize)
			dir := t.TempDir()
			st := &report.FileStore{Dir: dir}
			r := newLooped(t, s, st)
			r.MaxPerInvocation = tc.max
			got, calls, cps := loop(t, r, st)
			wantCalls := (steps + tc.max - 1) / tc.max
			if calls != wantCalls || got.Invocations != wantCalls {
				t.Errorf("%d calls, %d invocations; want %d", calls, got.Invocations, wantCalls)
			}
			sameReport(t, got, want)
			if tc.check != nil && len(cps) > 0 {
				tc.check(t, cps[0])
			}
			// System B is listed again from each checkpoint's page, not from the start.
			if max := int64(len(s.b) + calls*pageSize); s.served.Load() > max {
				t.Errorf("System B served %d items over %d calls, want at most %d", s.served.Load(), calls, max)
			}
		})
	}
}

// TestContinueOnTheClock: the same with the deadline as the only stop, on
// an injectable clock: a 900 s invocation, 30 s reserve, System B at one
// item per 2 s of the fake clock (a page of 7 per 14 s).
func TestContinueOnTheClock(t *testing.T) {
	s := newStreams(t, 600, 7)
	dir := t.TempDir()
	st := &report.FileStore{Dir: dir}
	r := newLooped(t, s, st)
	clock := newClock(time.Now())
	r.Now, r.Reserve = clock.Now, 30*time.Second
	b := &tickingB{streams: s, tick: func() { clock.Advance(2 * time.Second) }}
	r.B = b
	var sum reconcile.Summary
	calls := 0
	for sum.Status == "" || sum.Status == reconcile.StatusContinued {
		calls++
		ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(900*time.Second))
		var err error
		sum, err = r.Run(ctx, event)
		cancel()
		if err != nil {
			t.Fatalf("call %d: %v", calls, err)
		}
	}
	// 870 s a call at 2 s an item: 435 items; about 1.4 of those per customer.
	items := len(s.b)
	if want := (items + 434) / 435; calls < want || calls > want+1 {
		t.Errorf("%d calls for %d System B items, want about %d", calls, items, want)
	}
	whole := t.TempDir()
	want, _, _ := loop(t, newLooped(t, newStreams(t, 600, 7), &report.FileStore{Dir: whole}), &report.FileStore{Dir: whole})
	sameReport(t, sum, want)
}

// tickingB is streams whose every System B item advances the clock.
type tickingB struct {
	*streams
	tick func()
}

func (b *tickingB) ListFrom(ctx context.Context, pos string) (iter.Seq2[*merge.Record, error], func() string) {
	seq, at := b.streams.ListFrom(ctx, pos)
	return func(yield func(*merge.Record, error) bool) {
		for r, err := range seq {
			b.tick()
			if !yield(r, err) {
				return
			}
		}
	}, at
}

// TestContinueSnapshotReplaced: when the snapshot a checkpoint was taken on
// is gone at the continuation (a new export replaced it), the continuation
// sets the checkpoint aside and runs the night from the start on the new
// snapshot, saying so in the summary: a report never mixes two snapshots.
func TestContinueSnapshotReplaced(t *testing.T) {
	s := newStreams(t, 300, 7)
	dir := t.TempDir()
	st := &report.FileStore{Dir: dir}
	r := newLooped(t, s, st)
	r.MaxPerInvocation = 100
	first, err := r.Run(context.Background(), event)
	if err != nil || first.Status != reconcile.StatusContinued {
		t.Fatalf("first call: %s, %v", first.Status, err)
	}
	s.version.Store("v2")
	r.MaxPerInvocation = 0
	sum, err := r.Run(context.Background(), event)
	if err != nil || !sum.Complete {
		t.Fatalf("the continuation: %s, %v", sum.Status, err)
	}
	if sum.Snapshot.VersionID != "v2" || sum.Invocations != 1 || !strings.Contains(sum.RestartedBecause, "snapshot changed") {
		t.Errorf("snapshot %s, invocations %d, restartedBecause %q; want v2, a fresh run, and why", sum.Snapshot.VersionID, sum.Invocations, sum.RestartedBecause)
	}
	whole := t.TempDir()
	want, _, _ := loop(t, newLooped(t, newStreams(t, 300, 7), &report.FileStore{Dir: whole}), &report.FileStore{Dir: whole})
	if sum.Counts != want.Counts {
		t.Errorf("counts %+v, want %+v", sum.Counts, want.Counts)
	}
}

// TestContinueCorruptCheckpoint: a checkpoint.json that cannot be trusted
// fails the delivery with ErrBadCheckpoint naming the object (and how to
// start over), writes no report and releases the lease.
func TestContinueCorruptCheckpoint(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(cp map[string]any) []byte
	}{
		{"not JSON", func(map[string]any) []byte { return []byte("{\"format\":1,") }},
		{"empty", func(map[string]any) []byte { return nil }},
		{"another format", func(cp map[string]any) []byte { cp["format"] = 2; return marshal(cp) }},
		{"another event", func(cp map[string]any) []byte { cp["eventId"] = "other"; return marshal(cp) }},
		{"an unknown field", func(cp map[string]any) []byte { cp["extra"] = true; return marshal(cp) }},
		{"counts that do not add up", func(cp map[string]any) []byte {
			cp["counts"].(map[string]any)["inSync"] = 1e6
			return marshal(cp)
		}},
		{"a negative count", func(cp map[string]any) []byte {
			cp["counts"].(map[string]any)["onlyInSystemB"] = -1
			return marshal(cp)
		}},
		{"a part of another event", func(cp map[string]any) []byte {
			cp["parts"] = []string{"2026-11-24/other/attempts/x/details-0001.jsonl.gz"}
			return marshal(cp)
		}},
		{"a position before the counts", func(cp map[string]any) []byte {
			cp["systemA"].(map[string]any)["skip"] = 0
			return marshal(cp)
		}},
		{"trailing data", func(cp map[string]any) []byte { return append(marshal(cp), []byte(" {}")...) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStreams(t, 300, 7)
			dir := t.TempDir()
			st := &report.FileStore{Dir: dir}
			r := newLooped(t, s, st)
			r.MaxPerInvocation = 100
			if sum, err := r.Run(context.Background(), event); err != nil || sum.Status != reconcile.StatusContinued {
				t.Fatalf("first call: %s, %v", sum.Status, err)
			}
			path := filepath.Join(dir, "2026-11-24", event.ID, "checkpoint.json")
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var cp map[string]any
			if err := json.Unmarshal(raw, &cp); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.mutate(cp), 0o644); err != nil {
				t.Fatal(err)
			}
			sum, err := r.Run(context.Background(), event)
			if !errors.Is(err, reconcile.ErrBadCheckpoint) || !strings.Contains(err.Error(), "checkpoint.json") || !strings.Contains(err.Error(), "delete it") {
				t.Fatalf("err %v, want ErrBadCheckpoint naming the object", err)
			}
			if sum.Complete {
				t.Error("complete with a corrupt checkpoint")
			}
			if _, err := os.Stat(filepath.Join(dir, "2026-11-24", event.ID, "summary.json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("summary.json written (%v)", err)
			}
			if c := readClaim(t, st); !c.Released {
				t.Errorf("claim %+v, want released", c)
			}
			// Deleting it, as the error says, runs the night from the start.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			r.MaxPerInvocation = 0
			if sum, err := r.Run(context.Background(), event); err != nil || !sum.Complete || sum.Invocations != 1 {
				t.Errorf("after deleting the checkpoint: %s invocations %d, %v", sum.Status, sum.Invocations, err)
			}
		})
	}
}

func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestContinueLease: a continuation takes the lease like any delivery.
// While one holds it, another delivery answers inProgress and leaves the
// checkpoint alone; a continuation killed mid-way leaves the checkpoint as
// it was, and the retry that takes its expired lease over carries on from
// there to the same report as an uninterrupted run.
func TestContinueLease(t *testing.T) {
	w := newWorld(t)
	s := newStreams(t, 300, 7)
	deliver := func(st report.Store, b reconcile.SystemB) *reconcile.Reconciler {
		r := w.delivery(st, nil)
		r.A, r.B, r.MaxPerInvocation = s, s, 100
		if b != nil {
			r.B = b
		}
		return r
	}
	first, err := deliver(w.store, nil).Run(context.Background(), event)
	if err != nil || first.Status != reconcile.StatusContinued {
		t.Fatalf("first call: %s, %v", first.Status, err)
	}
	cpKey := "2026-11-24/" + event.ID + "/checkpoint.json"
	cp1, _, err := w.store.Get(context.Background(), cpKey)
	if err != nil {
		t.Fatal(err)
	}

	// The second call holds in System B (the gate), with its lease live.
	dying := watch(w.store)
	gate := newGate(s, 150)
	done, cancel := start(deliver(dying, gate))
	t.Cleanup(cancel)
	recv(t, gate.reached, "the continuation to list System B")
	if err := recv(t, dying.writes, "the continuation's claim"); err != nil {
		t.Fatal(err)
	}
	if c := readClaim(t, w.store); c.Released || c.TookOverFrom != first.Attempt {
		t.Fatalf("claim %+v, want the continuation's, taken from the released %s", c, first.Attempt)
	}
	other, err := deliver(w.store, nil).Run(context.Background(), event)
	if err != nil || other.Status != reconcile.StatusInProgress {
		t.Fatalf("a delivery during the continuation: %s, %v; want inProgress", other.Status, err)
	}

	dying.kill()
	cancel()
	if r := recv(t, done, "the killed continuation to end"); r.err == nil {
		t.Fatalf("the killed continuation succeeded: %+v", r.sum)
	}
	if cp, _, err := w.store.Get(context.Background(), cpKey); err != nil || !bytes.Equal(cp, cp1) {
		t.Fatalf("the checkpoint changed under a killed continuation (%v)", err)
	}

	w.clock.Advance(60 * time.Second) // the retry finds the lease expired
	var sum reconcile.Summary
	calls := 0
	for sum.Status == "" || sum.Status == reconcile.StatusContinued {
		calls++
		if sum, err = deliver(w.store, nil).Run(context.Background(), event); err != nil {
			t.Fatalf("retry %d: %v", calls, err)
		}
	}
	whole := t.TempDir()
	want, _, _ := loop(t, newLooped(t, newStreams(t, 300, 7), &report.FileStore{Dir: whole}), &report.FileStore{Dir: whole})
	sameReport(t, sum, want)
	steps := want.Counts.InBoth + want.Counts.OnlyInSystemA + want.Counts.OnlyInSystemB
	if n := (steps + 99) / 100; sum.Invocations != n { // the killed call not counted
		t.Errorf("invocations %d, want %d", sum.Invocations, n)
	}
}
