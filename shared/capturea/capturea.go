// Package capturea is the change capture of System A: when a new version of
// the snapshot object lands in S3, it diffs that version against the
// version it captured last, both pinned by S3 VersionId, and publishes one
// change event (shared/changes) per created, updated and deleted customer
// on customer.changes.system-a.
//
// The diff is a streaming sort-merge join of the two snapshots' All
// iterators (both yield in join order), so memory stays flat whatever the
// number of customers: one record of each side and one batch of events.
// What counts as a change:
//
//   - a key only in the new snapshot is a create, only in the old one a
//     delete;
//   - a key in both is an update when merge.Diff finds a field that differs
//     after the merge normalisers (a cosmetic-only change, such as a phone
//     reformatted or an email's case, is not one), or when its lastUpdated
//     moved: the default merge rule "newest" decides conflicts by
//     lastUpdated, so a consumer needs it even when no value changed.
//
// The last captured version is a small state object (State) in a
// report.Store, written conditionally (PutIfAbsent, then Replace on its
// tag), and only after the broker acknowledged every event of the capture.
// A capture that fails part-way leaves the state where it was, and its
// retry publishes the same events again with the same ids (the ids are
// deterministic: changes.ID), never fewer. The same version delivered again
// publishes nothing; a version exported before the captured one is refused
// and counted.
package capturea

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/deadline"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/systema"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

// DefaultStateKey is the state object's key in the state store (below
// REPORT_URI's prefix).
const DefaultStateKey = "capture/system-a/state.json"

// DefaultBatchSize is how many events one Publish call carries when
// Capturer.BatchSize is zero.
const DefaultBatchSize = 1000

// FirstRun says what a capture does when there is no state yet.
type FirstRun string

// The first-run modes CAPTURE_A_FIRST_RUN may name.
const (
	// FirstRunSnapshot publishes every customer of the first snapshot as a
	// create (Debezium's initial snapshot): a consumer reading the topic
	// from the start sees every customer. The default.
	FirstRunSnapshot FirstRun = "snapshot"
	// FirstRunBaseline records the first snapshot as the baseline and
	// publishes nothing: only later changes are published.
	FirstRunBaseline FirstRun = "baseline"
)

// ParseFirstRun parses a CAPTURE_A_FIRST_RUN value ("" is FirstRunSnapshot).
func ParseFirstRun(s string) (FirstRun, error) {
	switch m := FirstRun(strings.TrimSpace(s)); m {
	case "":
		return FirstRunSnapshot, nil
	case FirstRunSnapshot, FirstRunBaseline:
		return m, nil
	}
	return "", fmt.Errorf("want %s or %s", FirstRunSnapshot, FirstRunBaseline)
}

// Object is the snapshot object version a capture was triggered for (the
// S3 "Object Created" event's bucket, key, version-id, etag and size). An
// Object without a VersionID (a hand-written event: cmd/local invoke)
// names the object's current version, which the capture looks up.
type Object struct {
	Bucket    string
	Key       string
	VersionID string
	ETag      string
	Size      int64
}

// Source names the snapshot object's current version (Stat) and streams
// one pinned version into a file (Fetch); systema.S3Source is one.
type Source interface {
	Stat(ctx context.Context) (systema.Version, error)
	Fetch(ctx context.Context, v systema.Version, dst *os.File) error
}

// Metrics receives the capture's metric samples; *emf.Metrics is one.
type Metrics interface {
	Count(name string, n int64)
	Observe(name string, value float64, unit emf.Unit)
}

// State is the state object: the snapshot version captured last.
type State struct {
	URI        string    `json:"uri"`
	VersionID  string    `json:"versionId"`
	ETag       string    `json:"etag"`
	Size       int64     `json:"size"`
	ExportedAt time.Time `json:"exportedAt"`
	CapturedAt time.Time `json:"capturedAt"`
	// Published counts what the capture that wrote the state published.
	Published Counts `json:"published"`
}

// Counts are the tallies of one capture.
type Counts struct {
	Creates int `json:"creates"`
	Updates int `json:"updates"`
	Deletes int `json:"deletes"`
	// Unchanged counts customers in both snapshots with no change to
	// publish (cosmetic-only changes included).
	Unchanged int `json:"unchanged"`
	// BadRecords counts malformed rows skipped, in either snapshot.
	BadRecords int `json:"badRecords"`
	// DuplicateKeys counts rows skipped because they repeat the previous
	// row's join key (possible only with non-ASCII case variants).
	DuplicateKeys int `json:"duplicateKeys"`
	// Withheld counts deletes not published because the customer's row is
	// still in the new snapshot, malformed (counted in BadRecords).
	Withheld int `json:"withheld"`
}

