// Package merge is the domain core of the Unified Customer Service: the unified
// customer, the field table that maps System A's columns and System B's JSON to
// it, field-level conflict detection (Diff), priority-rule resolution (Merge)
// and freshness.
//
// The package does no I/O and imports nothing from AWS or Lambda. Adapters
// (shared/systema, shared/systemb) turn their sources into Records; the Lambda
// functions turn Results into responses.
package merge

import (
	"errors"
	"time"
)

// Source names one of the two upstream systems, or neither side when
// comparing timestamps.
type Source string

// The sources, as they appear in every JSON document the service writes.
const (
	SystemA Source = "systemA" // System A, the system of record (nightly SQLite snapshot).
	SystemB Source = "systemB" // System B, the external near-real-time REST API.
	Equal   Source = "equal"   // Both records carry the same lastUpdated.
)

// ErrInvalidEmail is returned (wrapped) for an email that cannot be a join key.
var ErrInvalidEmail = errors.New("merge: invalid email")

// ErrInvalidRules is returned (wrapped) for a MERGE_RULES text that does not parse.
var ErrInvalidRules = errors.New("merge: invalid merge rules")

// Record is one customer as one system holds it. Values are indexed by
// FieldID (see Fields) and hold the source's original text; "" means absent
// (empty and null are the same). Boolean fields hold "true", "false" or "".
type Record struct {
	Values      [NumFields]string
	LastUpdated time.Time
}

// Get returns the original text of field id ("" when absent).
func (r *Record) Get(id FieldID) string { return r.Values[id] }

// Email returns the record's email as its source wrote it.
func (r *Record) Email() string { return r.Values[FieldEmail] }

// Key returns the record's join key (see Key).
func (r *Record) Key() string { return Key(r.Values[FieldEmail]) }
