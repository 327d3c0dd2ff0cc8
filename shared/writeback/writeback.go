// Package writeback is the sync worker's opt-in write-back
// (WRITE_BACK=systemB): after a merge, the fields whose winning value came
// from System A are written to System B, and the fields whose winning value
// came from System B are published as corrections for System A.
//
// System B is written through API v1.1's PATCH /customers/{email} with
// optimistic concurrency: each write names, in If-Match, the ETag of a read
// made just before it, and what to write is decided on that read, never on
// the (older) read the merge was made from:
//
//   - a field System B already holds (equivalent after normalisation) is
//     not written, so applying the same decision twice makes no second
//     PATCH;
//   - a field whose rule is newest is not written when System B's record
//     is now newer than System A's (the merge decision no longer holds: the
//     change event of that newer write will bring a new decision);
//   - a 412 (System B changed between the read and the PATCH) is followed
//     by a new read and a new decision, up to Writer.MaxAttempts PATCHes;
//     then the Apply fails with ErrConflict (kind merge.ErrUnavailable), so
//     the event is retried later.
//
// A PATCH carries only the fields it writes, never lastUpdated: System B
// stamps its own, and the write is a System B change like any other, which
// the capture publishes and the worker merges again. That merge finds the
// written fields equal, so it writes nothing: write-back does not loop (see
// docs/contracts.md). Should System B store other values than written (not
// equivalent after normalisation), that would no longer hold, so the Apply
// fails with kind merge.ErrBadData instead of returning as done. A read
// without an ETag (a v1 System B) fails with merge.ErrInvalid: no write is
// ever unconditional. A customer gone from System B before the write is
// left alone.
//
// System A has no online write API: its corrections go to the topic
// customer.corrections.system-a (TopicCorrections), which System A's batch
// ingests; the record's id is derived from the source event's id, so a
// redelivered event republishes the same correction under the same id.
//
// Only customers held by both systems are written: creating a customer in
// either system is not the write-back's job.
package writeback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

// Mode is the WRITE_BACK setting.
type Mode string

// The modes WRITE_BACK may name.
const (
	ModeOff     Mode = "off"     // the default: the service writes to neither system
	ModeSystemB Mode = "systemB" // PATCH System B, publish corrections for System A
)

// ParseMode parses a WRITE_BACK value; empty is ModeOff.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.TrimSpace(s)); m {
	case "":
		return ModeOff, nil
	case ModeOff, ModeSystemB:
		return m, nil
	}
	return "", fmt.Errorf("want %s (the default: read-only) or %s, got %q", ModeOff, ModeSystemB, s)
}

// TopicCorrections is the topic of the corrections System A should take.
const TopicCorrections = "customer.corrections.system-a"

// The headers of a correction record (the same names as the change events').
const (
	HeaderEventID       = changes.HeaderEventID
	HeaderSchemaVersion = changes.HeaderSchemaVersion
	HeaderSourceEventID = "source-event-id"
)

// SchemaVersion is the version of the correction value this package writes.
const SchemaVersion = "1"

// Metric names (Count).
const (
	// MetricPatches counts PATCHes System B applied.
	MetricPatches = "sync.writeback.patches.total"
	// MetricConflicts412 counts PATCHes System B refused with 412 (the
	// customer changed since the read).
	MetricConflicts412 = "sync.writeback.conflicts_412.total"
	// MetricCorrections counts corrections the broker acknowledged on
	// TopicCorrections.
	MetricCorrections = "sync.corrections.published.total"
	// MetricFailures counts Apply calls that failed (System B or the broker
	// unavailable, the attempts spent on 412s, a System B without API
	// v1.1).
	MetricFailures = "sync.writeback.failures.total"
)

// DefaultMaxAttempts bounds the PATCHes of one Apply when
// Writer.MaxAttempts is zero.
const DefaultMaxAttempts = 3

// ErrConflict is wrapped by the error of an Apply whose every PATCH was
// refused with 412: System B kept changing. Its kind is
// merge.ErrUnavailable: the event is worth retrying later.
var ErrConflict = fmt.Errorf("writeback: System B kept changing under the write: %w", merge.ErrUnavailable)

// SystemB is what the write-back needs of System B (*systemb.Client).
type SystemB interface {
	GetWithETag(ctx context.Context, email string) (*merge.Record, string, error)
	Patch(ctx context.Context, email, etag string, values *merge.Record, set systemb.FieldSet) (*merge.Record, string, error)
}

// Publisher publishes the correction records (*kafka.Producer).
type Publisher interface {
	Send(ctx context.Context, msgs ...kafka.Message) error
}

// Writer applies merge decisions to the systems. Its fields are set once;
// it is safe for concurrent use when SystemB, Publisher and Metrics are.
type Writer struct {
	SystemB   SystemB
	Publisher Publisher // the corrections' producer; required when Mode is ModeSystemB
	Mode      Mode      // anything but ModeSystemB (ModeOff, empty): Apply does nothing
	Log       *slog.Logger
	Metrics   emf.Recorder
	Now       func() time.Time // the corrections' decidedAt; time.Now when nil
	// MaxAttempts bounds the PATCHes of one Apply (each after a new read);
	// DefaultMaxAttempts when zero.
	MaxAttempts int
}

