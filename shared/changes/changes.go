// Package changes is the change-event contract between the capture of both
// systems and the consumers of their changes (the sync worker): one event
// per created, updated or deleted customer, on one topic per system, keyed
// by the customer's join key so that every change of one customer lands in
// one partition, in order.
//
// The value is a Debezium-shaped JSON envelope:
//
//	{"before": {...}|null, "after": {...}|null, "op": "c"|"u"|"d", "ts_ms": 1700000000000,
//	 "source": {"system": "systemA", "version": "...", "lastUpdated": "...", "exportedAt": "..."|null}}
//
// where before and after are the unified customer (the paths of
// merge.Fields, plus lastUpdated). Every record carries two headers: the
// event id, a hash of the change itself (the same change captured twice,
// after a crash or by two capture paths, has the same id) and the schema
// version. docs/contracts.md is the reference; its tests hold the two
// together.
//
// The package does no I/O: the capture functions build Events, a Publisher
// (shared/kafka) writes them.
package changes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// The topics, one per system.
const (
	TopicSystemA = "customer.changes.system-a"
	TopicSystemB = "customer.changes.system-b"
)

// The record headers.
const (
	// HeaderEventID carries the event id (32 lower-case hex digits).
	HeaderEventID = "event-id"
	// HeaderSchemaVersion carries SchemaVersion.
	HeaderSchemaVersion = "schema-version"
)

// SchemaVersion is the version of the envelope this package writes and the
// only one it reads.
const SchemaVersion = "1"

// Op is what happened to the customer.
type Op string

// The operations, as Debezium names them.
const (
	OpCreate Op = "c" // the customer appeared: before is null
	// OpUpdate: a field or lastUpdated changed. Both are set, or before is
	// null when the capture cannot know it (an upsert: System B's poll and
	// webhook see only the record as it is now; see NewUpsert).
	OpUpdate Op = "u"
	OpDelete Op = "d" // the customer disappeared: after is null
)

// Topic returns the topic of src's changes.
func Topic(src merge.Source) (string, error) {
	switch src {
	case merge.SystemA:
		return TopicSystemA, nil
	case merge.SystemB:
		return TopicSystemB, nil
	}
	return "", fmt.Errorf("changes: %w: no topic for source %q", merge.ErrInvalid, src)
}

// SourceInfo is the envelope's source block: where the change was read.
type SourceInfo struct {
	System merge.Source `json:"system"`
	// Version identifies what the change was read from: System A's snapshot
	// version (S3 VersionId, else ETag); for System B the capture path and
	// its position ("poll:<watermark>", "webhook:<delivery id>").
	Version string `json:"version"`
	// LastUpdated is the changed record's lastUpdated: after's, or before's
	// for a delete. It orders a customer's changes within one system.
	LastUpdated time.Time `json:"lastUpdated"`
	// ExportedAt is the export time of System A's snapshot; nil for System B.
	ExportedAt *time.Time `json:"exportedAt"`
}

// Event is one change of one customer.
type Event struct {
	Key    string        // the join key (merge.Key): the record key
	ID     string        // the event id: see ID
	Before *merge.Record // nil for a create
	After  *merge.Record // nil for a delete
	Op     Op
	TS     time.Time // when the capture built the event (ts_ms)
	Source SourceInfo
}

// New builds the event for a change of one customer of src from before to
// after (nil when absent). version names what the change was read from;
// exportedAt is the snapshot's export time (zero for System B); now is the
// capture time. It returns an error of kind merge.ErrInvalid when both
// records are nil, their keys differ, or the key is not a valid email.
func New(src merge.Source, before, after *merge.Record, version string, exportedAt, now time.Time) (Event, error) {
	if _, err := Topic(src); err != nil {
		return Event{}, err
	}
	var op Op
	var changed *merge.Record
	switch {
	case before == nil && after == nil:
		return Event{}, fmt.Errorf("changes: new event: %w: neither before nor after", merge.ErrInvalid)
	case before == nil:
		op, changed = OpCreate, after
	case after == nil:
		op, changed = OpDelete, before
	default:
		op, changed = OpUpdate, after
		if before.Key() != after.Key() {
			return Event{}, fmt.Errorf("changes: new event: %w: before and after are different customers", merge.ErrInvalid)
		}
	}
	key, err := merge.ParseEmail(changed.Email())
	if err != nil {
		return Event{}, fmt.Errorf("changes: new event: %w: %w", merge.ErrInvalid, err)
	}
	ev := Event{
		Key: key, Before: before, After: after, Op: op, TS: now.UTC(),
		Source: SourceInfo{System: src, Version: version, LastUpdated: changed.LastUpdated.UTC()},
	}
	if !exportedAt.IsZero() {
		t := exportedAt.UTC()
		ev.Source.ExportedAt = &t
	}
	ev.ID = ID(src, key, op, ev.Source.LastUpdated, after)
	return ev, nil
}

