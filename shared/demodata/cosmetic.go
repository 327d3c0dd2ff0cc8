package demodata

import (
	"math/rand/v2"
	"slices"
	"strings"

	"golang.org/x/text/unicode/norm"

	"github.com/acme/unified-customer-service/shared/merge"
)

// A cosmetic variant changes a value's text but not its meaning under the
// contract's normalisation (docs/contracts.md): case where a field compares
// case-insensitively, surrounding and doubled whitespace, phone punctuation,
// postal-code spacing and case, NFD instead of NFC accents. The generator's
// intent stays independent of shared/merge; the tests check the two agree.

// cosmeticOp turns a value into a variant; ok is false when the op does not
// apply to it.
type cosmeticOp func(v string) (out string, ok bool)

// cosmeticOps returns the variants that keep a value of kind k equivalent.
func cosmeticOps(k merge.Kind) []cosmeticOp {
	switch k {
	case merge.KindName:
		return []cosmeticOp{upperFold, lowerFold, padSpaces, doubleSpace, decompose}
	case merge.KindText:
		return []cosmeticOp{padSpaces, doubleSpace, decompose}
	case merge.KindPhone:
		return []cosmeticOp{phoneCompact, phoneDashes, phoneParens}
	case merge.KindPostalCode:
		return []cosmeticOp{postalRespace, lowerFold, padSpaces}
	case merge.KindCountry:
		return []cosmeticOp{lowerFold, padSpaces}
	case merge.KindTier:
		return []cosmeticOp{titleTier, upperFold, padSpaces}
	case merge.KindEmail:
		return []cosmeticOp{emailRestyle}
	}
	return nil // booleans have no cosmetic variant
}

// cosmeticVariant returns a variant of v for field f that differs from v in
// bytes, trying f's ops from a random one on.
func cosmeticVariant(f merge.FieldID, v string, rng *rand.Rand) (string, bool) {
	ops := cosmeticOps(merge.Fields[f].Kind)
	if v == "" || len(ops) == 0 {
		return "", false
	}
	start := rng.IntN(len(ops))
	for i := range ops {
		if out, ok := ops[(start+i)%len(ops)](v); ok && out != v {
			return out, true
		}
	}
	return "", false
}

// applyCosmetics gives up to k present fields (not in skip) a cosmetic
// variant, each on a random side. With skip nil it guarantees a and b end up
// different in bytes (falling back to restyling an email).
func applyCosmetics(a, b *merge.Record, rng *rand.Rand, k int, skip []merge.FieldID) {
	cands := make([]merge.FieldID, 0, merge.NumFields)
	for f := range merge.FieldID(merge.NumFields) {
		if a.Values[f] != "" && a.Values[f] == b.Values[f] && !slices.Contains(skip, f) && len(cosmeticOps(merge.Fields[f].Kind)) > 0 {
			cands = append(cands, f)
		}
	}
	changed := false
	for n := 0; n < k && len(cands) > 0; n++ {
		j := rng.IntN(len(cands))
		f := cands[j]
		cands = slices.Delete(cands, j, j+1)
		side := a
		if rng.IntN(2) == 0 {
			side = b
		}
		if out, ok := cosmeticVariant(f, side.Values[f], rng); ok {
			side.Values[f] = out
			changed = true
		}
	}
	if !changed && skip == nil {
		b.Values[merge.FieldEmail], _ = emailRestyle(b.Values[merge.FieldEmail])
	}
}

func upperFold(v string) (string, bool) {
	out := strings.ToUpper(v)
	return out, strings.EqualFold(out, v) // e.g. "Yılmaz" -> "YILMAZ" is not a fold
}

func lowerFold(v string) (string, bool) {
	out := strings.ToLower(v)
	return out, strings.EqualFold(out, v)
}

func padSpaces(v string) (string, bool) { return "  " + v + " ", true }

func doubleSpace(v string) (string, bool) {
	return strings.Replace(v, " ", "  ", 1), strings.Contains(v, " ")
}

func decompose(v string) (string, bool) {
	out := norm.NFD.String(v)
	return out, out != v
}

func phoneCompact(v string) (string, bool) { return strings.ReplaceAll(v, " ", ""), true }

func phoneDashes(v string) (string, bool) {
	code, rest, ok := strings.Cut(v, " ")
	return code + " " + strings.ReplaceAll(rest, " ", "-"), ok
}

func phoneParens(v string) (string, bool) {
	parts := strings.SplitN(v, " ", 3)
	if len(parts) < 3 {
		return "", false
	}
	return parts[0] + " (" + parts[1] + ") " + parts[2], true
}

// postalRespace drops the spaces of a code that has some and splits one
// that has none.
func postalRespace(v string) (string, bool) {
	if strings.Contains(v, " ") {
		return strings.ReplaceAll(v, " ", ""), true
	}
	if len(v) < 2 {
		return "", false
	}
	mid := len(v) / 2
	return v[:mid] + " " + v[mid:], true
}

func titleTier(v string) (string, bool) {
	if v == "" || v[0] < 'a' || v[0] > 'z' {
		return "", false
	}
	return string(v[0]-'a'+'A') + v[1:], true
}

// emailRestyle changes the case of an email's ASCII letters only (so its
// key, and its SQLite NOCASE order, stay the same).
func emailRestyle(v string) (string, bool) {
	key := merge.Key(v)
	for _, out := range []string{upperDomain(key), titleASCII(key), key} {
		if out != v {
			return out, true
		}
	}
	return "", false
}
