package merge

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fieldSep separates field values in the fuzz encoding of a record.
const fieldSep = "|"

// fuzzRecord decodes a record from fuzz input: NumFields values separated by
// fieldSep (missing ones absent, extra text ignored) and a Unix second.
func fuzzRecord(values string, unix int64) *Record {
	r := &Record{LastUpdated: time.Unix(unix%(1<<40), 0).UTC()}
	parts := strings.SplitN(values, fieldSep, NumFields)
	copy(r.Values[:], parts)
	return r
}

// encode is fuzzRecord's inverse for seeds.
func encode(r *Record) string { return strings.Join(r.Values[:], fieldSep) }

// fuzzRules picks a rule per field from the bits of n.
func fuzzRules(n uint32) Rules {
	var r Rules
	for i := range r.byField {
		r.byField[i] = ruleNames[(n>>(2*i))%4%3]
	}
	return r
}

// addRecordSeeds adds realistic pairs to the corpus of a record fuzz test.
func addRecordSeeds(f *testing.F) {
	a, sync, conflict := typicalA(f), typicalBInSync(f), typicalBConflict(f)
	ta, tb := a.LastUpdated.Unix(), sync.LastUpdated.Unix()
	f.Add(encode(a), encode(sync), ta, tb, uint32(0))
	f.Add(encode(a), encode(conflict), ta, tb, uint32(0x5555))
	f.Add(encode(a), encode(conflict), tb, ta, uint32(0xaaaa))
	f.Add(encode(a), encode(conflict), ta, ta, uint32(1<<18))
	f.Add("JÖRG@Example.com|Jörg|MÜLLER", "jörg@example.com| jörg |Mu\u0308ller", ta, ta, uint32(7))
	f.Add("a@x.io|Rene\u0301||+1 555", "a@x.io|René|  |1555", ta, tb, uint32(0))
	f.Add("a@x.io|||||||||maybe", "A@X.IO|||||||||MAYBE", tb, ta, uint32(3))
	f.Add("", "b@y.io|x", int64(0), tb, uint32(0))
}

// mirror returns d as Diff(b, a) would report it.
func mirror(ds []Difference) []Difference {
	var out []Difference
	for _, d := range ds {
		d.A, d.B = d.B, d.A
		d.ALastUpdated, d.BLastUpdated = d.BLastUpdated, d.ALastUpdated
		switch d.Kind {
		case OnlyInA:
			d.Kind = OnlyInB
		case OnlyInB:
			d.Kind = OnlyInA
		}
		switch d.NewerSource {
		case SystemA:
			d.NewerSource = SystemB
		case SystemB:
			d.NewerSource = SystemA
		}
		out = append(out, d)
	}
	return out
}

func FuzzDiff(f *testing.F) {
	addRecordSeeds(f)
	f.Fuzz(func(t *testing.T, av, bv string, ta, tb int64, _ uint32) {
		a, b := fuzzRecord(av, ta), fuzzRecord(bv, tb)
		d := Diff(a, b)
		if again := Diff(a, b); !reflect.DeepEqual(d, again) {
			t.Fatalf("Diff is not deterministic:\n%+v\n%+v", d, again)
		}
		if swapped := Diff(b, a); !reflect.DeepEqual(swapped, mirror(d)) {
			t.Fatalf("Diff(b, a) is not Diff(a, b) mirrored:\n%+v\n%+v", swapped, mirror(d))
		}
		last := FieldID(-1)
		for _, x := range d {
			if x.Field <= last {
				t.Fatalf("differences out of field order: %+v", d)
			}
			last = x.Field
			if x.A != a.Values[x.Field] || x.B != b.Values[x.Field] {
				t.Fatalf("difference %+v does not carry the original values", x)
			}
			if x.NewerSource != Newer(a.LastUpdated, b.LastUpdated) {
				t.Fatalf("difference %+v has the wrong newerSource", x)
			}
		}
		for i := range NumFields {
			id := FieldID(i)
			x, y := a.Values[i], b.Values[i]
			eq := Equivalent(id, x, y)
			if eq != (Normalize(id, x) == Normalize(id, y)) {
				t.Fatalf("%v: Equivalent(%q, %q) = %v but Normalize gives %q and %q", id, x, y, eq, Normalize(id, x), Normalize(id, y))
			}
			if eq != Equivalent(id, y, x) {
				t.Fatalf("%v: Equivalent(%q, %q) is not symmetric", id, x, y)
			}
			if !Equivalent(id, x, " "+x+"\t") {
				t.Fatalf("%v: %q is not equivalent to itself padded", id, x)
			}
			differs := false
			for _, dd := range d {
				differs = differs || dd.Field == id
			}
			if differs == eq {
				t.Fatalf("%v: Equivalent(%q, %q) = %v, but Diff says differs = %v", id, x, y, eq, differs)
			}
		}
		for _, side := range []struct {
			r    *Record
			kind DiffKind
			d    []Difference
		}{{a, OnlyInA, Diff(a, nil)}, {b, OnlyInB, Diff(nil, b)}} {
			n := 0
			for i, v := range side.r.Values {
				if strings.TrimSpace(v) != "" {
					if n >= len(side.d) || side.d[n].Field != FieldID(i) || side.d[n].Kind != side.kind {
						t.Fatalf("one-sided Diff %+v misses field %v", side.d, FieldID(i))
					}
					n++
				}
			}
			if n != len(side.d) {
				t.Fatalf("one-sided Diff %+v has extra differences", side.d)
			}
		}
	})
}

