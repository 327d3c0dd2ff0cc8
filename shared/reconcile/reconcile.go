// Package reconcile runs the nightly reconciliation: a streaming sort-merge
// join of System A's snapshot and System B's list, both in join order
// (merge.Key, byte-wise), with memory bounded by one System B page whatever
// the number of customers.
//
// Reports are keyed by the triggering event, below <date>/<event id>/:
//
//	claim.json                          the lease: which delivery runs the event, until when
//	checkpoint.json                     where a run continued by its next invocation stopped
//	attempts/<token>/details-NNNN.jsonl.gz  part NNNN of the details (one per invocation)
//	attempts/<token>/summary.json       an incomplete attempt's summary
//	summary.json                        the night's report: written once, by a complete run
//
// A delivery first takes a short lease on the event (claim.json, LeaseTTL)
// and renews it in the background while it runs; a delivery that finds a
// live lease answers inProgress, one that finds an expired lease and no
// summary.json takes the event over, so a Lambda retry after a killed run
// completes the night. summary.json is the write-once commit point: only a
// complete run writes it, and a later delivery returns it as it is. An
// incomplete run (a system failed, the deadline came) writes its partial
// report under its attempt, releases the lease and returns ErrIncomplete,
// so the event is retried and, failing that, dead-lettered.
//
// A night may take several invocations: one that nears its deadline
// stops between two customers, writes checkpoint.json and answers
// StatusContinued (not an error); the next delivery of the event continues
// from it, and the last writes the summary one uninterrupted run would
// (checkpoint.go).
//
// A malformed record in either stream (a *merge.BadRecordError) is counted,
// listed in the details and skipped; the run carries on.
package reconcile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme/unified-customer-service/shared/deadline"
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

// DefaultLeaseTTL is the lease of a run when Reconciler.LeaseTTL is zero.
// It is well under the minute Lambda waits before its first retry of a
// failed asynchronous invocation (then two more minutes before the
// second): a run killed outright leaves a lease that has expired by the
// time the retry arrives, and the retry takes the event over.
const DefaultLeaseTTL = 30 * time.Second

// Reconciler runs reconciliations.
type Reconciler struct {
	A       SystemA
	B       SystemB
	Reports report.Store
	Log     *slog.Logger
	Metrics Metrics
	// Now is the clock of the lease and the report's times; time.Now when nil.
	Now func() time.Time
	// Tick returns a channel that receives every d and a function that
	// stops it: the lease's heartbeat. A time.Ticker when nil; tests give a
	// fake clock's.
	Tick func(d time.Duration) (<-chan time.Time, func())
	// LeaseTTL is how long a claim holds without being renewed; the run
	// renews it every LeaseTTL/3. DefaultLeaseTTL when zero.
	LeaseTTL time.Duration
	// InvocationID returns the id of the invocation ctx belongs to (the
	// Lambda request id), which starts the attempt's token; optional.
	InvocationID func(ctx context.Context) string
	// TempDir holds the details file while it is written; os.TempDir() when empty.
	TempDir string
	// Reserve is how long before the context's deadline a run stops to write
	// its report or checkpoint; when zero, a tenth of the time left at
	// start, within [1s, 30s].
	Reserve time.Duration
	// MaxPerInvocation, when positive, is the number of customers one
	// invocation joins before it stops and checkpoints (as it does before
	// the deadline): a per-invocation budget independent of time.
	MaxPerInvocation int
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
	EventID       string          `json:"eventId"`
	ScheduledTime time.Time       `json:"scheduledTime"`
	Status        Status          `json:"status"`
	Attempt       string          `json:"attempt,omitempty"`      // the token of the delivery that ran it
	TookOverFrom  string          `json:"tookOverFrom,omitempty"` // the token of the expired claim it took over
	Snapshot      SnapshotVersion `json:"snapshot"`
	StartedAt     time.Time       `json:"startedAt"`
	FinishedAt    time.Time       `json:"finishedAt"`
	Complete      bool            `json:"complete"`
	StoppedReason string          `json:"stoppedReason,omitempty"`
	StoppedAfter  string          `json:"stoppedAfter,omitempty"` // last join key read before the stop
	Error         string          `json:"error,omitempty"`
	Counts        Counts          `json:"counts"`
	// BadRecords counts, per system, the malformed records skipped (each
	// one is a line of the details).
	BadRecords       map[merge.Source]int `json:"badRecords"`
	ConflictsByField map[string]int       `json:"conflictsByField"`
	NewerSource      map[merge.Source]int `json:"newerSource"`
	DuplicateKeys    map[merge.Source]int `json:"duplicateKeys,omitempty"`
	// Details is the URI of the first details part; DetailsParts lists
	// them all, in join order (one per invocation; gzip streams, so their
	// concatenation is the whole).
	Details      string   `json:"details"`
	DetailsParts []string `json:"detailsParts"`
	// Invocations is the number of invocations the run took (1 without a
	// checkpoint).
	Invocations int `json:"invocations"`
	// RestartedBecause says why a checkpoint was set aside and the night
	// run again from the start (its snapshot was replaced).
	RestartedBecause string `json:"restartedBecause,omitempty"`

	conflicts int // field-level conflicts, for the metric
}

