package merge

import (
	"strconv"
	"strings"
	"time"
)

// Merge builds the unified view of a (System A) and b (System B) by rules.
// Either may be nil; when both are, the Result is zero. Per field: a value
// present on one side only is taken from that side; equivalent values take the
// text of the rule's winner; conflicting values are decided by the rule, and a
// winner's absent value falls back to the other side. Values are the
// winner's original text, trimmed. When both records are present, Conflicts
// holds one Resolution per Difference of Diff(a, b), OnlyIn kinds included;
// a customer held by one system only has no conflicts (there is nothing to
// resolve: Presence says which system holds it, Sources name it per field).
func Merge(a, b *Record, rules Rules) Result {
	res := Result{Presence: PresenceOf(a, b)}
	if res.Presence == "" {
		return res
	}
	var none Record
	ra, rb := orNone(a, &none), orNone(b, &none)
	res.A, res.B = ra.LastUpdated, rb.LastUpdated
	newer := Newer(res.A, res.B)
	if newer == SystemB {
		res.Customer.LastUpdated = res.B
	} else {
		res.Customer.LastUpdated = res.A
	}
	for i := range ra.Values {
		id := FieldID(i)
		rule := rules.For(id)
		x, y := strings.TrimSpace(ra.Values[i]), strings.TrimSpace(rb.Values[i])
		if x == "" && y == "" {
			continue
		}
		from := winner(rule, newer)
		switch {
		case x == "":
			from = SystemB
		case y == "":
			from = SystemA
		}
		if from == SystemA {
			res.Customer.Values[i] = x
		} else {
			res.Customer.Values[i] = y
		}
		res.Sources[i] = from
		kind, differ := diffKind(id, x, y)
		if !differ || res.Presence != InBoth {
			continue
		}
		if res.Conflicts == nil {
			res.Conflicts = make([]Resolution, 0, NumFields-i) // one allocation at most
		}
		res.Conflicts = append(res.Conflicts, Resolution{
			Difference:   difference(id, kind, ra, rb, newer),
			ResolvedFrom: from,
			Rule:         rule,
		})
	}
	return res
}

// winner returns the system whose value rule picks, given which record is
// newer; newest ties go to System A, the system of record.
func winner(rule Rule, newer Source) Source {
	switch rule {
	case RuleSystemB:
		return SystemB
	case RuleSystemA:
		return SystemA
	default:
		if newer == SystemB {
			return SystemB
		}
		return SystemA
	}
}

// SourcesMap returns the provenance of every present field keyed by its JSON
// path (fields absent in both systems are left out).
func (r *Result) SourcesMap() map[string]Source {
	m := make(map[string]Source, NumFields)
	for i, s := range r.Sources {
		if s != "" {
			m[Fields[i].Path] = s
		}
	}
	return m
}

// InSync reports whether both systems hold the customer and agree on every
// field after normalisation.
func (r *Result) InSync() bool { return r.Presence == InBoth && len(r.Conflicts) == 0 }

// NewFreshness builds a Freshness from System A's snapshot exported_at and
// System B's read time; a zero time means that system was not read. AsOf is
// the older of the non-zero ones (zero when both are zero).
func NewFreshness(exportedAt, readAt time.Time) Freshness {
	f := Freshness{SystemA: exportedAt, SystemB: readAt}
	switch {
	case exportedAt.IsZero():
		f.AsOf = readAt
	case readAt.IsZero(), exportedAt.Before(readAt):
		f.AsOf = exportedAt
	default:
		f.AsOf = readAt
	}
	return f
}

// Path returns the field's JSON path ("" for an unknown id).
func (id FieldID) Path() string {
	if id < 0 || int(id) >= NumFields {
		return ""
	}
	return Fields[id].Path
}

// String returns the field's JSON path, or "FieldID(n)" for an unknown id.
func (id FieldID) String() string {
	if p := id.Path(); p != "" {
		return p
	}
	return "FieldID(" + strconv.Itoa(int(id)) + ")"
}