// Plan is what a merge result asks of the systems.
type Plan struct {
	ToB     systemb.FieldSet // fields System A won and System B differs on
	ToA     systemb.FieldSet // fields System B won and System A differs on
	RuleFor [merge.NumFields]merge.Rule
}

// PlanOf returns what res asks of the systems: one entry per conflict, by
// the system its value was resolved from. A customer not held by both
// systems asks nothing.
func PlanOf(res *merge.Result) Plan {
	var p Plan
	if res.Presence != merge.InBoth {
		return p
	}
	for _, c := range res.Conflicts {
		if c.Field == merge.FieldEmail {
			continue // the join key: equal by construction
		}
		p.RuleFor[c.Field] = c.Rule
		switch c.ResolvedFrom {
		case merge.SystemA:
			p.ToB[c.Field] = true
		case merge.SystemB:
			p.ToA[c.Field] = true
		}
	}
	return p
}

// Apply carries out the decision res (the merge made for event ev of the
// customer with join key key): it publishes the corrections for System A
// and writes System A's winning values to System B (see the package
// comment). It does nothing when Mode is not ModeSystemB (or w is nil). It
// is idempotent.
// Errors carry the kinds of merge: ErrUnavailable (a system or the broker
// down, ErrConflict), ErrInvalid (a System B without API v1.1, no ETag, a
// Writer without its parts), ErrUnauthorized, ErrBadData.
func (w *Writer) Apply(ctx context.Context, key string, res merge.Result, ev changes.Event) error {
	if w == nil || w.Mode != ModeSystemB {
		return nil
	}
	if w.SystemB == nil || w.Publisher == nil {
		return fmt.Errorf("writeback: %w: WRITE_BACK=%s needs a System B client and a publisher", merge.ErrInvalid, w.Mode)
	}
	if key == "" || merge.Key(key) != key || (res.Customer.Email() != "" && res.Customer.Key() != key) {
		return fmt.Errorf("writeback: %w: the key is not the merged customer's join key", merge.ErrInvalid)
	}
	if ev.ID == "" {
		return fmt.Errorf("writeback: %w: the source event has no id", merge.ErrInvalid)
	}
	plan := PlanOf(&res)
	if err := w.correct(ctx, key, &res, &plan, ev); err != nil {
		w.count(MetricFailures, 1)
		return err
	}
	if err := w.writeB(ctx, key, &res, &plan, ev); err != nil {
		w.count(MetricFailures, 1)
		return err
	}
	return nil
}

// correct publishes the correction of the plan's ToA fields, if any.
func (w *Writer) correct(ctx context.Context, key string, res *merge.Result, plan *Plan, ev changes.Event) error {
	if plan.ToA.Empty() {
		return nil
	}
	msg, err := CorrectionMessage(key, res, plan, ev.ID, w.now())
	if err != nil {
		return err
	}
	if err := w.Publisher.Send(ctx, msg); err != nil {
		return fmt.Errorf("writeback: publish correction for System A: %w", err)
	}
	w.count(MetricCorrections, 1)
	return nil
}

// writeB writes the plan's ToB fields to System B: read, decide, PATCH
// with If-Match; on 412 again, up to MaxAttempts PATCHes.
func (w *Writer) writeB(ctx context.Context, key string, res *merge.Result, plan *Plan, ev changes.Event) error {
	if plan.ToB.Empty() {
		return nil
	}
	maxAttempts := w.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	for attempt := 1; ; attempt++ {
		cur, etag, err := w.SystemB.GetWithETag(ctx, key)
		if errors.Is(err, merge.ErrNotFound) {
			w.log(ctx, "write-back skipped: the customer left System B", ev, plan.ToB)
			return nil
		}
		if err != nil {
			return fmt.Errorf("writeback: read System B before writing: %w", err)
		}
		set := StillToWrite(res, plan, cur)
		if set.Empty() {
			return nil // System B holds the values, or moved past the decision
		}
		if etag == "" {
			return fmt.Errorf("writeback: %w: System B answered the read without an ETag; write-back needs API v1.1", merge.ErrInvalid)
		}
		stored, _, err := w.SystemB.Patch(ctx, key, etag, &res.Customer, set)
		switch {
		case err == nil:
			w.count(MetricPatches, 1)
			w.log(ctx, "wrote System A's values to System B", ev, set)
			return checkTaken(res, stored, set)
		case errors.Is(err, systemb.ErrPreconditionFailed):
			w.count(MetricConflicts412, 1)
			if attempt >= maxAttempts {
				return fmt.Errorf("%w: %d PATCHes refused with 412: %w", ErrConflict, attempt, err)
			}
		case errors.Is(err, merge.ErrNotFound):
			// Gone between the read and the PATCH, or a System B whose
			// PATCH route does not exist: the next read tells.
			if attempt >= maxAttempts {
				return fmt.Errorf("writeback: %w: System B answers 404 to PATCH for a customer it reads: %w", merge.ErrInvalid, err)
			}
		default:
			return fmt.Errorf("writeback: patch System B: %w", err)
		}
	}
}

