package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// item is one element of a fake stream: a record or an error.
type item struct {
	rec *merge.Record
	err error
}

// stream yields items in order, as an adapter does: a *BadRecordError in
// place of a malformed record and then the next one; any other error ends
// it.
type stream []item

func (s stream) seq() iter.Seq2[*merge.Record, error] {
	return func(yield func(*merge.Record, error) bool) {
		for _, it := range s {
			if !yield(it.rec, it.err) || (it.err != nil && !errors.As(it.err, new(*merge.BadRecordError))) {
				return
			}
		}
	}
}

// fakeA is a System A whose snapshot yields a stream.
type fakeA stream

func (a fakeA) Acquire(context.Context) (reconcile.Snapshot, error) { return a, nil }
func (a fakeA) All(context.Context) iter.Seq2[*merge.Record, error] { return stream(a).seq() }
func (a fakeA) Version() reconcile.SnapshotVersion {
	return reconcile.SnapshotVersion{URI: "mem://a", ExportedAt: testkit.ExportedAt}
}
func (a fakeA) Release() {}

// fakeB is a System B whose list yields a stream.
type fakeB stream

func (b fakeB) List(context.Context) iter.Seq2[*merge.Record, error] { return stream(b).seq() }

func good(email string) item { return item{rec: customer(email)} }

func bad(src merge.Source, pos, reason string) item {
	return item{err: &merge.BadRecordError{Source: src, Position: pos, Reason: reason}}
}

// TestRunBadRecords: malformed records in either stream, between good ones
// (first, in the middle, last, several in a row, wrapped by the adapter),
// are counted per system, listed in the details with their position and
// reason, and skipped; the run completes.
func TestRunBadRecords(t *testing.T) {
	// An adapter may wrap the bad record with its context.
	wrapped := item{err: fmt.Errorf("systemb: list: %w", &merge.BadRecordError{Source: merge.SystemB, Position: "page 2 item 1", Reason: "lastUpdated: not RFC 3339"})}
	tests := []struct {
		name   string
		a, b   stream
		counts reconcile.Counts
		bad    map[merge.Source]int
	}{
		{
			name: "both systems",
			a: stream{bad(merge.SystemA, "rowid 1", "email: not a valid address"), good("a@example.com"),
				bad(merge.SystemA, "rowid 3", "loyalty_tier: unknown value"), bad(merge.SystemA, "rowid 4", "last_updated: not a time"),
				good("m@example.com"), bad(merge.SystemA, "rowid 6", "email: missing")},
			b:      stream{good("a@example.com"), bad(merge.SystemB, "page 1 item 2", "email: missing"), wrapped, good("z@example.com")},
			counts: reconcile.Counts{SystemA: 2, SystemB: 2, InBoth: 1, InSync: 1, OnlyInSystemA: 1, OnlyInSystemB: 1},
			bad:    map[merge.Source]int{merge.SystemA: 4, merge.SystemB: 2},
		},
		{
			name:   "only bad records in System B",
			a:      stream{good("a@example.com")},
			b:      stream{bad(merge.SystemB, "page 1 item 1", "email: missing"), bad(merge.SystemB, "page 1 item 2", "email: missing")},
			counts: reconcile.Counts{SystemA: 1, OnlyInSystemA: 1},
			bad:    map[merge.Source]int{merge.SystemA: 0, merge.SystemB: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _, _ := newReconciler(t, &testkit.Systems{})
			r.A, r.B = fakeA(tc.a), fakeB(tc.b)
			metrics := testkit.NewMetrics()
			r.Metrics = metrics
			sum, err := r.Run(context.Background(), event)
			if err != nil || !sum.Complete {
				t.Fatalf("Run: complete %v, %v; want a complete run", sum.Complete, err)
			}
			if sum.Counts != tc.counts {
				t.Errorf("counts %+v, want %+v", sum.Counts, tc.counts)
			}
			if sum.BadRecords[merge.SystemA] != tc.bad[merge.SystemA] || sum.BadRecords[merge.SystemB] != tc.bad[merge.SystemB] {
				t.Errorf("badRecords %v, want %v", sum.BadRecords, tc.bad)
			}
			if a, b := metrics.Counts[emf.ReconcileBadRecordsSystemA], metrics.Counts[emf.ReconcileBadRecordsSystemB]; a != int64(tc.bad[merge.SystemA]) || b != int64(tc.bad[merge.SystemB]) {
				t.Errorf("bad record metrics A=%d B=%d, want %v", a, b, tc.bad)
			}

			var want []map[string]any
			for src, s := range map[merge.Source]stream{merge.SystemA: tc.a, merge.SystemB: tc.b} {
				for _, it := range s {
					var e *merge.BadRecordError
					if errors.As(it.err, &e) {
						want = append(want, map[string]any{"system": string(src), "position": e.Position, "reason": e.Reason})
					}
				}
			}
			var got []map[string]any
			customers := 0
			for _, line := range readDetails(t, localPath(sum.Details)) {
				if br, ok := line["badRecord"].(map[string]any); ok {
					if len(line) != 1 || len(br) != 3 {
						t.Errorf("bad record line %v: want only system, position and reason", line)
					}
					got = append(got, br)
					continue
				}
				customers++
			}
			if len(got) != len(want) {
				t.Fatalf("details list %d bad records %v, want %d %v", len(got), got, len(want), want)
			}
			for _, w := range want {
				found := false
				for _, g := range got {
					found = found || (g["system"] == w["system"] && g["position"] == w["position"] && g["reason"] == w["reason"])
				}
				if !found {
					t.Errorf("details lack bad record %v", w)
				}
			}
			if wantCustomers := tc.counts.WithConflicts + tc.counts.OnlyInSystemA + tc.counts.OnlyInSystemB; customers != wantCustomers {
				t.Errorf("details list %d customers, want %d", customers, wantCustomers)
			}
		})
	}
}

// TestRunOtherStreamErrorsStillStop: an error that is not a bad record
// (System B unavailable) still ends the run as incomplete.
func TestRunOtherStreamErrorsStillStop(t *testing.T) {
	r, _, _ := newReconciler(t, &testkit.Systems{})
	down := errors.New("systemb: list: unavailable")
	r.A = fakeA{good("a@example.com"), good("b@example.com")}
	r.B = fakeB{bad(merge.SystemB, "page 1 item 1", "email: missing"), {err: down}, good("c@example.com")}
	sum, err := r.Run(context.Background(), event)
	if !errors.Is(err, reconcile.ErrIncomplete) || !errors.Is(err, down) || sum.Complete {
		t.Fatalf("Run: complete %v, %v; want ErrIncomplete wrapping System B's failure", sum.Complete, err)
	}
	if sum.BadRecords[merge.SystemB] != 1 || !strings.Contains(sum.Error, "unavailable") {
		t.Errorf("summary badRecords %v error %q", sum.BadRecords, sum.Error)
	}
}
