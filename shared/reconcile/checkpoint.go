package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/report"
)

// A run that nears its stop time (the Lambda deadline minus Reserve) or
// reaches MaxPerInvocation customers stops between two customers and
// writes a checkpoint: <date>/<id>/checkpoint.json. The next invocation
// for the same event (the state machine loops while the function answers
// StatusContinued) takes the lease like any delivery, reads the checkpoint
// and carries on from it; the last one writes summary.json with the counts
// of the whole night and the details of every invocation as numbered parts.

// checkpointFormat is the version of checkpoint.json this code writes and reads.
const checkpointFormat = 1

// ErrBadCheckpoint: the event's checkpoint.json cannot be used (not JSON,
// another format, counts that do not add up). The run refuses to guess:
// it fails, naming the object; deleting it makes the next delivery run the
// night from the start.
var ErrBadCheckpoint = errors.New("reconcile: the stored checkpoint is unusable")

// checkpoint is checkpoint.json: where a run stopped for a continuation,
// and what it had counted and written until then.
type checkpoint struct {
	Format   int             `json:"format"`
	EventID  string          `json:"eventId"`
	Snapshot SnapshotVersion `json:"snapshot"`
	// StartedAt is the first invocation's start.
	StartedAt time.Time `json:"startedAt"`
	// Invocations is the number of invocations that ran so far.
	Invocations int `json:"invocations"`
	// Parts are the keys of the details parts written so far, in order.
	Parts []string `json:"parts"`
	// StoppedAfter is the last join key fully processed.
	StoppedAfter string  `json:"stoppedAfter"`
	SystemA      sidePos `json:"systemA"`
	SystemB      sidePos `json:"systemB"`
	// The tallies of the customers processed so far (not counting the
	// records the streams had read ahead).
	Counts           Counts               `json:"counts"`
	BadRecords       map[merge.Source]int `json:"badRecords"`
	ConflictsByField map[string]int       `json:"conflictsByField"`
	NewerSource      map[merge.Source]int `json:"newerSource"`
	DuplicateKeys    map[merge.Source]int `json:"duplicateKeys,omitempty"`
	Conflicts        int                  `json:"conflicts"`
}

// sidePos is where one system's stream is to be taken up again: at the
// record it had read ahead, not yet processed.
type sidePos struct {
	// Ended: the stream had ended; nothing more to read.
	Ended bool `json:"ended,omitempty"`
	// Skip is the number of stream items (records, bad records and
	// repeated keys) before that record: a stream that cannot start at a
	// position is read again from the start and that many items passed over.
	Skip int `json:"skip"`
	// Position is the stream's own position of that record (ResumableB),
	// when it has one.
	Position string `json:"position,omitempty"`
	// After is the join key of the record before it; the record must come
	// after it, else the stream is not the one the checkpoint was taken on.
	After string `json:"after,omitempty"`
}

// ResumableB is a SystemB that can list again from a position it gave,
// so that a continuation does not read System B again from the start.
// ListFrom lists from pos ("" is the start); the function returned with
// the stream gives, after each item the stream yielded, the position of
// that item: a later ListFrom with it yields that item first.
type ResumableB interface {
	ListFrom(ctx context.Context, pos string) (iter.Seq2[*merge.Record, error], func() string)
}

// checkpointKey is the event's checkpoint object.
func (k runKeys) checkpoint() string { return k.dir + "checkpoint.json" }

// part is the key of details part n (from 1) written by the attempt token.
func (k runKeys) part(token string, n int) string {
	return fmt.Sprintf("%sattempts/%s/details-%04d.jsonl.gz", k.dir, token, n)
}

// loadCheckpoint returns the event's checkpoint and its tag, or nil and ""
// when there is none.
func (r *Reconciler) loadCheckpoint(ctx context.Context, k runKeys, ev Event) (*checkpoint, string, error) {
	key := k.checkpoint()
	body, tag, err := r.Reports.Get(ctx, key)
	if errors.Is(err, report.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reconcile: read the checkpoint: %w", err)
	}
	bad := func(why string, args ...any) error {
		return fmt.Errorf("%w: %s: %s; delete it to run the night from the start",
			ErrBadCheckpoint, r.Reports.Location(key), fmt.Sprintf(why, args...))
	}
	var cp checkpoint
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cp); err != nil {
		return nil, tag, bad("not a checkpoint: %v", err)
	}
	if dec.More() {
		return nil, tag, bad("data after the checkpoint")
	}
	if why := cp.check(k, ev); why != "" {
		return nil, tag, bad("%s", why)
	}
	return &cp, tag, nil
}

