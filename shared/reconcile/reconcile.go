// Package reconcile runs the nightly reconciliation: a streaming sort-merge
// join of System A's snapshot and System B's list, both in join order
// (merge.Key, byte-wise), with memory bounded by one System B page whatever
// the number of customers. It writes a write-once report (summary.json and
// details.jsonl.gz) keyed by the triggering event, so a second delivery of
// the same event neither recomputes nor overwrites.
package reconcile

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

// Snapshot is one pinned version of System A.
type Snapshot interface {
	All(ctx context.Context) iter.Seq2[*merge.Record, error]
	Version() SnapshotVersion
	Release()
}

// SnapshotVersion identifies the System A snapshot a run read.
type SnapshotVersion struct {
	URI        string    `json:"uri"`
	VersionID  string    `json:"versionId,omitempty"`
	ETag       string    `json:"etag,omitempty"`
	ExportedAt time.Time `json:"exportedAt"`
}

// SystemA hands out pinned snapshots.
type SystemA interface {
	Acquire(ctx context.Context) (Snapshot, error)
}

// SystemB lists every System B customer in join order.
type SystemB interface {
	List(ctx context.Context) iter.Seq2[*merge.Record, error]
}

// Metrics receives the run's metric samples.
type Metrics interface {
	Count(name string, n int64)
	Observe(name string, value float64, unit emf.Unit)
}

// Event identifies one scheduled run.
type Event struct {
	ID   string    // the EventBridge event id or the scheduler's execution id
	Time time.Time // the scheduled time
}

// Reconciler runs reconciliations.
type Reconciler struct {
	A       SystemA
	B       SystemB
	Reports report.Store
	Log     *slog.Logger
	Metrics Metrics
	Now     func() time.Time
	// TempDir holds the details file while it is written; os.TempDir() when empty.
	TempDir string
	// Reserve is how long before the context's deadline a run stops to write
	// its report; when zero, a tenth of the time left at start, within [1s, 30s].
	Reserve time.Duration
}

// Counts are the record-level tallies of a run.
type Counts struct {
	SystemA       int `json:"systemA"`
	SystemB       int `json:"systemB"`
	InBoth        int `json:"inBoth"`
	InSync        int `json:"inSync"`
	WithConflicts int `json:"withConflicts"`
	OnlyInSystemA int `json:"onlyInSystemA"`
	OnlyInSystemB int `json:"onlyInSystemB"`
}

// Summary is summary.json, and what the function returns.
type Summary struct {
	EventID          string               `json:"eventId"`
	ScheduledTime    time.Time            `json:"scheduledTime"`
	Status           Status               `json:"status"`
	Snapshot         SnapshotVersion      `json:"snapshot"`
	StartedAt        time.Time            `json:"startedAt"`
	FinishedAt       time.Time            `json:"finishedAt"`
	Complete         bool                 `json:"complete"`
	StoppedReason    string               `json:"stoppedReason,omitempty"`
	StoppedAfter     string               `json:"stoppedAfter,omitempty"` // last join key read before the stop
	Error            string               `json:"error,omitempty"`
	Counts           Counts               `json:"counts"`
	ConflictsByField map[string]int       `json:"conflictsByField"`
	NewerSource      map[merge.Source]int `json:"newerSource"`
	DuplicateKeys    map[merge.Source]int `json:"duplicateKeys,omitempty"`
	Details          string               `json:"details"`

	conflicts int // field-level conflicts, for the metric
}

// Status says what a call did.
type Status string

// The statuses.
const (
	StatusRan        Status = "ran"        // this call ran the reconciliation and wrote the report
	StatusDuplicate  Status = "duplicate"  // the event's report already existed; it is returned as stored
	StatusInProgress Status = "inProgress" // another delivery of the event is running it now
	// StatusAbandoned: the delivery that claimed the event died (its deadline
	// passed) without writing the report; Run returns ErrAbandoned with it.
	StatusAbandoned Status = "abandoned"
)