// checkTaken fails when System B stored other values than written (not
// equivalent after normalisation): the change event of the write would
// merge into the same conflict and write again, without end. The error
// (kind merge.ErrBadData) stops that at this event.
func checkTaken(res *merge.Result, stored *merge.Record, set systemb.FieldSet) error {
	var paths []string
	for i, in := range set {
		if in && !merge.Equivalent(merge.FieldID(i), res.Customer.Values[i], stored.Values[i]) {
			paths = append(paths, merge.FieldID(i).Path())
		}
	}
	if paths != nil {
		return fmt.Errorf("writeback: %w: System B stored other values than written for %s; writing again would loop", merge.ErrBadData, strings.Join(paths, ", "))
	}
	return nil
}

// StillToWrite returns the fields of plan.ToB that should still be written
// to System B, whose current record is cur: those System B does not hold
// (equivalent after normalisation) and that System A still wins against
// cur: always under rule systemA; under newest only while cur is not newer
// than System A's record (res.A).
func StillToWrite(res *merge.Result, plan *Plan, cur *merge.Record) systemb.FieldSet {
	var set systemb.FieldSet
	for i, want := range plan.ToB {
		id := merge.FieldID(i)
		if !want || merge.Equivalent(id, res.Customer.Values[i], cur.Values[i]) {
			continue
		}
		switch plan.RuleFor[i] {
		case merge.RuleSystemA:
			set[i] = true
		case merge.RuleNewest:
			set[i] = !cur.LastUpdated.After(res.A)
		}
	}
	return set
}

// Correction is the value of a record of TopicCorrections (JSON; see
// docs/contracts.md).
type Correction struct {
	// Email is the customer's join key (merge.Key), also the record key.
	Email string `json:"email"`
	// Fields maps the path of every field System A should take to its
	// value, as the unified view renders it (merge.JSONValue: a trimmed
	// string, a boolean for marketingOptIn).
	Fields map[string]any `json:"fields"`
	// Rules maps the same paths to the rule that chose System B's value.
	Rules map[string]merge.Rule `json:"rules"`
	// SystemBLastUpdated is the lastUpdated of System B's record the
	// values come from: a batch that already holds newer data skips them.
	SystemBLastUpdated time.Time `json:"systemBLastUpdated"`
	// SourceEventID is the id of the change event whose merge decided it.
	SourceEventID string `json:"sourceEventId"`
	// DecidedAt is when the worker decided it.
	DecidedAt time.Time `json:"decidedAt"`
}

// CorrectionMessage builds the record of the correction of plan.ToA for
// the customer with join key key, decided at now for source event
// sourceID. Its id is CorrectionID(sourceID).
func CorrectionMessage(key string, res *merge.Result, plan *Plan, sourceID string, now time.Time) (kafka.Message, error) {
	c := Correction{
		Email:              key,
		Fields:             map[string]any{},
		Rules:              map[string]merge.Rule{},
		SystemBLastUpdated: res.B.UTC(),
		SourceEventID:      sourceID,
		DecidedAt:          now.UTC(),
	}
	for i, want := range plan.ToA {
		if !want {
			continue
		}
		id := merge.FieldID(i)
		c.Fields[id.Path()] = merge.JSONValue(id, res.Customer.Values[i])
		c.Rules[id.Path()] = plan.RuleFor[i]
	}
	value, err := json.Marshal(c)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("writeback: encode correction: %w", err)
	}
	return kafka.Message{
		Topic: TopicCorrections,
		Key:   []byte(key),
		Value: value,
		Headers: [][2]string{
			{HeaderEventID, CorrectionID(sourceID)},
			{HeaderSchemaVersion, SchemaVersion},
			{HeaderSourceEventID, sourceID},
		},
	}, nil
}

// CorrectionID is the event id of the correction decided for source event
// sourceID: 32 hex digits of SHA-256("ucs-sync-v1\x00" + sourceID +
// "\x00correction"), the derivation of the sync worker's other outputs.
func CorrectionID(sourceID string) string {
	h := sha256.Sum256([]byte("ucs-sync-v1\x00" + sourceID + "\x00correction"))
	return hex.EncodeToString(h[:16])
}

func (w *Writer) now() time.Time {
	if w.Now == nil {
		return time.Now()
	}
	return w.Now()
}

func (w *Writer) count(name string, n int64) {
	if w.Metrics != nil {
		w.Metrics.Count(name, n)
	}
}

// log logs at info the event id and the paths of set: never customer data.
func (w *Writer) log(ctx context.Context, msg string, ev changes.Event, set systemb.FieldSet) {
	if w.Log == nil {
		return
	}
	var paths []string
	for i, in := range set {
		if in {
			paths = append(paths, merge.FieldID(i).Path())
		}
	}
	w.Log.InfoContext(ctx, msg, slog.String("eventId", ev.ID), slog.Any("fields", paths))
}
