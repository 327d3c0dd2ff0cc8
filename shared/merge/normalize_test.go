package merge

import (
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

const (
	eAcuteNFC = "Ren\u00e9"  // é precomposed
	eAcuteNFD = "Rene\u0301" // e + combining acute
)

// equivalentCases are the table of TestEquivalent and seeds of FuzzEquivalent.
var equivalentCases = []struct {
	name string
	id   FieldID
	x, y string
	want bool
}{
	{"both absent", FieldFirstName, "", "", true},
	{"empty vs whitespace-only", FieldFirstName, "", " \t\n", true},
	{"absent vs present", FieldFirstName, "", "Anna", false},
	{"whitespace-only vs present", FieldLastName, "   ", "x", false},

	{"email case", FieldEmail, "Anna@Example.COM", "anna@example.com", true},
	{"email trim", FieldEmail, "  anna@example.com\t", "anna@example.com", true},
	{"email non-ASCII case", FieldEmail, "JÖRG@Example.com", "jörg@example.com", true},
	{"email plus local part", FieldEmail, "anna+shop@example.com", "anna@example.com", false},
	{"email plus local part case", FieldEmail, "Anna+Shop@example.com", "anna+shop@example.com", true},
	{"email differs", FieldEmail, "anna@example.com", "anne@example.com", false},
	{"email prefix", FieldEmail, "anna@example.com", "anna@example.co", false},

	{"name case", FieldFirstName, "ANNA", "anna", true},
	{"name non-ASCII case", FieldLastName, "MÜLLER", "müller", true},
	{"name inner whitespace", FieldFirstName, "Anna  Maria", "Anna Maria", true},
	{"name tab and nbsp collapse", FieldFirstName, "Anna\t\u00a0Maria", "anna maria", true},
	{"name space vs none", FieldFirstName, "AnnaMaria", "Anna Maria", false},
	{"name NFC vs NFD", FieldFirstName, eAcuteNFC, eAcuteNFD, true},
	{"name NFD upper vs NFC lower", FieldFirstName, "RENE\u0301", "ren\u00e9", true},
	{"name umlaut vs transliteration", FieldLastName, "Müller", "Mueller", false},
	{"name kelvin sign", FieldFirstName, "\u212aarl", "karl", true},
	{"name case of a letter without precomposed capital", FieldFirstName, "\u1e98", "W\u030a", true},
	{"name dotted capital I", FieldLastName, "\u0130", "i\u0307", true},
	{"name sharp s is not ss", FieldLastName, "Strauß", "Strauss", false},
	{"name final sigma", FieldLastName, "ΟΔΥΣΣΕΥΣ", "οδυσσευς", true},
	{"city case", FieldCity, "SÃO PAULO", "são paulo", true},

	{"text case-sensitive", FieldAddressLine1, "Main St 1", "main st 1", false},
	{"text whitespace", FieldAddressLine1, " Main  St\t1 ", "Main St 1", true},
	{"text NFC vs NFD", FieldAddressLine1, "Caf\u00e9 Street", "Cafe\u0301 Street", true},

	{"phone formatting", FieldPhone, "+49 (30) 1234-5678", "+4930 12345678", true},
	{"phone plus matters", FieldPhone, "+4930123", "4930123", false},
	{"phone digits differ", FieldPhone, "+4930123", "+4930124", false},
	{"phone extra digit", FieldPhone, "+4930123", "+49301234", false},
	{"phone no digits vs digits", FieldPhone, "n/a", "0", false},
	{"phone no digits compare as text", FieldPhone, "N/A", "n/a", true},
	{"phone no digits differ", FieldPhone, "n/a", "none", false},
	{"phone plus after trim", FieldPhone, "  +1 555", "+1555", true},

	{"postal case and spaces", FieldPostalCode, "sw1a 1aa", "SW1A1AA", true},
	{"postal hyphen kept", FieldPostalCode, "SW1A-1AA", "SW1A1AA", false},
	{"postal digits", FieldPostalCode, "10 117", "10117", true},

	{"country case", FieldCountry, "de", "DE", true},
	{"country differs", FieldCountry, "DE", "AT", false},

	{"bool same", FieldMarketingOptIn, "true", "true", true},
	{"bool case", FieldMarketingOptIn, "TRUE", "true", true},
	{"bool 1 is true", FieldMarketingOptIn, "1", "true", true},
	{"bool differ", FieldMarketingOptIn, "true", "false", false},
	{"bool unreadable vs readable", FieldMarketingOptIn, "maybe", "false", false},
	{"bool absent vs false", FieldMarketingOptIn, "", "false", false},

	{"tier case", FieldLoyaltyTier, "GOLD", " gold ", true},
	{"tier differs", FieldLoyaltyTier, "gold", "silver", false},

	{"unknown field id is plain equality", FieldID(99), "a", "A", false},
}

func TestEquivalent(t *testing.T) {
	for _, tt := range equivalentCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := Equivalent(tt.id, tt.x, tt.y); got != tt.want {
				t.Errorf("Equivalent(%v, %q, %q) = %v, want %v", tt.id, tt.x, tt.y, got, tt.want)
			}
			if got := Equivalent(tt.id, tt.y, tt.x); got != tt.want {
				t.Errorf("Equivalent(%v, %q, %q) (swapped) = %v, want %v", tt.id, tt.y, tt.x, got, tt.want)
			}
			nx, ny := Normalize(tt.id, tt.x), Normalize(tt.id, tt.y)
			if (nx == ny) != tt.want {
				t.Errorf("Normalize: %q vs %q, equal = %v, want %v", nx, ny, nx == ny, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		id   FieldID
		in   string
		want string
	}{
		{"absent", FieldFirstName, " \t", ""},
		{"email", FieldEmail, " JÖRG@Example.com ", "jörg@example.com"},
		{"name", FieldFirstName, " Anna \t MARIA ", "anna maria"},
		{"name NFD", FieldFirstName, "RENE\u0301", "rene\u0301"},
		{"name NFC is decomposed", FieldFirstName, "Ren\u00e9", "rene\u0301"},
		{"text", FieldAddressLine1, "Main\u00a0 St", "Main St"},
		{"phone", FieldPhone, "+49 (30) 12-34", "+49301234"},
		{"phone national", FieldPhone, "030 1234", "0301234"},
		{"phone text", FieldPhone, " N/A ", "n/a"},
		{"postal", FieldPostalCode, "sw1a 1aa", "SW1A1AA"},
		{"country", FieldCountry, " de ", "DE"},
		{"bool true", FieldMarketingOptIn, "True", "true"},
		{"bool 0", FieldMarketingOptIn, "0", "false"},
		{"bool unreadable", FieldMarketingOptIn, "Maybe", "maybe"},
		{"tier", FieldLoyaltyTier, " Gold ", "gold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Normalize(tt.id, tt.in); got != tt.want {
				t.Errorf("Normalize(%v, %q) = %q, want %q", tt.id, tt.in, got, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"anna@example.com", "anna@example.com"},
		{"  Anna@Example.COM\n", "anna@example.com"},
		{"JÖRG@Example.com", "jörg@example.com"},
		{"jörg@example.com", "jörg@example.com"},
		{"Anna+Shop@Example.com", "anna+shop@example.com"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Key(tt.in); got != tt.want {
				t.Errorf("Key(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestFoldRep checks, for every rune, that foldRep picks one member of the
// rune's case-folding orbit and the same one for every member: the property
// that makes Normalize of names agree with foldEqual.
func TestFoldRep(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		rep := foldRep(r)
		if !foldEqual(r, rep) {
			t.Fatalf("foldRep(%U) = %U, not in its orbit", r, rep)
		}
		if f := unicode.SimpleFold(r); foldRep(f) != rep {
			t.Fatalf("foldRep(%U) = %U but foldRep(%U) = %U", r, rep, f, foldRep(f))
		}
	}
}

func TestEquivalentDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		id   FieldID
		x, y string
	}{
		{"email ASCII", FieldEmail, "Anna@Example.com", "anna@example.com"},
		{"email non-ASCII", FieldEmail, "JÖRG@Example.com", "jörg@example.com"},
		{"name NFC", FieldLastName, "MÜLLER  ", "müller"},
		{"text", FieldAddressLine1, "Unter  den Linden 5", "Unter den Linden 5"},
		{"phone", FieldPhone, "+49 (30) 1234-5678", "+4930 12345678"},
		{"postal", FieldPostalCode, "sw1a 1aa", "SW1A1AA"},
		{"country", FieldCountry, "de", "DE"},
		{"bool", FieldMarketingOptIn, "TRUE", "true"},
		{"tier", FieldLoyaltyTier, "Gold", "gold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !Equivalent(tt.id, tt.x, tt.y) {
				t.Fatalf("Equivalent(%v, %q, %q) = false", tt.id, tt.x, tt.y)
			}
			if n := testing.AllocsPerRun(100, func() { Equivalent(tt.id, tt.x, tt.y) }); n != 0 {
				t.Errorf("Equivalent allocates %v times per run, want 0", n)
			}
		})
	}
}

func FuzzEquivalent(f *testing.F) {
	for _, c := range equivalentCases {
		f.Add(uint8(c.id), c.x, c.y)
	}
	for _, extra := range []string{"\u212a", "ſ", "ß", "ẞ", "İ", "ı", "Σ", "ς", "\u00a0", "\u0085", "\u3000", "e\u0301\u0316", "\xff", "\u1e9e"} {
		f.Add(uint8(FieldFirstName), extra, strings.ToUpper(extra))
		f.Add(uint8(FieldAddressLine1), "a"+extra+"b", "a "+extra+" b")
	}
	f.Fuzz(func(t *testing.T, n uint8, x, y string) {
		id := FieldID(int(n) % (NumFields + 1)) // one unknown id too
		eq := Equivalent(id, x, y)
		if eq != Equivalent(id, y, x) {
			t.Fatalf("%v: Equivalent(%q, %q) is not symmetric", id, x, y)
		}
		if nx, ny := Normalize(id, x), Normalize(id, y); eq != (nx == ny) {
			t.Fatalf("%v: Equivalent(%q, %q) = %v but Normalize gives %q and %q", id, x, y, eq, nx, ny)
		}
		if !Equivalent(id, x, "\t"+x+" ") {
			t.Fatalf("%v: %q is not equivalent to itself padded", id, x)
		}
		if k := kindOf(id); k == KindName || k == KindText {
			if !Equivalent(id, x, strings.ReplaceAll(x, " ", " \u00a0\t")) {
				t.Fatalf("%v: %q is not equivalent with its whitespace runs widened", id, x)
			}
			if !Equivalent(id, x, norm.NFD.String(x)) {
				t.Fatalf("%v: %q is not equivalent to its NFD form", id, x)
			}
		}
		if k := kindOf(id); k == KindName || k == KindEmail || k == KindTier {
			if swapped := swapASCIICase(x); !Equivalent(id, x, swapped) {
				t.Fatalf("%v: %q is not equivalent to %q", id, x, swapped)
			}
		}
	})
}

// swapASCIICase swaps the case of ASCII letters.
func swapASCIICase(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c|0x20 && c|0x20 <= 'z' {
			b[i] = c ^ 0x20
		}
	}
	return string(b)
}

// TestCanonicalEquivalents checks every assigned rune: its NFC and NFD forms
// are equivalent as names and as text, and its upper- and lower-case forms
// (as strings.ToUpper and strings.ToLower give them) are equivalent as names
// whenever the two fold to each other rune by rune after decomposition.
func TestCanonicalEquivalents(t *testing.T) {
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if !unicode.In(r, unicode.L, unicode.M, unicode.N) {
			continue
		}
		s := string(r)
		c, d := norm.NFC.String(s), norm.NFD.String(s)
		if !Equivalent(FieldFirstName, c, d) || !Equivalent(FieldAddressLine1, c, d) {
			t.Fatalf("%U: NFC %q and NFD %q are not equivalent", r, c, d)
		}
		up, low := norm.NFD.String(strings.ToUpper(s)), norm.NFD.String(strings.ToLower(s))
		if Equivalent(FieldFirstName, strings.ToUpper(s), strings.ToLower(s)) != runesFoldEqual(up, low) {
			t.Fatalf("%U: upper %q vs lower %q: Equivalent disagrees with rune-wise folding", r, up, low)
		}
	}
}

// runesFoldEqual reports whether x and y have the same length in runes and
// fold to each other rune by rune.
func runesFoldEqual(x, y string) bool {
	rx, ry := []rune(x), []rune(y)
	if len(rx) != len(ry) {
		return false
	}
	for i := range rx {
		if !foldEqual(rx[i], ry[i]) {
			return false
		}
	}
	return true
}