// NewUpsert builds the event of a customer of src that now is after, when
// the capture cannot know what it was before, nor whether it is new: op
// "u" with before null. System B's capture publishes every create and
// update so, from its poll and its webhook alike, so that one change seen
// by both has one id (the id includes the op). Its errors are New's.
func NewUpsert(src merge.Source, after *merge.Record, version string, exportedAt, now time.Time) (Event, error) {
	if after == nil {
		return Event{}, fmt.Errorf("changes: new upsert: %w: no record", merge.ErrInvalid)
	}
	ev, err := New(src, nil, after, version, exportedAt, now)
	if err != nil {
		return Event{}, err
	}
	ev.Op = OpUpdate
	ev.ID = ID(src, ev.Key, ev.Op, ev.Source.LastUpdated, after)
	return ev, nil
}

// ID is the event id of a change: the first 128 bits, in hex, of a SHA-256
// over the system, the join key, the operation, the changed record's
// lastUpdated and after's values (nothing for a delete). It leaves out how
// and when the change was captured (version, ts_ms), so the same change has
// the same id whichever capture path saw it and however often.
func ID(src merge.Source, key string, op Op, lastUpdated time.Time, after *merge.Record) string {
	h := sha256.New()
	var b []byte
	b = append(b, "ucs-change-v1\x00"...)
	b = append(b, src...)
	b = append(b, 0)
	b = append(b, key...)
	b = append(b, 0)
	b = append(b, op...)
	b = append(b, 0)
	b = lastUpdated.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, 0)
	if after != nil {
		b = after.AppendJSON(b)
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Marshal returns the envelope JSON: the record value.
func (e *Event) Marshal() []byte {
	b := make([]byte, 0, 768)
	b = append(b, `{"before":`...)
	b = appendRecord(b, e.Before)
	b = append(b, `,"after":`...)
	b = appendRecord(b, e.After)
	b = append(b, `,"op":`...)
	b = merge.AppendJSONString(b, string(e.Op))
	b = append(b, `,"ts_ms":`...)
	b = fmt.Appendf(b, "%d", e.TS.UnixMilli())
	b = append(b, `,"source":{"system":`...)
	b = merge.AppendJSONString(b, string(e.Source.System))
	b = append(b, `,"version":`...)
	b = merge.AppendJSONString(b, e.Source.Version)
	b = append(b, `,"lastUpdated":`...)
	b = appendTime(b, e.Source.LastUpdated)
	b = append(b, `,"exportedAt":`...)
	if e.Source.ExportedAt == nil {
		b = append(b, "null"...)
	} else {
		b = appendTime(b, *e.Source.ExportedAt)
	}
	return append(b, "}}"...)
}

// Headers returns the record headers as key/value pairs, in order.
func (e *Event) Headers() [][2]string {
	return [][2]string{{HeaderEventID, e.ID}, {HeaderSchemaVersion, SchemaVersion}}
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendRecord appends r as the unified customer with its lastUpdated, or null.
func appendRecord(b []byte, r *merge.Record) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = r.AppendJSON(b)
	b = b[:len(b)-1] // reopen the object for lastUpdated
	b = append(b, `,"lastUpdated":`...)
	b = appendTime(b, r.LastUpdated)
	return append(b, '}')
}

// ErrSchema is returned (wrapped) by Decode for a record of a schema version
// this package does not read. It is of kind merge.ErrBadData.
var ErrSchema = fmt.Errorf("changes: unknown schema version: %w", merge.ErrBadData)

// Header is one record header, as a Kafka client hands it over.
type Header struct {
	Key   string
	Value []byte
}

// Decode reads one record of a change topic back into an Event, checking
// what the contract promises: the schema version header, the event id
// header, a known op with the matching before/after, the key equal to the
// changed customer's join key, and the id equal to the change's. Its errors
// are of kind merge.ErrBadData (a poison record) and never quote values.
func Decode(key, value []byte, headers []Header) (Event, error) {
	var id, schema string
	for _, h := range headers {
		switch h.Key {
		case HeaderEventID:
			id = string(h.Value)
		case HeaderSchemaVersion:
			schema = string(h.Value)
		}
	}
	if schema != SchemaVersion {
		return Event{}, fmt.Errorf("%w: header %s is %q, want %q", ErrSchema, HeaderSchemaVersion, clip(schema), SchemaVersion)
	}
	var env struct {
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
		Op     Op              `json:"op"`
		TSMs   *int64          `json:"ts_ms"`
		Source *struct {
			System      merge.Source `json:"system"`
			Version     string       `json:"version"`
			LastUpdated time.Time    `json:"lastUpdated"`
			ExportedAt  *time.Time   `json:"exportedAt"`
		} `json:"source"`
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	if err := dec.Decode(&env); err != nil {
		return Event{}, badData("the value is not an envelope: " + jsonReason(err))
	}
	if dec.More() {
		return Event{}, badData("the value has data after the envelope")
	}
	if env.Source == nil || env.TSMs == nil {
		return Event{}, badData(`"source" or "ts_ms" is missing`)
	}
	before, err := decodeRecord(env.Before)
	if err != nil {
		return Event{}, badData(`"before": ` + err.Error())
	}
	after, err := decodeRecord(env.After)
	if err != nil {
		return Event{}, badData(`"after": ` + err.Error())
	}
	var exportedAt time.Time
	if env.Source.ExportedAt != nil {
		exportedAt = *env.Source.ExportedAt
	}
	var ev Event
	if env.Op == OpUpdate && before == nil && after != nil {
		ev, err = NewUpsert(env.Source.System, after, env.Source.Version, exportedAt, time.UnixMilli(*env.TSMs))
	} else {
		ev, err = New(env.Source.System, before, after, env.Source.Version, exportedAt, time.UnixMilli(*env.TSMs))
	}
	if err != nil {
		return Event{}, badData(strings.TrimPrefix(err.Error(), "changes: new event: "))
	}
	switch {
	case ev.Op != env.Op:
		return Event{}, badData(fmt.Sprintf(`"op" is %q but before/after make it %q`, clip(string(env.Op)), ev.Op))
	case !ev.Source.LastUpdated.Equal(env.Source.LastUpdated):
		return Event{}, badData(`"source.lastUpdated" is not the changed record's lastUpdated`)
	case string(key) != ev.Key:
		return Event{}, badData("the record key is not the customer's join key")
	case id != ev.ID:
		return Event{}, badData("header " + HeaderEventID + " is not the id of this change")
	}
	return ev, nil
}

func badData(reason string) error {
	return fmt.Errorf("changes: decode: %w: %s", merge.ErrBadData, reason)
}

// clip shortens a header or token quoted in an error.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// jsonReason names what encoding/json refused without quoting the input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%q has the wrong type", te.Field)
	}
	return "invalid JSON"
}