// Keys of a run's objects below the report prefix.
func keys(ev Event) (claim, summary, details string) {
	dir := ev.Time.UTC().Format("2006-01-02") + "/" + ev.ID + "/"
	return dir + "claim.json", dir + "summary.json", dir + "details.jsonl.gz"
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ErrAbandoned is returned (wrapped) for an event whose claim outlived its
// claimant's deadline without a report: that run died (killed, out of
// memory). The report can no longer be written under the event's keys, so
// the failure is returned for the event to be retried and then
// dead-lettered (the DLQ alarm), rather than answering inProgress forever.
var ErrAbandoned = errors.New("reconcile: an earlier delivery of this event died before writing its report")

// claimDoc is claim.json: who runs the event, and until when at the latest.
type claimDoc struct {
	EventID   string    `json:"eventId"`
	StartedAt time.Time `json:"startedAt"`
	Deadline  time.Time `json:"deadline,omitzero"` // the claimant's Lambda deadline
}

// abandoned reports whether the claim under key names a deadline that has
// passed, and returns it.
func (r *Reconciler) abandoned(ctx context.Context, key string) (time.Time, bool) {
	b, err := r.Reports.Get(ctx, key)
	if err != nil {
		return time.Time{}, false
	}
	var c claimDoc
	if json.Unmarshal(b, &c) != nil || c.Deadline.IsZero() {
		return time.Time{}, false
	}
	return c.Deadline, r.now().After(c.Deadline)
}

// ErrBadEvent is returned (wrapped) for an event that cannot key a report.
var ErrBadEvent = errors.New("reconcile: bad event")

// Run reconciles once for ev. A second delivery of ev returns the stored
// summary (or StatusInProgress, or ErrAbandoned once the claimant's
// deadline has passed without a report) without scanning. A run that reaches its
// deadline or loses a system mid-way still writes a report, with
// complete=false; the error is returned alongside the summary then.
func (r *Reconciler) Run(ctx context.Context, ev Event) (Summary, error) {
	if !validID.MatchString(ev.ID) || strings.Contains(ev.ID, "..") {
		return Summary{}, fmt.Errorf("%w: id must be 1-128 of [A-Za-z0-9._:-]", ErrBadEvent)
	}
	if ev.Time.IsZero() {
		return Summary{}, fmt.Errorf("%w: time is missing", ErrBadEvent)
	}
	claimKey, summaryKey, detailsKey := keys(ev)
	if s, ok, err := r.stored(ctx, ev, summaryKey); ok || err != nil {
		return s, err
	}

	snap, err := r.A.Acquire(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("reconcile: system A: %w", err)
	}
	defer snap.Release()

	started := r.now()
	c := claimDoc{EventID: ev.ID, StartedAt: started}
	if dl, ok := ctx.Deadline(); ok {
		c.Deadline = dl.UTC()
	}
	claim, _ := json.Marshal(c)
	if err := r.Reports.PutIfAbsent(ctx, claimKey, strings.NewReader(string(claim)), "application/json"); err != nil {
		if errors.Is(err, report.ErrExists) {
			if s, ok, err := r.stored(ctx, ev, summaryKey); ok || err != nil {
				return s, err
			}
			if dl, ok := r.abandoned(ctx, claimKey); ok {
				r.Log.ErrorContext(ctx, "an earlier delivery of this event stopped without writing its report; failing so that the event is retried and then dead-lettered",
					"eventId", ev.ID, "claimDeadline", dl)
				return Summary{EventID: ev.ID, ScheduledTime: ev.Time, Status: StatusAbandoned},
					fmt.Errorf("%w (its claim's deadline %s has passed)", ErrAbandoned, dl.Format(time.RFC3339))
			}
			return Summary{EventID: ev.ID, ScheduledTime: ev.Time, Status: StatusInProgress}, nil
		}
		return Summary{}, fmt.Errorf("reconcile: claim: %w", err)
	}

	sum := Summary{
		EventID: ev.ID, ScheduledTime: ev.Time, Status: StatusRan, Snapshot: snap.Version(),
		StartedAt: started, ConflictsByField: map[string]int{}, NewerSource: map[merge.Source]int{},
		Details: r.Reports.Location(detailsKey),
	}
	r.Metrics.Observe(emf.SyncLag, started.Sub(sum.Snapshot.ExportedAt).Seconds(), emf.Seconds)

	runCtx, cancel := r.workContext(ctx)
	defer cancel()
	tmp, err := os.CreateTemp(r.TempDir, "details-*.jsonl.gz")
	if err != nil {
		return Summary{}, fmt.Errorf("reconcile: details file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	joinErr := r.join(runCtx, snap, tmp, &sum)
	switch {
	case joinErr == nil:
		sum.Complete = true
	case ctx.Err() == nil && (runCtx.Err() != nil || cutByStop(runCtx, joinErr)):
		sum.StoppedReason = "stopped before the Lambda deadline; counts cover the customers read so far"
		joinErr = nil
	default:
		sum.StoppedReason = "a system failed during the run"
		sum.Error = joinErr.Error()
	}

	// The report is written with the caller's context: the reserve is for it.
	if _, err := tmp.Seek(0, 0); err != nil {
		return sum, fmt.Errorf("reconcile: details file: %w", err)
	}
	if err := r.Reports.PutIfAbsent(ctx, detailsKey, tmp, "application/gzip"); err != nil {
		return sum, fmt.Errorf("reconcile: write details: %w", err)
	}
	sum.FinishedAt = r.now()
	body, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return sum, fmt.Errorf("reconcile: encode summary: %w", err)
	}
	if err := r.Reports.PutIfAbsent(ctx, summaryKey, strings.NewReader(string(body)), "application/json"); err != nil {
		return sum, fmt.Errorf("reconcile: write summary: %w", err)
	}
	r.Metrics.Count(emf.SyncConflicts, int64(sum.conflicts))
	r.Metrics.Count(emf.ReconcileCustomers, int64(sum.Counts.InBoth+sum.Counts.OnlyInSystemA+sum.Counts.OnlyInSystemB))
	r.Metrics.Count(emf.ReconcileOutOfSync, int64(sum.Counts.WithConflicts+sum.Counts.OnlyInSystemA+sum.Counts.OnlyInSystemB))
	if !sum.Complete {
		r.Metrics.Count(emf.ReconcileIncomplete, 1)
	}
	r.Log.InfoContext(ctx, "reconciliation finished", "eventId", ev.ID, "complete", sum.Complete,
		"counts", sum.Counts, "seconds", sum.FinishedAt.Sub(sum.StartedAt).Seconds())
	if joinErr != nil {
		return sum, fmt.Errorf("reconcile: %w", joinErr)
	}
	return sum, nil
}

// stored returns the event's summary if it was already written.
func (r *Reconciler) stored(ctx context.Context, ev Event, key string) (Summary, bool, error) {
	b, err := r.Reports.Get(ctx, key)
	if errors.Is(err, report.ErrNotExist) {
		return Summary{}, false, nil
	}
	if err != nil {
		return Summary{}, false, fmt.Errorf("reconcile: read summary: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return Summary{}, false, fmt.Errorf("reconcile: stored summary is not valid JSON: %w", err)
	}
	s.Status = StatusDuplicate
	r.Log.InfoContext(ctx, "duplicate delivery; returning the stored report", "eventId", ev.ID)
	return s, true, nil
}

// workContext ends Reserve before ctx's deadline.
func (r *Reconciler) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := r.Reserve
	if reserve == 0 {
		reserve = min(max(time.Until(deadline)/10, time.Second), 30*time.Second)
	}
	return context.WithDeadline(ctx, deadline.Add(-reserve))
}

// StopSlack is how close to the run's stop time (the deadline minus
// Reserve) a timeout of System B counts as the stop rather than as a System
// B failure: System B's client cuts each call at its context's deadline
// minus its own reserve, so near the stop a page request times out a
// little before the run's context ends.
const StopSlack = time.Second

// cutByStop reports whether err is a timeout met within StopSlack of
// runCtx's deadline.
func cutByStop(runCtx context.Context, err error) bool {
	dl, ok := runCtx.Deadline()
	return ok && errors.Is(err, context.DeadlineExceeded) && time.Until(dl) < StopSlack
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// detail is one line of details.jsonl.gz.
type detail struct {
	Email     string             `json:"email"`
	Presence  merge.Presence     `json:"presence"`
	Conflicts []detailConflict   `json:"conflicts"`
	Updated   map[string]*string `json:"lastUpdated"`
}

type detailConflict struct {
	Field       string         `json:"field"`
	Kind        merge.DiffKind `json:"kind"`
	SystemA     any            `json:"systemA"`
	SystemB     any            `json:"systemB"`
	NewerSource merge.Source   `json:"newerSource"`
}

// join walks both streams in key order and tallies into sum, writing a
// details line for every customer not in sync.
func (r *Reconciler) join(ctx context.Context, snap Snapshot, out *os.File, sum *Summary) (err error) {
	zw := gzip.NewWriter(out)
	bw := bufio.NewWriterSize(zw, 64<<10)
	enc := json.NewEncoder(bw)
	var done string // the last join key fully processed
	defer func() {
		if err != nil {
			sum.StoppedAfter = done
		}
	}()
	defer func() { // the details object is always a whole gzip stream
		ferr := bw.Flush()
		if cerr := zw.Close(); ferr == nil {
			ferr = cerr
		}
		if err == nil && ferr != nil {
			err = fmt.Errorf("details: %w", ferr)
		}
	}()

	nextA, stopA := iter.Pull2(snap.All(ctx))
	defer stopA()
	nextB, stopB := iter.Pull2(r.B.List(ctx))
	defer stopB()
	a := &side{src: merge.SystemA, next: nextA, count: &sum.Counts.SystemA}
	b := &side{src: merge.SystemB, next: nextB, count: &sum.Counts.SystemB}
	if err := a.advance(sum); err != nil {
		return err
	}
	if err := b.advance(sum); err != nil {
		return err
	}
	var diffs []merge.Difference
	for n := 0; a.ok || b.ok; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return fmt.Errorf("stopped: %w", ctx.Err())
		}
		var x, y *merge.Record
		switch {
		case a.ok && (!b.ok || a.key < b.key):
			x, done = a.rec, a.key
		case b.ok && (!a.ok || b.key < a.key):
			y, done = b.rec, b.key
		default:
			x, y, done = a.rec, b.rec, a.key
		}
		diffs = merge.AppendDiff(diffs[:0], x, y)
		switch {
		case x != nil && y != nil:
			sum.Counts.InBoth++
			if len(diffs) == 0 {
				sum.Counts.InSync++
			} else {
				sum.Counts.WithConflicts++
				sum.NewerSource[merge.Newer(x.LastUpdated, y.LastUpdated)]++
				for _, d := range diffs {
					sum.ConflictsByField[merge.Fields[d.Field].Path]++
				}
				sum.conflicts += len(diffs)
			}
		case x != nil:
			sum.Counts.OnlyInSystemA++
		default:
			sum.Counts.OnlyInSystemB++
		}
		if x == nil || y == nil || len(diffs) > 0 {
			if err := enc.Encode(newDetail(x, y, diffs)); err != nil {
				return fmt.Errorf("details: %w", err)
			}
		}
		if x != nil {
			if err := a.advance(sum); err != nil {
				return err
			}
		}
		if y != nil {
			if err := b.advance(sum); err != nil {
				return err
			}
		}
	}
	return nil
}

// side is one system's stream in the join, one record ahead.
type side struct {
	src   merge.Source
	next  func() (*merge.Record, error, bool)
	count *int // the summary's count of this system's customers

	rec *merge.Record // the current record, while ok
	key string        // its join key; after the end, the last one
	ok  bool
}

// advance moves to the next customer, skipping records that repeat the
// current key (counted in sum.DuplicateKeys) and refusing a key that goes
// backwards: the join depends on both streams being in join order.
func (s *side) advance(sum *Summary) error {
	for {
		rec, err, ok := s.next()
		if err != nil {
			return fmt.Errorf("%s: %w", s.src, err)
		}
		if !ok {
			s.rec, s.ok = nil, false
			return nil
		}
		k := rec.Key()
		if s.ok && k == s.key {
			sum.DuplicateKeys = incr(sum.DuplicateKeys, s.src)
			continue
		}
		if s.key != "" && k < s.key {
			return fmt.Errorf("%s: records are not in join order", s.src)
		}
		s.rec, s.key, s.ok = rec, k, true
		(*s.count)++
		return nil
	}
}

func incr(m map[merge.Source]int, s merge.Source) map[merge.Source]int {
	if m == nil {
		m = map[merge.Source]int{}
	}
	m[s]++
	return m
}

func newDetail(a, b *merge.Record, diffs []merge.Difference) detail {
	d := detail{Presence: merge.PresenceOf(a, b), Conflicts: make([]detailConflict, 0, len(diffs)), Updated: map[string]*string{}}
	for _, s := range []struct {
		src merge.Source
		rec *merge.Record
	}{{merge.SystemA, a}, {merge.SystemB, b}} {
		if s.rec == nil {
			d.Updated[string(s.src)] = nil
			continue
		}
		if d.Email == "" {
			d.Email = strings.TrimSpace(s.rec.Email())
		}
		t := s.rec.LastUpdated.UTC().Format(time.RFC3339)
		d.Updated[string(s.src)] = &t
	}
	if a != nil && b != nil {
		for _, c := range diffs {
			d.Conflicts = append(d.Conflicts, detailConflict{
				Field: merge.Fields[c.Field].Path, Kind: c.Kind,
				SystemA: merge.JSONValue(c.Field, c.A), SystemB: merge.JSONValue(c.Field, c.B),
				NewerSource: c.NewerSource,
			})
		}
	}
	return d
}
