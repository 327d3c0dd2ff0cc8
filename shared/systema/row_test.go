package systema

import (
	"context"
	"errors"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/acme/unified-customer-service/shared/merge"
)

func TestCaseVariants(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"alice@example.com", []string{"alice@example.com"}},
		{"jörg@beispiel.de", []string{"jörg@beispiel.de", "jÖrg@beispiel.de"}},
		{"ωmega@example.gr", []string{"ωmega@example.gr", "\u2126mega@example.gr", "\u03a9mega@example.gr"}}, // OHM SIGN too
		{"σ@x", []string{"σ@x", "Σ@x"}},                                                                      // ς lower-cases to itself, not to σ
		{"ß@x", []string{"ß@x", "ẞ@x"}},
		{"山田@example.jp", []string{"山田@example.jp"}},
		{"éa@ö", []string{"éa@ö", "éa@Ö", "Éa@ö", "Éa@Ö"}},
		{"äöüéè@x.de", nil}, // 32 > 16: Lookup scans the prefix range instead
	} {
		t.Run(tc.key, func(t *testing.T) {
			got := caseVariants(tc.key, maxProbes)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("caseVariants(%q) = %q, want %q", tc.key, got, tc.want)
			}
			for _, v := range got {
				if merge.Key(v) != tc.key {
					t.Errorf("variant %q has key %q", v, merge.Key(v))
				}
			}
		})
	}
}

func TestLookupManyNonASCIILetters(t *testing.T) {
	ts := snapExportedAt
	recs := []*merge.Record{
		mkRec("ÄÖÜÉÈ@x.de", ts, "upper"),
		mkRec("äöüéè@x.dee", ts, "other"),
		mkRec("äöüÉè@y.de", ts, "third"),
	}
	snap := openSnap(t, writeSnap(t, t.TempDir(), recs, snapOpts{}))
	for q, want := range map[string]string{"äöüéè@x.de": "upper", "ÄÖÜÉÈ@X.DE": "upper", "ÄÖÜÉÈ@Y.DE": "third"} {
		r, err := snap.Lookup(context.Background(), q)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", q, err)
		}
		if got := r.Get(merge.FieldFirstName); got != want {
			t.Fatalf("Lookup(%q) = the %q row, want %q", q, got, want)
		}
	}
	if _, err := snap.Lookup(context.Background(), "äöüéè@z.de"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeRow(t *testing.T) {
	for _, tc := range []struct {
		name, row, reason string
	}{
		{"ok", `["a@b","A",null,null,null,null,null,null,"1",null,"2025-01-01T00:00:00Z"]`, ""},
		{"escapes", `["a@b","A\"q\\\n\u0001",null,null,null,null,null,null,"0",null,"2025-01-01T00:00:00Z"]`, ""},
		{"bool 2", `["a@b","A",null,null,null,null,null,null,"2",null,"2025-01-01T00:00:00Z"]`, "marketing_opt_in is neither 1, 0 nor NULL"},
		{"no email", `[null,"A",null,null,null,null,null,null,null,null,"2025-01-01T00:00:00Z"]`, "email is NULL or blank: the row has no key"},
		{"blank email", `[" \t","A",null,null,null,null,null,null,null,null,"2025-01-01T00:00:00Z"]`, "email is NULL or blank: the row has no key"},
		{"null last_updated", `["a@b","A",null,null,null,null,null,null,null,null,null]`, "last_updated is NULL"},
		{"bad last_updated", `["a@b","A",null,null,null,null,null,null,null,null,"2025-01-01"]`, "last_updated is not RFC 3339"},
		{"short", `["a@b"]`, "row does not parse"},
		{"long", `["a@b","A",null,null,null,null,null,null,null,null,"2025-01-01T00:00:00Z",null]`, "row does not parse"},
		{"unterminated", `["a@b`, "email: row does not parse"},
		{"not an array", `{}`, "row does not parse"},
		{"number", `["a@b",1,null,null,null,null,null,null,null,null,"2025-01-01T00:00:00Z"]`, "first_name: row does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r merge.Record
			if got := decodeRow(tc.row, &r); got != tc.reason {
				t.Fatalf("reason = %q, want %q", got, tc.reason)
			}
		})
	}
}

// FuzzRowRoundTrip checks that jsonValue reads back any text SQLite's
// json_array writes.
func FuzzRowRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a@b", `q"uote\back`, "tab\tnl\ncr\r", "\x00nul", "\x01\x1f\x7f", "Émile 山田 😀", "\xff\xfe", "null", `\u0041`} {
		f.Add(s)
	}
	drv, err := sqliteDriver()
	if err != nil {
		f.Fatal(err)
	}
	db := sqlOpenMemory(drv)
	defer db.Close()
	f.Fuzz(func(t *testing.T, in string) {
		var row string
		if err := db.QueryRow("SELECT json_array(CAST(? AS TEXT))", in).Scan(&row); err != nil {
			t.Skip("SQLite rejects it:", err)
		}
		v, null, rest, err := jsonValue(row[1:])
		if err != nil || null || rest != "]" {
			t.Fatalf("jsonValue(%q) = %q, %v, %q, %v", row, v, null, rest, err)
		}
		if v != in && utf8.ValidString(in) {
			t.Fatalf("round trip of %q gave %q (row %q)", in, v, row)
		}
	})
}
