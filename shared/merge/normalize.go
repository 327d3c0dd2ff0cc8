package merge

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file holds the per-Kind normalisers. Each Kind has two forms that must
// agree: a streaming comparator used by Equivalent (no allocation for ASCII or
// NFC input) and Normalize, which builds the canonical comparison text. Two
// values are Equivalent exactly when their Normalize forms are equal; the
// fuzz tests check that.

// Key returns the join key of an email: trimmed and lower-cased
// (strings.ToLower, so non-ASCII letters fold too). It does not validate; use
// ParseEmail for input typed by a user. It does not allocate when the email
// is already a key.
func Key(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Equivalent reports whether two values of field id are the same after
// normalisation (both absent counts as equal). Empty and whitespace-only
// values are absent. It does not allocate for ASCII or NFC text.
func Equivalent(id FieldID, x, y string) bool {
	x, y = strings.TrimSpace(x), strings.TrimSpace(y)
	if x == "" || y == "" {
		return x == y
	}
	if x == y {
		return true
	}
	return equivalentKind(kindOf(id), x, y)
}

// equivalentKind compares two trimmed, present values of kind k.
func equivalentKind(k Kind, x, y string) bool {
	switch k {
	case KindEmail, KindTier:
		return equalMapped(x, y, unicode.ToLower)
	case KindCountry:
		return equalMapped(x, y, unicode.ToUpper)
	case KindName:
		return equalText(x, y, true)
	case KindText:
		return equalText(x, y, false)
	case KindPhone:
		return equalPhone(x, y)
	case KindPostalCode:
		return equalPostal(x, y)
	case KindBool:
		return equalBool(x, y)
	default:
		return x == y
	}
}

// Normalize returns the canonical comparison form of a value of field id: ""
// when absent; Equivalent(id, x, y) is Normalize(id, x) == Normalize(id, y).
// The form is for comparing and tests, never for output (outputs keep the
// source's original text). Names fold case to one representative per Unicode
// simple case-folding class; phones become an optional '+' and digits.
func Normalize(id FieldID, v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	switch kindOf(id) {
	case KindEmail, KindTier:
		return strings.ToLower(v)
	case KindCountry:
		return strings.ToUpper(v)
	case KindName:
		return normalizeText(v, true)
	case KindText:
		return normalizeText(v, false)
	case KindPhone:
		return normalizePhone(v)
	case KindPostalCode:
		return normalizePostal(v)
	case KindBool:
		return normalizeBool(v)
	default:
		return v
	}
}

// kindOf returns the kind of field id; 0 (plain equality) for an unknown id.
func kindOf(id FieldID) Kind {
	if id < 0 || int(id) >= NumFields {
		return 0
	}
	return Fields[id].Kind
}

// decode returns the rune at s[i] and its width; invalid bytes decode as
// utf8.RuneError of width 1 (as strings.Map and range treat them).
func decode(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// equalMapped compares x and y rune by rune after mapping each rune with f;
// it agrees with strings.Map(f, x) == strings.Map(f, y).
func equalMapped(x, y string, f func(rune) rune) bool {
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		if c1, c2 := x[i], y[j]; c1|c2 < utf8.RuneSelf { // ASCII: f is a case mapping
			if c1 != c2 && lowerASCII(c1) != lowerASCII(c2) {
				return false
			}
			i++
			j++
			continue
		}
		r1, n1 := decode(x, i)
		r2, n2 := decode(y, j)
		if r1 != r2 && f(r1) != f(r2) {
			return false
		}
		i += n1
		j += n2
	}
	return i == len(x) && j == len(y)
}

// lowerASCII lower-cases an ASCII letter; other bytes are returned as is.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isSpaceASCII reports whether the ASCII byte c is white space.
func isSpaceASCII(c byte) bool { return c == ' ' || ('\t' <= c && c <= '\r') }

// isSpace is unicode.IsSpace with an ASCII fast path.
func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return isSpaceASCII(byte(r))
	}
	return unicode.IsSpace(r)
}