// decodeRecord reads a unified customer with its lastUpdated; nil for null.
func decodeRecord(raw json.RawMessage) (*merge.Record, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, errors.New(jsonReason(err))
	}
	rec := &merge.Record{}
	lu, ok := obj["lastUpdated"].(string)
	if !ok {
		return nil, errors.New(`"lastUpdated" is missing or not a string`)
	}
	t, err := time.Parse(time.RFC3339Nano, lu)
	if err != nil {
		return nil, errors.New(`"lastUpdated" is not RFC 3339`)
	}
	rec.LastUpdated = t
	for i, f := range merge.Fields {
		v, err := lookupPath(obj, f.Path)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f.Path, err)
		}
		rec.Values[i] = v
	}
	return rec, nil
}

// lookupPath returns the text of the value at a dotted path ("" when absent
// or null); booleans become "true"/"false".
func lookupPath(obj map[string]any, path string) (string, error) {
	var cur any = obj
	for seg := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			if cur == nil {
				return "", nil
			}
			return "", errors.New("a parent is not an object")
		}
		cur = m[seg]
	}
	switch v := cur.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		if v {
			return "true", nil
		}
		return "false", nil
	}
	return "", errors.New("not a string, boolean or null")
}

// Publisher writes events to their system's topic, keyed by Event.Key with
// Event.Headers, in the order given for any one key. It returns only when
// every event is acknowledged by the broker (acks=all), or an error; events
// may then have been written partly, and publishing them again is safe: the
// ids are the same. Its errors are of kind merge.ErrUnavailable when the
// broker could not be reached.
type Publisher interface {
	Publish(ctx context.Context, events ...Event) error
}