// Status says what a call did.
type Status string

// The statuses.
const (
	StatusRan        Status = "ran"        // this call ran the reconciliation and wrote the report
	StatusDuplicate  Status = "duplicate"  // the event's report already existed; it is returned as stored
	StatusInProgress Status = "inProgress" // another delivery holds a live lease on the event and runs it now
	// StatusIncomplete: this call ran but did not finish (a system failed,
	// the deadline came); its partial report is under its attempt, and Run
	// returns ErrIncomplete with it.
	StatusIncomplete Status = "incomplete"
	// StatusContinued: this call ran until its stop time (or
	// MaxPerInvocation) and wrote a checkpoint; the event's next delivery
	// (the state machine's next iteration) continues from it. Not an
	// error: Run returns it with a nil error and complete=false.
	StatusContinued Status = "continued"
	// StatusLeaseLost: another delivery took the event over while this one
	// ran (this one could not renew its lease in time); this one stopped
	// without a report, and Run returns ErrLeaseLost with it.
	StatusLeaseLost Status = "leaseLost"
)

// runKeys are the keys of an event's objects below the report prefix.
type runKeys struct{ dir, claim, summary string }

func keysOf(ev Event) runKeys {
	dir := ev.Time.UTC().Format("2006-01-02") + "/" + ev.ID + "/"
	return runKeys{dir: dir, claim: dir + "claim.json", summary: dir + "summary.json"}
}