func FuzzMerge(f *testing.F) {
	addRecordSeeds(f)
	f.Fuzz(func(t *testing.T, av, bv string, ta, tb int64, rn uint32) {
		a, b := fuzzRecord(av, ta), fuzzRecord(bv, tb)
		rules := fuzzRules(rn)
		res := Merge(a, b, rules)
		if again := Merge(a, b, rules); !reflect.DeepEqual(res, again) {
			t.Fatalf("Merge is not deterministic")
		}
		m := res.Customer
		for i, v := range m.Values {
			x, y := strings.TrimSpace(a.Values[i]), strings.TrimSpace(b.Values[i])
			switch res.Sources[i] {
			case SystemA:
				if v != x || v == "" {
					t.Fatalf("%v = %q from System A, which holds %q", FieldID(i), v, x)
				}
			case SystemB:
				if v != y || v == "" {
					t.Fatalf("%v = %q from System B, which holds %q", FieldID(i), v, y)
				}
			case "":
				if v != "" || x != "" || y != "" {
					t.Fatalf("%v = %q without a source (A %q, B %q)", FieldID(i), v, x, y)
				}
			default:
				t.Fatalf("%v has source %q", FieldID(i), res.Sources[i])
			}
		}
		diffs := Diff(a, b)
		if len(res.Conflicts) != len(diffs) {
			t.Fatalf("%d conflicts for %d differences", len(res.Conflicts), len(diffs))
		}
		for i, c := range res.Conflicts {
			if !reflect.DeepEqual(c.Difference, diffs[i]) || c.Rule != rules.For(c.Field) || c.ResolvedFrom != res.Sources[c.Field] {
				t.Fatalf("conflict %+v does not match difference %+v, rule %q, source %q", c, diffs[i], rules.For(c.Field), res.Sources[c.Field])
			}
		}
		if want := a.LastUpdated; b.LastUpdated.After(want) && !m.LastUpdated.Equal(b.LastUpdated) || !b.LastUpdated.After(want) && !m.LastUpdated.Equal(want) {
			t.Fatalf("LastUpdated = %v, want the later of %v and %v", m.LastUpdated, a.LastUpdated, b.LastUpdated)
		}
		again := Merge(&m, &m, rules)
		if !reflect.DeepEqual(again.Customer, m) || len(again.Conflicts) != 0 {
			t.Fatalf("Merge(m, m) = %+v with %d conflicts, want m = %+v", again.Customer, len(again.Conflicts), m)
		}
		for _, one := range []Result{Merge(a, nil, rules), Merge(nil, b, rules)} {
			if len(one.Conflicts) != 0 {
				t.Fatalf("one-sided Merge has conflicts: %+v", one.Conflicts)
			}
		}
	})
}

func FuzzParseRules(f *testing.F) {
	for _, s := range []string{"", DefaultRulesText, " email = systemB , *=systemA", "*=newest,*=newest",
		"loyaltyTier=systemC", "address.city=systemB,address.country=systemA", "=", ",", "a=b=c", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ParseRules(text)
		if err != nil {
			if !errors.Is(err, ErrInvalidRules) {
				t.Fatalf("error %v does not wrap ErrInvalidRules", err)
			}
			return
		}
		s := r.String()
		back, err := ParseRules(s)
		if err != nil || back != r {
			t.Fatalf("ParseRules(%q).String() = %q parses to %v, %v", text, s, back, err)
		}
		if back.String() != s {
			t.Fatalf("String is not stable: %q then %q", s, back.String())
		}
	})
}

// emailReasons are the only texts ParseEmail's errors may carry after the
// sentinel's: fixed phrases, so an error can never echo the address.
var emailReasons = map[string]bool{
	"empty": true, "longer than 254 bytes": true, "not valid UTF-8": true,
	"contains a control character": true, "contains whitespace": true, "contains an invisible formatting character": true, `contains '/' or '\'`: true,
	"must contain exactly one '@'": true, "empty local part before '@'": true,
	"local part longer than 64 bytes": true, "empty domain after '@'": true,
	"domain has an empty label (leading, trailing or double '.')": true,
	"a domain label starts or ends with '-'":                      true,
}

func FuzzParseEmail(f *testing.F) {
	for _, s := range []string{"anna@example.com", " JÖRG@Example.com ", "jörg@example.com", "a+b@x.io",
		"@", "a@", "@b", "a@b@c", "a@.b", "a@b-", "a\x00@b", "a/b@c", "a b@c", "\xff@x", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		key, err := ParseEmail(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidEmail) {
				t.Fatalf("error %v does not wrap ErrInvalidEmail", err)
			}
			reason, ok := strings.CutPrefix(err.Error(), ErrInvalidEmail.Error()+": ")
			if !ok || !emailReasons[reason] {
				t.Fatalf("error %q is not one of the fixed reasons", err)
			}
			return
		}
		if key != Key(in) {
			t.Fatalf("ParseEmail(%q) = %q, Key = %q", in, key, Key(in))
		}
		trimmed := strings.TrimSpace(in)
		if len(trimmed) > MaxEmailLen || !utf8.ValidString(trimmed) || strings.Count(trimmed, "@") != 1 ||
			strings.ContainsAny(trimmed, " \t\r\n\x00/\\") {
			t.Fatalf("ParseEmail accepted %q", in)
		}
		if again, err := ParseEmail(key); err != nil && len(key) <= MaxEmailLen {
			t.Fatalf("the key %q of %q does not parse: %v", key, in, err)
		} else if err == nil && again != key {
			t.Fatalf("the key %q is not its own key (%q)", key, again)
		}
	})
}
