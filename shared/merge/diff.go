package merge

import (
	"slices"
	"strings"
	"time"
)

// Newer compares two records' lastUpdated: SystemA when a is later, SystemB
// when b is later, Equal when they are the same instant.
func Newer(a, b time.Time) Source {
	switch {
	case a.After(b):
		return SystemA
	case b.After(a):
		return SystemB
	default:
		return Equal
	}
}

// PresenceOf says which of a and b (either may be nil) hold the customer;
// "" when both are nil.
func PresenceOf(a, b *Record) Presence {
	switch {
	case a != nil && b != nil:
		return InBoth
	case a != nil:
		return OnlyInSystemA
	case b != nil:
		return OnlyInSystemB
	default:
		return ""
	}
}

// Diff returns the field-level differences of a (System A) and b (System B)
// in field order; nil when they are in sync. Either may be nil: every present
// field of the other is then an OnlyIn difference. The email fields of two
// records with the same Key never differ.
func Diff(a, b *Record) []Difference { return AppendDiff(nil, a, b) }

// AppendDiff is Diff appending to dst, so callers can reuse a buffer. It
// returns dst unchanged, without allocating, when a and b are in sync.
func AppendDiff(dst []Difference, a, b *Record) []Difference {
	if a == nil && b == nil {
		return dst
	}
	var none Record
	ra, rb := orNone(a, &none), orNone(b, &none)
	var newer Source
	for i := range ra.Values {
		kind, ok := diffKind(FieldID(i), ra.Values[i], rb.Values[i])
		if !ok {
			continue
		}
		if newer == "" {
			newer = Newer(ra.LastUpdated, rb.LastUpdated)
			dst = slices.Grow(dst, NumFields-i) // one allocation at most
		}
		dst = append(dst, difference(FieldID(i), kind, ra, rb, newer))
	}
	return dst
}

// orNone returns r, or none (an empty record) when r is nil.
func orNone(r, none *Record) *Record {
	if r == nil {
		return none
	}
	return r
}

// difference builds the Difference of field id between ra and rb.
func difference(id FieldID, kind DiffKind, ra, rb *Record, newer Source) Difference {
	return Difference{
		Field:        id,
		Kind:         kind,
		A:            ra.Values[id],
		B:            rb.Values[id],
		ALastUpdated: ra.LastUpdated,
		BLastUpdated: rb.LastUpdated,
		NewerSource:  newer,
	}
}

// diffKind classifies field id's values x (System A) and y (System B);
// ok is false when they do not differ.
func diffKind(id FieldID, x, y string) (kind DiffKind, ok bool) {
	if x == y {
		return "", false
	}
	x, y = strings.TrimSpace(x), strings.TrimSpace(y)
	switch {
	case x == y:
		return "", false
	case y == "":
		return OnlyInA, true
	case x == "":
		return OnlyInB, true
	case equivalentKind(kindOf(id), x, y):
		return "", false
	default:
		return Mismatch, true
	}
}
