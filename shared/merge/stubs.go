package merge

// Signatures of the package; bodies in progress (owned by the merge-core work).

import "time"

// Key returns the join key of an email: trimmed and lower-cased.
func Key(email string) string { panic("merge: Key not implemented yet") }

// ParseEmail validates an email (as a user typed it) and returns its join key.
// Errors wrap ErrInvalidEmail and say why without echoing the address.
func ParseEmail(email string) (key string, err error) { panic("not implemented yet") }

// Newer compares two records' lastUpdated: SystemA, SystemB or Equal.
func Newer(a, b time.Time) Source { panic("not implemented yet") }

// PresenceOf says which of a and b (either may be nil) hold the customer.
func PresenceOf(a, b *Record) Presence { panic("not implemented yet") }

// Diff returns the field-level differences of a (System A) and b (System B)
// in field order; nil when they are in sync. Either may be nil: every present
// field of the other is then an OnlyIn difference.
func Diff(a, b *Record) []Difference { return AppendDiff(nil, a, b) }

// AppendDiff is Diff appending to dst, so callers can reuse a buffer.
func AppendDiff(dst []Difference, a, b *Record) []Difference { panic("not implemented yet") }

// Equivalent reports whether two values of field id are the same after
// normalisation (both absent counts as equal).
func Equivalent(id FieldID, x, y string) bool { panic("not implemented yet") }

// ParseRules parses a MERGE_RULES text: comma-separated field=rule pairs,
// where field is a JSON path from Fields or "*" and rule is newest, systemA
// or systemB. An empty text means DefaultRulesText.
func ParseRules(text string) (Rules, error) { panic("not implemented yet") }

// DefaultRules returns the rules of DefaultRulesText.
func DefaultRules() Rules { panic("not implemented yet") }

// For returns the rule of field id.
func (r Rules) For(id FieldID) Rule { return r.byField[id] }

// String renders the rules in MERGE_RULES syntax.
func (r Rules) String() string { panic("not implemented yet") }

// Merge builds the unified view of a (System A) and b (System B) by rules.
// Either may be nil, not both.
func Merge(a, b *Record, rules Rules) Result { panic("not implemented yet") }

// NewFreshness builds a Freshness; a zero time means that system was not read.
func NewFreshness(exportedAt, readAt time.Time) Freshness { panic("not implemented yet") }

// JSONValue renders a field's value for JSON: nil when absent, a bool for
// KindBool, the string otherwise.
func JSONValue(id FieldID, v string) any { panic("not implemented yet") }

// MarshalJSON renders the record as the unified customer object, nested by
// the fields' paths (absent values as null). LastUpdated is not included.
func (r Record) MarshalJSON() ([]byte, error) { panic("not implemented yet") }