// attempt returns the keys of one attempt's summary and details.
func (k runKeys) attempt(token string) (summary, details string) {
	d := k.dir + "attempts/" + token + "/"
	return d + "summary.json", d + "details.jsonl.gz"
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// Errors returned (wrapped) by Run.
var (
	// ErrBadEvent: the event cannot key a report.
	ErrBadEvent = errors.New("reconcile: bad event")
	// ErrIncomplete: the run stopped before the end (a system failed, the
	// Lambda deadline came). Its partial report is under its attempt,
	// summary.json is not written and the lease is released, so the event's
	// next delivery (Lambda's retry, a redrive from the dead-letter queue, a
	// manual invoke) runs the night again.
	ErrIncomplete = errors.New("reconcile: the run did not complete")
	// ErrLeaseLost: the run could not keep its lease (another delivery took
	// the event over after the lease expired unrenewed, or renewals kept
	// failing until it would expire) and stopped without a report; the
	// delivery that holds the lease now, or the next one, writes it.
	ErrLeaseLost = errors.New("reconcile: lost the lease on the event")
)

// Run reconciles once for ev. A delivery that finds the event's report
// returns it (StatusDuplicate) and one that finds another delivery's live
// lease answers StatusInProgress, both without scanning. Otherwise Run
// takes the lease (taking over an expired one) and runs: a complete run
// writes summary.json and returns it; an incomplete one writes its partial
// report under its attempt and returns it with ErrIncomplete.
func (r *Reconciler) Run(ctx context.Context, ev Event) (Summary, error) {
	if !validID.MatchString(ev.ID) || strings.Contains(ev.ID, "..") {
		return Summary{}, fmt.Errorf("%w: id must be 1-128 of [A-Za-z0-9._:-]", ErrBadEvent)
	}
	if ev.Time.IsZero() {
		return Summary{}, fmt.Errorf("%w: time is missing", ErrBadEvent)
	}
	if r.LeaseTTL < 0 {
		return Summary{}, fmt.Errorf("reconcile: LeaseTTL %s is negative", r.LeaseTTL)
	}
	k := keysOf(ev)
	if s, ok, err := r.stored(ctx, ev, k.summary); ok || err != nil {
		return s, err
	}

	snap, err := r.A.Acquire(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("reconcile: system A: %w", err)
	}
	defer snap.Release()

	token := r.token(ctx)
	l, holder, err := r.acquire(ctx, k.claim, ev, token)
	if err != nil {
		return Summary{}, err
	}
	if l == nil {
		// The holder may have committed since the first look.
		if s, ok, err := r.stored(ctx, ev, k.summary); ok || err != nil {
			return s, err
		}
		r.Log.InfoContext(ctx, "another delivery holds a live lease on this event; answering inProgress",
			"eventId", ev.ID, "holder", holder.Token, "leaseExpiresAt", holder.ExpiresAt)
		return Summary{EventID: ev.ID, ScheduledTime: ev.Time, Status: StatusInProgress}, nil
	}
	if l.doc.TookOverFrom != "" && !l.fromReleased {
		r.Log.WarnContext(ctx, "took over an expired lease: the delivery that held it stopped without a report",
			"eventId", ev.ID, "attempt", token, "tookOverFrom", l.doc.TookOverFrom)
	}
	// A run that held the lease before it expired may have committed.
	if s, ok, err := r.stored(ctx, ev, k.summary); ok || err != nil {
		l.release(ctx)
		return s, err
	}
	return r.run(ctx, ev, k, snap, l)
}

// run is Run once this delivery holds the lease l.
func (r *Reconciler) run(ctx context.Context, ev Event, k runKeys, snap Snapshot, l *lease) (Summary, error) {
	attemptSummary, _ := k.attempt(l.doc.Token)
	started := r.now()
	sum := Summary{
		EventID: ev.ID, ScheduledTime: ev.Time, Status: StatusRan, Attempt: l.doc.Token, TookOverFrom: l.doc.TookOverFrom,
		Snapshot: snap.Version(), StartedAt: started, Invocations: 1,
		BadRecords:       map[merge.Source]int{merge.SystemA: 0, merge.SystemB: 0},
		ConflictsByField: map[string]int{}, NewerSource: map[merge.Source]int{},
	}
	r.Metrics.Observe(emf.SyncLag, started.Sub(sum.Snapshot.ExportedAt).Seconds(), emf.Seconds)

	cp, cpTag, err := r.loadCheckpoint(ctx, k, ev)
	if err != nil {
		l.release(ctx)
		r.Log.ErrorContext(ctx, "the event's checkpoint cannot be used; failing without a run", "eventId", ev.ID, "err", err.Error())
		return Summary{EventID: ev.ID, ScheduledTime: ev.Time, Status: StatusIncomplete, Attempt: l.doc.Token}, err
	}
	var from joinPos
	var parts []string // keys of the details parts, this invocation's last
	if cp != nil {
		if sameSnapshot(cp.Snapshot, sum.Snapshot) {
			cp.resume(&sum)
			from = joinPos{a: cp.SystemA, b: cp.SystemB, resumed: true}
			parts = cp.Parts
			r.Log.InfoContext(ctx, "continuing the night from its checkpoint", "eventId", ev.ID, "attempt", l.doc.Token,
				"invocation", sum.Invocations, "counts", sum.Counts)
		} else {
			sum.RestartedBecause = fmt.Sprintf("the snapshot changed after invocation %d (checkpoint on %s, now %s): the night was run again from the start on the new one",
				cp.Invocations, versionString(cp.Snapshot), versionString(sum.Snapshot))
			r.Log.WarnContext(ctx, "the snapshot the checkpoint was taken on is gone; running the night from the start", "eventId", ev.ID,
				"attempt", l.doc.Token, "reason", sum.RestartedBecause)
		}
	}
	parts = append(slices.Clip(parts), k.part(l.doc.Token, len(parts)+1))
	partKey := parts[len(parts)-1]
	for _, p := range parts {
		sum.DetailsParts = append(sum.DetailsParts, r.Reports.Location(p))
	}
	sum.Details = sum.DetailsParts[0]

	// leaseCtx ends when the lease is lost; the heartbeat renews it meanwhile.
	leaseCtx, lose := context.WithCancelCause(ctx)
	defer lose(nil)
	hb := l.keep(leaseCtx, lose)
	defer hb.stop()
	lost := func() (Summary, error) {
		hb.stop()
		cause := context.Cause(leaseCtx)
		r.Log.WarnContext(ctx, "stopped: lost the lease on this event (another delivery runs it, or may take it over); no report from this attempt",
			"eventId", ev.ID, "attempt", l.doc.Token, "err", cause.Error())
		return Summary{EventID: ev.ID, ScheduledTime: ev.Time, Status: StatusLeaseLost, Attempt: l.doc.Token},
			fmt.Errorf("reconcile: event %s: %w", ev.ID, cause)
	}
	// giveUp ends an attempt that failed before its report: the next
	// delivery may start at once.
	giveUp := func() {
		hb.stop()
		l.release(ctx)
	}

	stopAt := r.stopTime(leaseCtx)
	tmp, err := os.CreateTemp(r.TempDir, "details-*.jsonl.gz")
	if err != nil {
		giveUp()
		return Summary{}, fmt.Errorf("reconcile: details file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	// The streams run on the lease's context: the stop comes between two
	// customers (stopAt, MaxPerInvocation), never in the middle of one.
	at, joinErr := r.join(leaseCtx, stopAt, snap, tmp, &sum, from)
	if leaseLost(leaseCtx) {
		return lost()
	}
	switch {
	case joinErr == nil && at == nil:
		sum.Complete = true
	case joinErr == nil:
		sum.Status = StatusContinued
	case ctx.Err() == nil && r.cutByStop(stopAt, joinErr):
		sum.StoppedReason = "stopped before the Lambda deadline; counts cover the customers read so far"
		joinErr = nil
	default:
		sum.StoppedReason = "a system failed during the run"
		sum.Error = joinErr.Error()
	}
	if !sum.Complete && sum.Status != StatusContinued {
		sum.Status = StatusIncomplete
	}

	// The report is written with the lease's context: the reserve is for it.
	if _, err := tmp.Seek(0, 0); err != nil {
		giveUp()
		return sum, fmt.Errorf("reconcile: details file: %w", err)
	}
	if err := r.putOwn(leaseCtx, partKey, tmp, "application/gzip"); err != nil {
		if leaseLost(leaseCtx) {
			return lost()
		}
		giveUp()
		return sum, fmt.Errorf("reconcile: write details: %w", err)
	}
	hb.stop()
	if leaseLost(leaseCtx) {
		return lost()
	}
	sum.FinishedAt = r.now()

	if sum.Status == StatusContinued {
		if err := r.hold(ctx, l, lose); err != nil {
			return lost()
		}
		if err := r.saveCheckpoint(ctx, k, newCheckpoint(ev, &sum, parts, *at), cpTag); err != nil {
			l.release(ctx)
			sum.Status = StatusIncomplete
			return sum, err
		}
		l.release(ctx)
		r.Log.InfoContext(ctx, "reconciliation continues in the next invocation: checkpoint written", "eventId", ev.ID,
			"attempt", l.doc.Token, "invocation", sum.Invocations, "counts", at.counts,
			"checkpoint", r.Reports.Location(k.checkpoint()))
		// The answer goes into the state machine's history: no join key
		// (an email) in it; the checkpoint holds where the run stopped.
		sum.StoppedAfter = ""
		return sum, nil
	}

	body, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		l.release(ctx)
		return sum, fmt.Errorf("reconcile: encode summary: %w", err)
	}

	if !sum.Complete {
		werr := r.putOwn(ctx, attemptSummary, bytes.NewReader(body), "application/json")
		l.release(ctx)
		r.countRun(&sum)
		r.Metrics.Count(emf.ReconcileIncomplete, 1)
		r.Log.ErrorContext(ctx, "reconciliation incomplete: no report for the night yet; failing so that the event is delivered again",
			"eventId", ev.ID, "attempt", l.doc.Token, "stoppedReason", sum.StoppedReason,
			"counts", sum.Counts, "badRecords", sum.BadRecords, "partialReport", r.Reports.Location(attemptSummary))
		err := fmt.Errorf("%w: %s (partial report %s)", ErrIncomplete, sum.StoppedReason, r.Reports.Location(attemptSummary))
		if joinErr != nil {
			err = fmt.Errorf("%w: %w", err, joinErr)
		}
		if werr != nil {
			err = errors.Join(err, fmt.Errorf("reconcile: write partial summary: %w", werr))
		}
		return sum, err
	}

	// Commit only while holding the lease: renew it once more first.
	if err := r.hold(ctx, l, lose); err != nil {
		return lost()
	}
	if _, err := r.Reports.PutIfAbsent(ctx, k.summary, bytes.NewReader(body), "application/json"); err != nil {
		if !errors.Is(err, report.ErrExists) {
			l.release(ctx)
			return sum, fmt.Errorf("reconcile: write summary: %w", err)
		}
		// Another attempt committed first, or this one did: its PUT landed,
		// the answer was lost and the SDK's retry met this very write (412).
		s, ok, err := r.read(ctx, k.summary)
		if err == nil && !ok {
			err = fmt.Errorf("reconcile: %s exists but cannot be read", k.summary)
		}
		if err != nil {
			return Summary{}, err
		}
		if s.Attempt != sum.Attempt {
			s, _, err = r.stored(ctx, ev, k.summary)
			return s, err
		}
	}
	r.countRun(&sum)
	r.Log.InfoContext(ctx, "reconciliation finished", "eventId", ev.ID, "attempt", l.doc.Token, "complete", sum.Complete,
		"invocations", sum.Invocations, "counts", sum.Counts, "badRecords", sum.BadRecords,
		"seconds", sum.FinishedAt.Sub(sum.StartedAt).Seconds())
	return sum, nil
}

// hold renews l once more before a write that needs the lease (the
// commit, a checkpoint). When the lease is lost, or expired unrenewed, it
// records that with lose and returns the error.
func (r *Reconciler) hold(ctx context.Context, l *lease, lose context.CancelCauseFunc) error {
	err := l.renew(ctx, r.now(), false)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrLeaseLost):
	case !r.now().Before(l.doc.ExpiresAt):
		err = fmt.Errorf("%w: the lease expired unrenewed before the write: %w", ErrLeaseLost, err)
	default:
		return nil // the lease still holds; the renewal may fail, the write is conditional anyway
	}
	lose(err)
	return err
}