// Published returns the number of events published.
func (c Counts) Published() int { return c.Creates + c.Updates + c.Deletes }

// Status says what a capture did.
type Status string

// The statuses.
const (
	StatusCaptured  Status = "captured"  // the changes were published and the state advanced
	StatusBaseline  Status = "baseline"  // first run in baseline mode: state recorded, nothing published
	StatusDuplicate Status = "duplicate" // the version is the one captured last: nothing published
	// StatusRefusedOlder: the version was exported before the captured one
	// (an old snapshot restored or delivered late); nothing was published
	// and the state stays.
	StatusRefusedOlder Status = "refusedOlder"
)

// Result is what a capture returns (and the function answers).
type Result struct {
	Status     Status    `json:"status"`
	Version    string    `json:"version"`            // the captured version (VersionId)
	Previous   string    `json:"previous,omitempty"` // the version it was diffed against
	ExportedAt time.Time `json:"exportedAt,omitzero"`
	Counts     Counts    `json:"counts"`
}

// Errors returned (wrapped) by Capture.
var (
	// ErrBadObject: the event does not name a usable version of the
	// configured snapshot object (another bucket or key, no version id).
	ErrBadObject = fmt.Errorf("capturea: bad object: %w", merge.ErrInvalid)
	// ErrStateChanged: another capture of another version wrote the state
	// meanwhile; this one's events were published (same ids as a
	// retry's), the retry decides against the new state. (Another
	// delivery of the same version is not an error: StatusDuplicate.)
	ErrStateChanged = fmt.Errorf("capturea: the state changed during the capture: %w", merge.ErrUnavailable)
)

// errUnversioned says why a version is needed.
var errUnversioned = errors.New("the snapshot bucket must have versioning enabled (the capture diffs against the previous version, fetched by its VersionId)")

// Capturer captures System A's changes. Snapshot, Source, State and
// Publisher are required.
type Capturer struct {
	// Snapshot is the snapshot object (SNAPSHOT_URI, s3://bucket/key).
	Snapshot  systema.URI
	Source    Source
	State     report.Store
	Publisher changes.Publisher
	Log       *slog.Logger     // nothing logged when nil
	Metrics   Metrics          // nothing counted when nil
	FirstRun  FirstRun         // FirstRunSnapshot when empty
	StateKey  string           // DefaultStateKey when empty
	BatchSize int              // DefaultBatchSize when zero
	TempDir   string           // os.TempDir() when empty
	Now       func() time.Time // time.Now when nil
	// Reserve is how long before the context's deadline the capture stops
	// and fails with its own error (a broker that does not answer), rather
	// than be killed at the deadline; when zero, a tenth of the time left
	// at start, within [1s, 30s].
	Reserve time.Duration
}