// check returns what is wrong with cp, or "".
func (cp *checkpoint) check(k runKeys, ev Event) string {
	c := cp.Counts
	switch {
	case cp.Format != checkpointFormat:
		return fmt.Sprintf("format %d, want %d", cp.Format, checkpointFormat)
	case cp.EventID != ev.ID:
		return "it belongs to another event"
	case cp.StartedAt.IsZero() || cp.Invocations < 1 || len(cp.Parts) != cp.Invocations:
		return "startedAt, invocations or parts missing"
	case min(c.SystemA, c.SystemB, c.InBoth, c.InSync, c.WithConflicts, c.OnlyInSystemA, c.OnlyInSystemB, cp.Conflicts) < 0:
		return "a negative count"
	case c.InBoth != c.InSync+c.WithConflicts || c.SystemA != c.InBoth+c.OnlyInSystemA || c.SystemB != c.InBoth+c.OnlyInSystemB:
		return "the counts do not add up"
	case cp.SystemA.Ended && cp.SystemB.Ended:
		return "both streams ended: nothing to continue"
	case cp.SystemA.Skip < c.SystemA || cp.SystemB.Skip < c.SystemB:
		return "a stream position before the records counted"
	case cp.BadRecords == nil || cp.ConflictsByField == nil || cp.NewerSource == nil:
		return "the tallies are missing"
	}
	for n, p := range cp.Parts {
		if !strings.HasPrefix(p, k.dir+"attempts/") || !strings.HasSuffix(p, fmt.Sprintf("/details-%04d.jsonl.gz", n+1)) {
			return fmt.Sprintf("part %d is not a details part of this event", n+1)
		}
	}
	return ""
}

// sameSnapshot reports whether a and b are one snapshot version.
func sameSnapshot(a, b SnapshotVersion) bool {
	return a.URI == b.URI && a.VersionID == b.VersionID && a.ETag == b.ETag && a.ExportedAt.Equal(b.ExportedAt)
}

// resume sets sum to cp's tallies.
func (cp *checkpoint) resume(sum *Summary) {
	sum.StartedAt, sum.Invocations = cp.StartedAt, cp.Invocations+1
	sum.Counts, sum.conflicts, sum.StoppedAfter = cp.Counts, cp.Conflicts, cp.StoppedAfter
	sum.BadRecords, sum.ConflictsByField, sum.NewerSource, sum.DuplicateKeys = cp.BadRecords, cp.ConflictsByField, cp.NewerSource, cp.DuplicateKeys
	for _, s := range []merge.Source{merge.SystemA, merge.SystemB} {
		sum.BadRecords[s] += 0 // both keys, as a fresh run has
	}
}

// newCheckpoint is the checkpoint of a run stopped at pos with sum's
// tallies, whose parts so far are parts.
func newCheckpoint(ev Event, sum *Summary, parts []string, pos joinPos) checkpoint {
	return checkpoint{
		Format: checkpointFormat, EventID: ev.ID, Snapshot: sum.Snapshot, StartedAt: sum.StartedAt,
		Invocations: sum.Invocations, Parts: parts, StoppedAfter: sum.StoppedAfter,
		SystemA: pos.a, SystemB: pos.b, Counts: pos.counts,
		BadRecords: sum.BadRecords, ConflictsByField: sum.ConflictsByField, NewerSource: sum.NewerSource,
		DuplicateKeys: sum.DuplicateKeys, Conflicts: sum.conflicts,
	}
}

// saveCheckpoint writes cp over the checkpoint read with tag ("" when there
// was none).
func (r *Reconciler) saveCheckpoint(ctx context.Context, k runKeys, cp checkpoint, tag string) error {
	body, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return fmt.Errorf("reconcile: encode the checkpoint: %w", err)
	}
	if tag == "" {
		_, err = r.Reports.PutIfAbsent(ctx, k.checkpoint(), bytes.NewReader(body), "application/json")
	} else {
		_, err = r.Reports.Replace(ctx, k.checkpoint(), bytes.NewReader(body), "application/json", tag)
	}
	if errors.Is(err, report.ErrExists) || errors.Is(err, report.ErrChanged) {
		// Our own write, retried by the SDK after a lost answer, or another's.
		if cur, _, gerr := r.Reports.Get(ctx, k.checkpoint()); gerr == nil && bytes.Equal(cur, body) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("reconcile: write the checkpoint: %w", err)
	}
	return nil
}