// versionString names a snapshot version for logs and summaries.
func versionString(v SnapshotVersion) string {
	return fmt.Sprintf("version %q etag %s exported %s", v.VersionID, v.ETag, v.ExportedAt.UTC().Format(time.RFC3339))
}

// countRun records a run's metrics.
func (r *Reconciler) countRun(sum *Summary) {
	r.Metrics.Count(emf.SyncConflicts, int64(sum.conflicts))
	r.Metrics.Count(emf.ReconcileCustomers, int64(sum.Counts.InBoth+sum.Counts.OnlyInSystemA+sum.Counts.OnlyInSystemB))
	r.Metrics.Count(emf.ReconcileOutOfSync, int64(sum.Counts.WithConflicts+sum.Counts.OnlyInSystemA+sum.Counts.OnlyInSystemB))
	r.Metrics.Count(emf.ReconcileBadRecordsSystemA, int64(sum.BadRecords[merge.SystemA]))
	r.Metrics.Count(emf.ReconcileBadRecordsSystemB, int64(sum.BadRecords[merge.SystemB]))
}

// stored returns the event's summary if it was already written, with
// StatusDuplicate. A summary.json that says "complete": false (written by
// a version of this function from before incomplete runs stopped writing
// it) is not a report of the night: it is returned with an error wrapping
// ErrIncomplete, so that the delivery fails and is dead-lettered instead
// of succeeding on it.
func (r *Reconciler) stored(ctx context.Context, ev Event, key string) (Summary, bool, error) {
	s, ok, err := r.read(ctx, key)
	if !ok || err != nil {
		return s, ok, err
	}
	s.Status = StatusDuplicate
	if !s.Complete {
		r.Log.ErrorContext(ctx, "the stored summary.json is incomplete; failing so that the event is dead-lettered",
			"eventId", ev.ID, "summary", r.Reports.Location(key))
		return s, true, fmt.Errorf("%w: %s says \"complete\": false; delete it and deliver the event again to run the night",
			ErrIncomplete, r.Reports.Location(key))
	}
	r.Log.InfoContext(ctx, "duplicate delivery; returning the stored report", "eventId", ev.ID)
	return s, true, nil
}