// Capture captures the changes of obj's version against the version
// captured last.
func (c *Capturer) Capture(ctx context.Context, obj Object) (res Result, err error) {
	start := c.now()
	defer func() {
		c.observe(emf.CaptureDuration, float64(c.now().Sub(start).Milliseconds()), emf.Milliseconds)
		if err != nil {
			c.count(emf.CaptureFailures, 1)
			if c.Log != nil {
				c.Log.ErrorContext(ctx, "capture: failed; the state stays at the version captured last, and a retry publishes again under the same ids",
					"version", obj.VersionID, "eventsBuilt", res.Counts.Published(), "err", err.Error())
			}
		}
	}()
	ctx, cancel := c.workContext(ctx)
	defer cancel()
	next, err := c.object(ctx, obj)
	if err != nil {
		return Result{}, err
	}
	res = Result{Version: next.VersionID}
	prev, tag, err := c.readState(ctx)
	if err != nil {
		return Result{}, err
	}
	if prev != nil && prev.URI != next.URI {
		return Result{}, fmt.Errorf("%w: the state (%s) is of %s, not %s: SNAPSHOT_URI changed; delete the state to start over", ErrBadObject, c.State.Location(c.stateKey()), prev.URI, next.URI)
	}
	if prev != nil && prev.VersionID == next.VersionID {
		res.Status, res.Previous, res.ExportedAt = StatusDuplicate, prev.VersionID, prev.ExportedAt
		c.logInfo(ctx, "capture: version already captured; nothing published", "version", next.VersionID)
		return res, nil
	}

	dir, err := os.MkdirTemp(c.TempDir, "capturea-")
	if err != nil {
		return Result{}, fmt.Errorf("capturea: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	var newSnap, oldSnap *systema.Snapshot
	defer func() {
		for _, s := range []*systema.Snapshot{newSnap, oldSnap} {
			if s != nil {
				s.Release()
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		newSnap, err = open(gctx, c.Source, next, dir+"/new.db")
		return err
	})
	if prev != nil {
		pv := systema.Version{URI: prev.URI, VersionID: prev.VersionID, ETag: prev.ETag, Size: prev.Size}
		g.Go(func() (err error) {
			oldSnap, err = open(gctx, c.Source, pv, dir+"/old.db")
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	res.ExportedAt = newSnap.ExportedAt()

	var old iter.Seq2[*merge.Record, error] = none
	if prev != nil {
		res.Previous = prev.VersionID
		if res.ExportedAt.Before(prev.ExportedAt) {
			c.count(emf.CaptureRejectedOlder, 1)
			c.logWarn(ctx, "capture: refused a snapshot exported before the one captured last; nothing published",
				"version", next.VersionID, "exportedAt", res.ExportedAt, "captured", prev.VersionID, "capturedExportedAt", prev.ExportedAt)
			res.Status = StatusRefusedOlder
			return res, nil
		}
		old = oldSnap.All(ctx)
	}
	publish := prev != nil || c.firstRun() == FirstRunSnapshot
	if publish {
		res.Status = StatusCaptured
		if err := c.diff(ctx, old, newSnap, next.VersionID, res.ExportedAt, &res.Counts); err != nil {
			return res, err
		}
	} else {
		res.Status = StatusBaseline
	}

	st := State{
		URI: next.URI, VersionID: next.VersionID, ETag: next.ETag, Size: next.Size,
		ExportedAt: res.ExportedAt, CapturedAt: c.now().UTC(), Published: res.Counts,
	}
	if err := c.writeState(ctx, st, tag); err != nil {
		if errors.Is(err, ErrStateChanged) {
			// Another delivery of the same version may have won the
			// race: its events have the same ids as this one's.
			if cur, _, rerr := c.readState(ctx); rerr == nil && cur != nil && cur.VersionID == next.VersionID {
				c.logInfo(ctx, "capture: another delivery captured this version meanwhile", "version", next.VersionID)
				res.Status = StatusDuplicate
				return res, nil
			}
		}
		return res, err
	}
	c.logInfo(ctx, "capture: done", "status", res.Status, "version", next.VersionID, "previous", res.Previous,
		"creates", res.Counts.Creates, "updates", res.Counts.Updates, "deletes", res.Counts.Deletes,
		"unchanged", res.Counts.Unchanged, "badRecords", res.Counts.BadRecords, "withheld", res.Counts.Withheld)
	return res, nil
}

// workContext ends Reserve before ctx's deadline.
func (c *Capturer) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Stop(dl, c.now(), c.Reserve))
}

// none is the empty stream: the "previous snapshot" of a first run.
func none(func(*merge.Record, error) bool) {}

// object checks obj against the configured snapshot and returns its
// version: the current one when obj names none.
func (c *Capturer) object(ctx context.Context, obj Object) (systema.Version, error) {
	if c.Snapshot.Scheme != "s3" {
		return systema.Version{}, fmt.Errorf("capturea: SNAPSHOT_URI %s: the capture reads S3 object versions, want s3://bucket/key", c.Snapshot)
	}
	key := obj.Key
	if key != c.Snapshot.Key {
		// S3 notifications URL-encode the key (spaces as '+').
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
	}
	switch {
	case obj.Bucket != c.Snapshot.Bucket || key != c.Snapshot.Key:
		return systema.Version{}, fmt.Errorf("%w: s3://%s/%s is not the snapshot %s", ErrBadObject, obj.Bucket, obj.Key, c.Snapshot)
	case obj.VersionID == "":
		v, err := c.Source.Stat(ctx)
		if err != nil {
			return systema.Version{}, fmt.Errorf("capturea: the current version: %w: %w", merge.ErrUnavailable, err)
		}
		if v.VersionID == "" {
			return systema.Version{}, fmt.Errorf("%w: %s has no version id: %w", ErrBadObject, c.Snapshot, errUnversioned)
		}
		return v, nil
	case obj.VersionID == "null":
		return systema.Version{}, fmt.Errorf("%w: version \"null\": %w", ErrBadObject, errUnversioned)
	}
	etag := obj.ETag
	if etag != "" && !strings.HasPrefix(etag, `"`) {
		etag = `"` + etag + `"` // the event carries it bare, GetObject quoted
	}
	return systema.Version{URI: c.Snapshot.String(), VersionID: obj.VersionID, ETag: etag, Size: obj.Size}, nil
}

// open fetches version v into path and opens it.
func open(ctx context.Context, src Source, v systema.Version, path string) (*systema.Snapshot, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("capturea: fetch %s: %w", v, err)
	}
	err = src.Fetch(ctx, v, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("capturea: fetch %s: %w", v, err)
	}
	s, err := systema.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("capturea: open %s: %w", v, err)
	}
	return s, nil
}

// readState returns the state and its tag; nil when there is none yet.
func (c *Capturer) readState(ctx context.Context) (*State, string, error) {
	b, tag, err := c.State.Get(ctx, c.stateKey())
	if errors.Is(err, report.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("capturea: read state: %w: %w", merge.ErrUnavailable, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil || st.VersionID == "" {
		return nil, "", fmt.Errorf("capturea: state %s is damaged (want a JSON object with versionId): %w", c.State.Location(c.stateKey()), merge.ErrBadData)
	}
	return &st, tag, nil
}

// writeState stores st: created when tag is "", else replacing tag.
func (c *Capturer) writeState(ctx context.Context, st State, tag string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("capturea: encode state: %w", err)
	}
	body := strings.NewReader(string(b))
	if tag == "" {
		_, err = c.State.PutIfAbsent(ctx, c.stateKey(), body, "application/json")
	} else {
		_, err = c.State.Replace(ctx, c.stateKey(), body, "application/json", tag)
	}
	switch {
	case errors.Is(err, report.ErrExists), errors.Is(err, report.ErrChanged):
		return fmt.Errorf("%w: %w", ErrStateChanged, err)
	case err != nil:
		return fmt.Errorf("capturea: write state: %w: %w", merge.ErrUnavailable, err)
	}
	return nil
}

// diff joins the old and the new snapshot and publishes their changes.
func (c *Capturer) diff(ctx context.Context, old iter.Seq2[*merge.Record, error], cur *systema.Snapshot, version string, exportedAt time.Time, n *Counts) error {
	nextOld, stopOld := iter.Pull2(old)
	defer stopOld()
	nextCur, stopCur := iter.Pull2(cur.All(ctx))
	defer stopCur()
	a := &side{name: "previous snapshot", next: nextOld, n: n}
	b := &side{name: "new snapshot", next: nextCur, n: n}
	if err := a.advance(); err != nil {
		return err
	}
	if err := b.advance(); err != nil {
		return err
	}
	p := &batcher{c: c, max: c.batchSize(), exportedAt: exportedAt}
	var diffs []merge.Difference
	for a.ok || b.ok {
		var before, after *merge.Record
		switch {
		case a.ok && (!b.ok || a.key < b.key):
			before = a.rec
		case b.ok && (!a.ok || b.key < a.key):
			after = b.rec
		default:
			before, after = a.rec, b.rec
		}
		var op changes.Op
		switch {
		case before == nil:
			op = changes.OpCreate
		case after == nil:
			op = changes.OpDelete
			malformed, err := malformedIn(ctx, cur, before)
			if err != nil {
				return err
			}
			if malformed {
				// The customer is still there, in a row the scan
				// skipped: not a delete. Counted (in BadRecords) when
				// the scan met the row.
				n.Withheld++
				op = ""
			}
		default:
			diffs = merge.AppendDiff(diffs[:0], before, after)
			if len(diffs) > 0 || !before.LastUpdated.Equal(after.LastUpdated) {
				op = changes.OpUpdate
			}
		}
		if op == "" {
			if after != nil {
				n.Unchanged++
			}
		} else if ev, err := changes.New(merge.SystemA, before, after, version, exportedAt, c.now()); err != nil {
			// The key is not a valid email: a bad record, skipped like
			// the rows the scan refuses.
			n.BadRecords++
			c.count(emf.CaptureBadRecordsSystemA, 1)
		} else {
			n.add(op)
			if err := p.add(ctx, ev); err != nil {
				return err
			}
		}
		if before != nil {
			if err := a.advance(); err != nil {
				return err
			}
		}
		if after != nil {
			if err := b.advance(); err != nil {
				return err
			}
		}
	}
	n.BadRecords += a.bad + b.bad
	c.count(emf.CaptureBadRecordsSystemA, int64(a.bad+b.bad))
	return p.flush(ctx)
}

// malformedIn reports whether the customer of rec, absent from snap's
// join, is in a row of snap the scan refused (a *merge.BadRecordError):
// the lookup by key finds it. Deletes are few, so one indexed lookup each
// costs little.
func malformedIn(ctx context.Context, snap *systema.Snapshot, rec *merge.Record) (bool, error) {
	found, err := snap.Lookup(ctx, rec.Email())
	var bad *merge.BadRecordError
	switch {
	case errors.As(err, &bad):
		return true, nil
	case errors.Is(err, systema.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("capturea: look a deleted customer up in the new snapshot: %w", err)
	}
	return found != nil, nil
}

// add counts one event of op.
func (c *Counts) add(op changes.Op) {
	switch op {
	case changes.OpCreate:
		c.Creates++
	case changes.OpUpdate:
		c.Updates++
	case changes.OpDelete:
		c.Deletes++
	}
}

// side is one snapshot's stream in the join, one record ahead.
type side struct {
	name string
	next func() (*merge.Record, error, bool)
	n    *Counts

	rec *merge.Record
	key string
	ok  bool
	bad int
}

// advance moves to the next customer, skipping malformed rows (counted),
// rows that repeat the current key (counted) and refusing a key that goes
// backwards.
func (s *side) advance() error {
	for {
		rec, err, ok := s.next()
		if err != nil {
			var bad *merge.BadRecordError
			if errors.As(err, &bad) {
				s.bad++
				continue
			}
			return fmt.Errorf("capturea: read the %s: %w", s.name, err)
		}
		if !ok {
			s.rec, s.ok = nil, false
			return nil
		}
		k := rec.Key()
		if s.ok && k == s.key {
			s.n.DuplicateKeys++
			continue
		}
		if s.key != "" && k < s.key {
			return fmt.Errorf("capturea: the %s is not in join order: %w", s.name, merge.ErrBadData)
		}
		s.rec, s.key, s.ok = rec, k, true
		return nil
	}
}

// batcher publishes events in batches of max.
type batcher struct {
	c          *Capturer
	max        int
	exportedAt time.Time
	buf        []changes.Event
}

func (p *batcher) add(ctx context.Context, ev changes.Event) error {
	p.buf = append(p.buf, ev)
	if len(p.buf) >= p.max {
		return p.flush(ctx)
	}
	return nil
}

// flush publishes the buffered events and counts them once acknowledged.
func (p *batcher) flush(ctx context.Context) error {
	if len(p.buf) == 0 {
		return nil
	}
	if err := p.c.Publisher.Publish(ctx, p.buf...); err != nil {
		return fmt.Errorf("capturea: publish: %w", err)
	}
	var byOp [3]int64
	for i := range p.buf {
		switch p.buf[i].Op {
		case changes.OpCreate:
			byOp[0]++
		case changes.OpUpdate:
			byOp[1]++
		case changes.OpDelete:
			byOp[2]++
		}
	}
	p.c.count(emf.CaptureAPublishedCreates, byOp[0])
	p.c.count(emf.CaptureAPublishedUpdates, byOp[1])
	p.c.count(emf.CaptureAPublishedDeletes, byOp[2])
	// The first half of the sync lag: the snapshot's export to the
	// acknowledgement of its changes.
	p.c.observe(emf.CaptureLag, p.c.now().Sub(p.exportedAt).Seconds(), emf.Seconds)
	clear(p.buf)
	p.buf = p.buf[:0]
	return nil
}

func (c *Capturer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Capturer) stateKey() string {
	if c.StateKey != "" {
		return c.StateKey
	}
	return DefaultStateKey
}

func (c *Capturer) batchSize() int {
	if c.BatchSize > 0 {
		return c.BatchSize
	}
	return DefaultBatchSize
}

func (c *Capturer) firstRun() FirstRun {
	if c.FirstRun == "" {
		return FirstRunSnapshot
	}
	return c.FirstRun
}

func (c *Capturer) count(name string, n int64) {
	if c.Metrics != nil {
		c.Metrics.Count(name, n)
	}
}

func (c *Capturer) observe(name string, v float64, u emf.Unit) {
	if c.Metrics != nil {
		c.Metrics.Observe(name, v, u)
	}
}

func (c *Capturer) logInfo(ctx context.Context, msg string, args ...any) {
	if c.Log != nil {
		c.Log.InfoContext(ctx, msg, args...)
	}
}

func (c *Capturer) logWarn(ctx context.Context, msg string, args ...any) {
	if c.Log != nil {
		c.Log.WarnContext(ctx, msg, args...)
	}
}