// nfc returns s in Unicode NFC. It allocates only when the NFC quick check
// cannot tell that s is NFC already (then s has combining marks).
func nfc(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			if norm.NFC.QuickSpanString(s) == len(s) {
				return s // NFC for sure, by the quick check (no allocation)
			}
			return norm.NFC.String(s)
		}
	}
	return s
}

// textToken returns the next comparison token of s at i for text kinds: a
// run of whitespace is one ' '; otherwise the rune. n is the bytes consumed,
// 0 at the end.
func textToken(s string, i int) (r rune, n int) {
	if i >= len(s) {
		return 0, 0
	}
	r, n = decode(s, i)
	if !isSpace(r) {
		return r, n
	}
	j := i + n
	for j < len(s) {
		r2, n2 := decode(s, j)
		if !isSpace(r2) {
			break
		}
		j += n2
	}
	return ' ', j - i
}

// textIter yields the comparison runes of a text kind's value: whitespace
// runs as one ' ' (see textToken) and, for names, every other rune in its
// canonical decomposition, because case folding and composition do not
// commute: "ẘ" (U+1E98) composes in NFC but its capital "W̊" does not.
type textIter struct {
	s         string // the value, in NFC
	i         int    // next byte of s
	dec       []byte // rest of the current rune's decomposition (names)
	decompose bool
}

// next returns the next rune; ok is false at the end.
func (it *textIter) next() (r rune, ok bool) {
	if len(it.dec) > 0 {
		r, n := utf8.DecodeRune(it.dec)
		it.dec = it.dec[n:]
		return r, true
	}
	r, n := textToken(it.s, it.i)
	if n == 0 {
		return 0, false
	}
	if it.decompose && r >= utf8.RuneSelf {
		if d := norm.NFD.PropertiesString(it.s[it.i:]).Decomposition(); len(d) > 0 {
			r, n1 := utf8.DecodeRune(d)
			it.dec = d[n1:]
			it.i += n
			return r, true
		}
	}
	it.i += n
	return r, true
}

// asciiNext returns the next byte when it is an ASCII non-space byte with
// no decomposition pending, so the caller can compare it directly.
func (it *textIter) asciiNext() (byte, bool) {
	if len(it.dec) > 0 || it.i >= len(it.s) {
		return 0, false
	}
	c := it.s[it.i]
	return c, c < utf8.RuneSelf && !isSpaceASCII(c)
}

// equalText compares two trimmed texts after NFC with whitespace runs
// collapsed; when fold is set (names) it ignores case, comparing
// canonically decomposed runes by Unicode simple case folding.
func equalText(x, y string, fold bool) bool {
	a := textIter{s: nfc(x), decompose: fold}
	b := textIter{s: nfc(y), decompose: fold}
	for {
		// Fast path: two ASCII non-space bytes are tokens by themselves.
		if c1, ok := a.asciiNext(); ok {
			if c2, ok := b.asciiNext(); ok {
				if c1 != c2 && (!fold || lowerASCII(c1) != lowerASCII(c2)) {
					return false
				}
				a.i++
				b.i++
				continue
			}
		}
		r1, ok1 := a.next()
		r2, ok2 := b.next()
		if !ok1 || !ok2 {
			return ok1 == ok2
		}
		if r1 != r2 && (!fold || !foldEqual(r1, r2)) {
			return false
		}
	}
}

// normalizeText is the canonical form that equalText compares.
func normalizeText(v string, fold bool) string {
	it := textIter{s: nfc(v), decompose: fold}
	var b strings.Builder
	b.Grow(len(v))
	for {
		r, ok := it.next()
		if !ok {
			return b.String()
		}
		if fold {
			r = foldRep(r)
		}
		b.WriteRune(r)
	}
}

// foldEqual reports whether r1 and r2 are in the same Unicode simple
// case-folding orbit (the relation strings.EqualFold uses).
func foldEqual(r1, r2 rune) bool {
	if r1 == r2 {
		return true
	}
	if r2 < r1 {
		r1, r2 = r2, r1
	}
	if r2 < utf8.RuneSelf {
		return 'A' <= r1 && r1 <= 'Z' && r2 == r1+'a'-'A'
	}
	r := unicode.SimpleFold(r1)
	for r != r1 && r < r2 {
		r = unicode.SimpleFold(r)
	}
	return r == r2
}