// read reads the summary under key; ok is false when there is none.
func (r *Reconciler) read(ctx context.Context, key string) (s Summary, ok bool, err error) {
	b, _, err := r.Reports.Get(ctx, key)
	if errors.Is(err, report.ErrNotExist) {
		return Summary{}, false, nil
	}
	if err != nil {
		return Summary{}, false, fmt.Errorf("reconcile: read summary: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Summary{}, false, fmt.Errorf("reconcile: stored summary is not valid JSON: %w", err)
	}
	return s, true, nil
}

// putOwn writes an object under a key of this attempt's own (below
// attempts/<token>/: no other attempt writes there). ErrExists can then
// only mean that this very write landed and the SDK retried it after a
// lost answer (412 against itself): it is success.
func (r *Reconciler) putOwn(ctx context.Context, key string, body io.ReadSeeker, contentType string) error {
	if _, err := r.Reports.PutIfAbsent(ctx, key, body, contentType); err != nil && !errors.Is(err, report.ErrExists) {
		return err
	}
	return nil
}

func (r *Reconciler) leaseTTL() time.Duration {
	if r.LeaseTTL > 0 {
		return r.LeaseTTL
	}
	return DefaultLeaseTTL
}

func (r *Reconciler) tick(d time.Duration) (<-chan time.Time, func()) {
	if r.Tick != nil {
		return r.Tick(d)
	}
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// token returns a new attempt token: the invocation id (a Lambda retry of
// an asynchronous invocation keeps its request id) and 8 random bytes, in
// characters safe in a key.
func (r *Reconciler) token(ctx context.Context) string {
	var rnd [8]byte
	rand.Read(rnd[:]) //nolint:errcheck // never fails
	id := ""
	if r.InvocationID != nil {
		id = strings.Map(func(c rune) rune {
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
				return c
			}
			return -1
		}, r.InvocationID(ctx))
		id = id[:min(len(id), 64)]
	}
	if id == "" {
		return hex.EncodeToString(rnd[:])
	}
	return id + "-" + hex.EncodeToString(rnd[:])
}

// claimDoc is claim.json: the lease on an event.
type claimDoc struct {
	EventID      string    `json:"eventId"`
	Token        string    `json:"token"`
	StartedAt    time.Time `json:"startedAt"`
	RenewedAt    time.Time `json:"renewedAt"`
	ExpiresAt    time.Time `json:"expiresAt"`
	Released     bool      `json:"released,omitempty"`     // the holder gave it up (an incomplete run)
	TookOverFrom string    `json:"tookOverFrom,omitempty"` // the token of the expired claim this one replaced
	// Deadline is a claim written before leases: its claimant's Lambda
	// deadline, which stands for ExpiresAt.
	Deadline time.Time `json:"deadline,omitzero"`
}

// expired reports whether the lease no longer holds at now.
func (c claimDoc) expired(now time.Time) bool {
	exp := c.ExpiresAt
	if exp.IsZero() {
		exp = c.Deadline
	}
	return c.Released || !now.Before(exp)
}

// lease is this delivery's hold on an event's claim.
type lease struct {
	r   *Reconciler
	key string
	doc claimDoc // as last written; owned by the heartbeat while it runs
	tag string   // its tag
	// fromReleased: the claim taken over had been released (an incomplete
	// or continued run), not left to expire.
	fromReleased bool
}

// acquire takes the claim under key for token. It returns the lease, or
// the live claim of another delivery.
func (r *Reconciler) acquire(ctx context.Context, key string, ev Event, token string) (*lease, *claimDoc, error) {
	for range 4 {
		body, tag, err := r.Reports.Get(ctx, key)
		if err != nil && !errors.Is(err, report.ErrNotExist) {
			return nil, nil, fmt.Errorf("reconcile: read claim: %w", err)
		}
		now := r.now()
		mine := claimDoc{EventID: ev.ID, Token: token, StartedAt: now, RenewedAt: now, ExpiresAt: now.Add(r.leaseTTL())}
		released := false
		if err == nil {
			var cur claimDoc
			if json.Unmarshal(body, &cur) == nil {
				if cur.Token == token { // our own write landed, and its answer was lost
					return &lease{r: r, key: key, doc: cur, tag: tag}, nil, nil
				}
				if !cur.expired(now) {
					return nil, &cur, nil
				}
				mine.TookOverFrom, released = cur.Token, cur.Released
			} // a claim that is not JSON holds nothing: take it over
			b, _ := json.Marshal(mine)
			newTag, err := r.Reports.Replace(ctx, key, bytes.NewReader(b), "application/json", tag)
			if err == nil {
				return &lease{r: r, key: key, doc: mine, tag: newTag, fromReleased: released}, nil, nil
			}
			if !errors.Is(err, report.ErrChanged) {
				return nil, nil, fmt.Errorf("reconcile: take over the claim: %w", err)
			}
			continue // changed: our landed write, or another delivery's; read again
		}
		b, _ := json.Marshal(mine)
		newTag, err := r.Reports.PutIfAbsent(ctx, key, bytes.NewReader(b), "application/json")
		if err == nil {
			return &lease{r: r, key: key, doc: mine, tag: newTag}, nil, nil
		}
		if !errors.Is(err, report.ErrExists) {
			return nil, nil, fmt.Errorf("reconcile: claim: %w", err)
		}
	}
	return nil, nil, fmt.Errorf("reconcile: claim %s kept changing under this delivery", key)
}

// renew rewrites the lease (released: given up) on the tag last written.
// It returns an error wrapping ErrLeaseLost when another delivery's claim
// is there now, and other errors for failures that a later renewal may
// overcome.
func (l *lease) renew(ctx context.Context, now time.Time, release bool) error {
	next := l.doc
	next.RenewedAt, next.ExpiresAt = now, now.Add(l.r.leaseTTL())
	if release {
		next.Released, next.ExpiresAt = true, now
	}
	b, _ := json.Marshal(next)
	tag, err := l.r.Reports.Replace(ctx, l.key, bytes.NewReader(b), "application/json", l.tag)
	if err == nil {
		l.doc, l.tag = next, tag
		return nil
	}
	if !errors.Is(err, report.ErrChanged) {
		return fmt.Errorf("reconcile: renew the lease: %w", err)
	}
	body, curTag, gerr := l.r.Reports.Get(ctx, l.key)
	if errors.Is(gerr, report.ErrNotExist) {
		return fmt.Errorf("%w: claim.json was deleted", ErrLeaseLost)
	}
	if gerr != nil {
		return fmt.Errorf("reconcile: renew the lease: read it back: %w", gerr)
	}
	var cur claimDoc
	if json.Unmarshal(body, &cur) != nil || cur.Token != l.doc.Token {
		return fmt.Errorf("%w (now held by %q)", ErrLeaseLost, cur.Token)
	}
	if bytes.Equal(body, b) { // our write landed; the SDK retried it after a lost answer
		l.doc, l.tag = next, curTag
		return nil
	}
	// Still ours, but not this write: a conflicting request (409); the next
	// renewal goes on the tag there now.
	l.doc, l.tag = cur, curTag
	return fmt.Errorf("reconcile: renew the lease: %w", err)
}

// release gives the lease up so that the next delivery can start at once.
// It tries twice (the first try may only learn the tag of a renewal whose
// answer was cut); a failure is only logged: the lease then expires after
// LeaseTTL.
func (l *lease) release(ctx context.Context) {
	var err error
	for range 2 {
		if err = l.renew(ctx, l.r.now(), true); err == nil || errors.Is(err, ErrLeaseLost) {
			break
		}
	}
	if err != nil {
		l.r.Log.WarnContext(ctx, "could not release the lease; it expires on its own", "eventId", l.doc.EventID, "err", err.Error())
	}
}

// heartbeat renews a lease in the background.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// keep renews l every LeaseTTL/3 until stop. When the lease is lost (or
// renewals keep failing until it would expire before the next try) it
// calls lose with an error wrapping ErrLeaseLost and returns.
func (l *lease) keep(ctx context.Context, lose context.CancelCauseFunc) *heartbeat {
	ctx, cancel := context.WithCancel(ctx)
	hb := &heartbeat{cancel: cancel, done: make(chan struct{})}
	interval := l.r.leaseTTL() / 3
	tick, stopTick := l.r.tick(interval)
	go func() {
		defer close(hb.done)
		defer stopTick()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
			err := l.renew(ctx, l.r.now(), false)
			// After the call: a renewal that failed slowly (the SDK's own
			// retries and backoff) has used up part of the lease.
			now := l.r.now()
			switch {
			case err == nil:
			case ctx.Err() != nil:
				return
			case errors.Is(err, ErrLeaseLost):
				lose(err)
				return
			case !now.Add(interval).Before(l.doc.ExpiresAt):
				lose(fmt.Errorf("%w: the lease would expire before the next renewal: %w", ErrLeaseLost, err))
				return
			default:
				l.r.Log.WarnContext(ctx, "lease renewal failed; trying again", "eventId", l.doc.EventID,
					"leaseExpiresAt", l.doc.ExpiresAt, "err", err.Error())
			}
		}
	}()
	return hb
}

// stop ends the heartbeat and waits for it; idempotent.
func (hb *heartbeat) stop() {
	hb.once.Do(func() {
		hb.cancel()
		<-hb.done
	})
}

// leaseLost reports whether the lease behind leaseCtx was lost.
func leaseLost(leaseCtx context.Context) bool {
	return errors.Is(context.Cause(leaseCtx), ErrLeaseLost)
}

// stopTime is Reserve before ctx's deadline, on the Now clock (zero
// without a deadline): when a run stops joining to checkpoint.
func (r *Reconciler) stopTime(ctx context.Context) time.Time {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Time{}
	}
	return deadline.Stop(dl, r.now(), r.Reserve)
}

// StopSlack is how close to the run's stop time (the deadline minus
// Reserve) a timeout of System B counts as the stop rather than as a System
// B failure: System B's client cuts each call at its context's deadline
// minus its own reserve, so near the stop a page request times out a
// little before the run's context ends.
const StopSlack = time.Second

// cutByStop reports whether err is a timeout met within StopSlack of
// the stop time (or after it).
func (r *Reconciler) cutByStop(stopAt time.Time, err error) bool {
	return !stopAt.IsZero() && errors.Is(err, context.DeadlineExceeded) && stopAt.Sub(r.now()) < StopSlack
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

// badDetail is the details line of a malformed record: where it is and
// what is wrong, never its values.
type badDetail struct {
	BadRecord badRecord `json:"badRecord"`
}

type badRecord struct {
	System   merge.Source `json:"system"`
	Position string       `json:"position"`
	Reason   string       `json:"reason"`
}

type detailConflict struct {
	Field       string         `json:"field"`
	Kind        merge.DiffKind `json:"kind"`
	SystemA     any            `json:"systemA"`
	SystemB     any            `json:"systemB"`
	NewerSource merge.Source   `json:"newerSource"`
}

// joinPos is where a join stopped for a continuation, or starts from one.
type joinPos struct {
	a, b    sidePos
	counts  Counts // sum.Counts without the records read ahead
	resumed bool   // a continuation: the streams start at a and b
}

// join walks both streams (on ctx) in key order from `from` and tallies
// into sum, writing a details line for every customer not in sync. It
// returns nil at the end of both streams, or, when the Now clock reaches
// stopAt (unless zero) or MaxPerInvocation customers were joined, the
// position to continue from.
// At least one customer is joined before a stop, so that every invocation
// makes progress.
func (r *Reconciler) join(ctx context.Context, stopAt time.Time, snap Snapshot, out *os.File, sum *Summary, from joinPos) (at *joinPos, err error) {
	zw := gzip.NewWriter(out)
	bw := bufio.NewWriterSize(zw, 64<<10)
	enc := json.NewEncoder(bw)
	done := sum.StoppedAfter // the last join key fully processed
	defer func() {
		sum.StoppedAfter = ""
		if err != nil || at != nil {
			sum.StoppedAfter = done
		}
	}()
	defer func() { // the details object is always a whole gzip stream
		ferr := bw.Flush()
		if cerr := zw.Close(); ferr == nil {
			ferr = cerr
		}
		if err == nil && ferr != nil {
			at, err = nil, fmt.Errorf("details: %w", ferr)
		}
	}()

	bad := func(src merge.Source, e *merge.BadRecordError) error {
		sum.BadRecords[src]++
		if err := enc.Encode(badDetail{BadRecord: badRecord{System: src, Position: e.Position, Reason: e.Reason}}); err != nil {
			return fmt.Errorf("details: %w", err)
		}
		return nil
	}
	a := &side{src: merge.SystemA, count: &sum.Counts.SystemA, bad: bad}
	b := &side{src: merge.SystemB, count: &sum.Counts.SystemB, bad: bad}
	var seqB iter.Seq2[*merge.Record, error]
	if rb, ok := r.B.(ResumableB); ok {
		pos := ""
		if from.resumed {
			pos = from.b.Position
		}
		seqB, b.pos = rb.ListFrom(ctx, pos)
		if pos != "" {
			b.pulled = from.b.Skip
		}
	} else {
		seqB = r.B.List(ctx)
	}
	for _, s := range []struct {
		s   *side
		seq iter.Seq2[*merge.Record, error]
		at  sidePos
	}{{a, snap.All(ctx), from.a}, {b, seqB, from.b}} {
		if from.resumed && s.at.Ended {
			s.s.key, s.s.ended, s.s.pulled = s.at.After, true, s.at.Skip
			continue
		}
		next, stopNext := iter.Pull2(s.seq)
		defer stopNext()
		s.s.next = next
		if from.resumed {
			if err := s.s.resume(s.at); err != nil {
				return nil, err
			}
		}
		if err := s.s.advance(sum); err != nil {
			return nil, err
		}
	}
	var diffs []merge.Difference
	for n := 0; a.ok || b.ok; n++ {
		if n > 0 && (r.MaxPerInvocation > 0 && n >= r.MaxPerInvocation || !stopAt.IsZero() && !r.now().Before(stopAt)) {
			p := joinPos{a: a.position(), b: b.position(), counts: sum.Counts}
			if a.ok {
				p.counts.SystemA--
			}
			if b.ok {
				p.counts.SystemB--
			}
			return &p, nil
		}
		if n&1023 == 0 && ctx.Err() != nil { // the lease lost, the Lambda deadline
			return nil, fmt.Errorf("stopped: %w", ctx.Err())
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
				return nil, fmt.Errorf("details: %w", err)
			}
		}
		if x != nil {
			if err := a.advance(sum); err != nil {
				return nil, err
			}
		}
		if y != nil {
			if err := b.advance(sum); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// side is one system's stream in the join, one record ahead.
type side struct {
	src   merge.Source
	next  func() (*merge.Record, error, bool)
	count *int                                            // the summary's count of this system's customers
	bad   func(merge.Source, *merge.BadRecordError) error // records a malformed record the stream skipped
	pos   func() string                                   // the stream's own position of the item last pulled (ResumableB)

	rec   *merge.Record // the current record, while ok
	key   string        // its join key; after the end, the last one
	ok    bool
	ended bool // the stream ended (or had ended at the checkpoint)

	pulled  int    // stream items pulled so far
	at      int    // the current record's index in the stream
	cursor  string // its position by pos
	prev    string // the join key before it
	resumed bool   // the next record taken must come after key (a continuation)
}

// resume passes over the stream items before the checkpoint's record (a
// stream with its own positions already starts there) and sets the key
// that record must come after.
func (s *side) resume(p sidePos) error {
	for ; s.pulled < p.Skip; s.pulled++ {
		_, err, ok := s.next()
		if !ok {
			return fmt.Errorf("%s: the stream ended before the checkpoint's position: it is not the one the checkpoint was taken on", s.src)
		}
		var bad *merge.BadRecordError
		if err != nil && !errors.As(err, &bad) {
			return fmt.Errorf("%s: %w", s.src, err)
		}
	}
	s.key, s.resumed = p.After, true
	return nil
}

// position is where to take the stream up again: at the current record.
func (s *side) position() sidePos {
	if !s.ok {
		return sidePos{Ended: true, Skip: s.pulled, After: s.key}
	}
	return sidePos{Skip: s.at, Position: s.cursor, After: s.prev}
}

// advance moves to the next customer, skipping malformed records (handed
// to s.bad: the stream carries on after one), skipping records that repeat
// the current key (counted in sum.DuplicateKeys) and refusing a key that
// goes backwards: the join depends on both streams being in join order.
func (s *side) advance(sum *Summary) error {
	if s.ended {
		s.rec, s.ok = nil, false
		return nil
	}
	for {
		rec, err, ok := s.next()
		if ok {
			s.pulled++
		}
		if err != nil {
			var bad *merge.BadRecordError
			if errors.As(err, &bad) {
				if err := s.bad(s.src, bad); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("%s: %w", s.src, err)
		}
		if !ok {
			s.rec, s.ok, s.ended = nil, false, true
			return nil
		}
		k := rec.Key()
		if s.ok && k == s.key {
			sum.DuplicateKeys = incr(sum.DuplicateKeys, s.src)
			continue
		}
		if s.key != "" && (k < s.key || s.resumed && k == s.key) {
			if s.resumed {
				return fmt.Errorf("%s: the stream does not go on where the checkpoint left it: it is not the one the checkpoint was taken on", s.src)
			}
			return fmt.Errorf("%s: records are not in join order", s.src)
		}
		s.prev, s.resumed = s.key, false
		s.rec, s.key, s.ok = rec, k, true
		s.at = s.pulled - 1
		if s.pos != nil {
			s.cursor = s.pos()
		}
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