// foldRep returns one fixed member of r's case-folding orbit: its lower-case
// mapping when that is in the orbit, else the orbit's smallest rune.
func foldRep(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		if r != 'k' && r != 's' { // k and s have non-ASCII orbit members
			return r
		}
	}
	lo := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		lo = min(lo, f)
	}
	if l := unicode.ToLower(lo); foldEqual(l, lo) {
		return l
	}
	return lo
}

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// hasDigit reports whether s holds an ASCII digit.
func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			return true
		}
	}
	return false
}

// equalPhone compares two trimmed phone numbers by their ASCII digits, with a
// leading '+' significant. Values without any digit compare as names.
func equalPhone(x, y string) bool {
	hx, hy := hasDigit(x), hasDigit(y)
	if !hx || !hy {
		return !hx && !hy && equalText(x, y, true)
	}
	if (x[0] == '+') != (y[0] == '+') {
		return false
	}
	i, j := 0, 0
	for {
		for i < len(x) && !isDigit(x[i]) {
			i++
		}
		for j < len(y) && !isDigit(y[j]) {
			j++
		}
		if i == len(x) || j == len(y) {
			return i == len(x) && j == len(y)
		}
		if x[i] != y[j] {
			return false
		}
		i++
		j++
	}
}

// normalizePhone is the canonical form that equalPhone compares.
func normalizePhone(v string) string {
	if !hasDigit(v) {
		return normalizeText(v, true)
	}
	b := make([]byte, 0, len(v))
	if v[0] == '+' {
		b = append(b, '+')
	}
	for i := 0; i < len(v); i++ {
		if isDigit(v[i]) {
			b = append(b, v[i])
		}
	}
	return string(b)
}

// equalPostal compares two postal codes upper-cased with all whitespace
// removed.
func equalPostal(x, y string) bool {
	i, j := 0, 0
	for {
		var r1, r2 rune
		var n1, n2 int
		for i < len(x) {
			if r1, n1 = decode(x, i); !isSpace(r1) {
				break
			}
			i += n1
		}
		for j < len(y) {
			if r2, n2 = decode(y, j); !isSpace(r2) {
				break
			}
			j += n2
		}
		if i == len(x) || j == len(y) {
			return i == len(x) && j == len(y)
		}
		if r1 != r2 && unicode.ToUpper(r1) != unicode.ToUpper(r2) {
			return false
		}
		i += n1
		j += n2
	}
}

// normalizePostal is the canonical form that equalPostal compares.
func normalizePostal(v string) string {
	return strings.Map(func(r rune) rune {
		if isSpace(r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, v)
}

// parseBool reads a boolean the way the sources may write it: true, t, 1,
// yes, y or false, f, 0, no, n, in any case.
func parseBool(v string) (value, ok bool) {
	switch {
	case strings.EqualFold(v, "true"), strings.EqualFold(v, "t"), v == "1",
		strings.EqualFold(v, "yes"), strings.EqualFold(v, "y"):
		return true, true
	case strings.EqualFold(v, "false"), strings.EqualFold(v, "f"), v == "0",
		strings.EqualFold(v, "no"), strings.EqualFold(v, "n"):
		return false, true
	}
	return false, false
}

// equalBool compares two booleans by value; unreadable ones compare as
// lower-cased text (and never equal a readable one).
func equalBool(x, y string) bool {
	bx, okx := parseBool(x)
	by, oky := parseBool(y)
	if okx || oky {
		return okx && oky && bx == by
	}
	return equalMapped(x, y, unicode.ToLower)
}

// normalizeBool is the canonical form that equalBool compares.
func normalizeBool(v string) string {
	if b, ok := parseBool(v); ok {
		if b {
			return "true"
		}
		return "false"
	}
	return strings.ToLower(v)
}
