package systema

import (
	"context"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

func openSnap(t testing.TB, path string) *Snapshot {
	t.Helper()
	snap, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(snap.Release)
	return snap
}

// sortedKeys returns sort.Strings of merge.Key over recs.
func sortedKeys(recs []*merge.Record) []string {
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = merge.Key(r.Email())
	}
	sort.Strings(keys)
	return keys
}

func TestLookup(t *testing.T) {
	for _, layout := range []struct {
		name  string
		rowid bool
	}{{"without rowid", false}, {"rowid table", true}} {
		t.Run(layout.name, func(t *testing.T) {
			recs := sampleRecords()
			snap := openSnap(t, writeSnap(t, t.TempDir(), recs, snapOpts{rowid: layout.rowid}))
			for _, tc := range []struct {
				name, query, want string
			}{
				{"ascii exact", "alice@example.com", "alice@example.com"},
				{"ascii upper query", "ALICE@EXAMPLE.COM", "alice@example.com"},
				{"mixed case stored", "bob.builder@example.com", "Bob.Builder@Example.COM"},
				{"plus address", "Anna+News@example.com", "anna+news@example.com"},
				{"non-ascii upper stored, lower query", "émile@exemple.fr", "Émile@exemple.fr"},
				{"non-ascii upper stored, upper query", "ÉMILE@EXEMPLE.FR", "Émile@exemple.fr"},
				{"non-ascii first letter", "åsa@exempel.se", "ÅSA@exempel.se"},
				{"non-ascii lower stored, upper query", "ZOË@EXAMPLE.NL", "zoë@example.nl"},
				{"greek", "ωMEGA@example.gr", "Ωmega@example.gr"},
				{"surrounding space in query", "  zed@example.com ", "zed@example.com"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got, err := snap.Lookup(context.Background(), tc.query)
					if err != nil {
						t.Fatalf("Lookup: %v", err)
					}
					if got.Email() != tc.want {
						t.Fatalf("email = %q, want %q", got.Email(), tc.want)
					}
					want := recs[slices.IndexFunc(recs, func(r *merge.Record) bool { return r.Email() == tc.want })]
					if *got != *want {
						t.Fatalf("record = %+v, want %+v", *got, *want)
					}
				})
			}
			for _, q := range []string{"nobody@example.com", "alice@example.co", "ålice@example.com", "émile@exemple.frx", "", "a"} {
				t.Run("not found "+q, func(t *testing.T) {
					_, err := snap.Lookup(context.Background(), q)
					if !errors.Is(err, ErrNotFound) {
						t.Fatalf("Lookup(%q) error = %v, want ErrNotFound", q, err)
					}
				})
			}
		})
	}
}

func TestLookupValues(t *testing.T) {
	snap := openSnap(t, writeSnap(t, t.TempDir(), sampleRecords(), snapOpts{
		sql: []string{"UPDATE customers SET marketing_opt_in = NULL, first_name = NULL WHERE email = 'zed@example.com'"},
	}))
	for _, tc := range []struct {
		email              string
		optIn, first, tier string
		lastUpdated        time.Time
	}{
		{"alice@example.com", "true", "Alice", "gold", time.Date(2025, 2, 1, 10, 0, 0, 0, time.UTC)},
		{"bob.builder@example.com", "false", "Bob", "", time.Date(2025, 2, 1, 11, 0, 0, 0, time.UTC)},
		{"zed@example.com", "", "", "bronze", time.Date(2025, 2, 1, 10, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.email, func(t *testing.T) {
			r, err := snap.Lookup(context.Background(), tc.email)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Get(merge.FieldMarketingOptIn); got != tc.optIn {
				t.Errorf("marketingOptIn = %q, want %q", got, tc.optIn)
			}
			if got := r.Get(merge.FieldFirstName); got != tc.first {
				t.Errorf("firstName = %q, want %q", got, tc.first)
			}
			if got := r.Get(merge.FieldLoyaltyTier); got != tc.tier {
				t.Errorf("loyaltyTier = %q, want %q", got, tc.tier)
			}
			if !r.LastUpdated.Equal(tc.lastUpdated) {
				t.Errorf("lastUpdated = %v, want %v", r.LastUpdated, tc.lastUpdated)
			}
		})
	}
	if got, want := snap.ExportedAt(), snapExportedAt; !got.Equal(want) {
		t.Errorf("ExportedAt = %v, want %v", got, want)
	}
}

func TestAllJoinOrder(t *testing.T) {
	t.Run("sample", func(t *testing.T) {
		recs := sampleRecords()
		snap := openSnap(t, writeSnap(t, t.TempDir(), recs, snapOpts{}))
		got := collect(t, snap)
		if gotKeys, want := sortedKeysInOrder(got), sortedKeys(recs); !slices.Equal(gotKeys, want) {
			t.Fatalf("keys in iteration order:\n got %q\nwant %q", gotKeys, want)
		}
		for _, r := range got {
			i := slices.IndexFunc(recs, func(x *merge.Record) bool { return x.Email() == r.Email() })
			if i < 0 || *recs[i] != *r {
				t.Fatalf("record %q differs from what was written", r.Email())
			}
		}
	})
	t.Run("generated mixed case", func(t *testing.T) {
		recs := genRecords(3000)
		for _, rowid := range []bool{false, true} {
			snap := openSnap(t, writeSnap(t, t.TempDir(), recs, snapOpts{rowid: rowid}))
			got := collect(t, snap)
			if gotKeys, want := sortedKeysInOrder(got), sortedKeys(recs); !slices.Equal(gotKeys, want) {
				t.Fatalf("rowid=%v: iteration is not in join order (%d vs %d keys)", rowid, len(gotKeys), len(want))
			}
		}
	})
	t.Run("surrounding whitespace", func(t *testing.T) {
		recs := append(sampleRecords(), mkRec(" lead@example.com\t", snapExportedAt), mkRec("lead@example.co", snapExportedAt))
		snap := openSnap(t, writeSnap(t, t.TempDir(), recs, snapOpts{}))
		if got, want := sortedKeysInOrder(collect(t, snap)), sortedKeys(recs); !slices.Equal(got, want) {
			t.Fatalf("keys:\n got %q\nwant %q", got, want)
		}
	})
}

// sortedKeysInOrder returns merge.Key of each record, in the given order.
func sortedKeysInOrder(recs []*merge.Record) []string {
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = merge.Key(r.Email())
	}
	return keys
}

func TestDuplicateKeys(t *testing.T) {
	// NOCASE folds ASCII only, so these rows share join keys yet fit the
	// primary key: "jörg" with "JÖRG", and three spellings of "özül".
	ts := snapExportedAt
	recs := []*merge.Record{
		mkRec("JÖRG@beispiel.de", ts, "upper"),
		mkRec("jörg@beispiel.de", ts, "lower"),
		mkRec("ÖZüL@beispiel.de", ts, "odd2"),
		mkRec("ÖZÜL@beispiel.de", ts, "odd1"),
		mkRec("özüL@beispiel.de", ts, "regular"),
		mkRec("a@beispiel.de", ts, "a"),
	}
	snap := openSnap(t, writeSnap(t, t.TempDir(), recs, snapOpts{}))
	want := []string{"a@beispiel.de", "jörg@beispiel.de", "JÖRG@beispiel.de", "özüL@beispiel.de", "ÖZÜL@beispiel.de", "ÖZüL@beispiel.de"}
	if got := emails(collect(t, snap)); !slices.Equal(got, want) {
		t.Fatalf("All order:\n got %q\nwant %q", got, want)
	}
	for q, first := range map[string]string{"JÖRG@beispiel.de": "lower", "özül@beispiel.de": "regular"} {
		r, err := snap.Lookup(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Get(merge.FieldFirstName); got != first {
			t.Errorf("Lookup(%q) returned the %q row, want the %q row (All's first)", q, got, first)
		}
	}
}

func TestBadRows(t *testing.T) {
	recs := sampleRecords()
	snap := openSnap(t, writeSnap(t, t.TempDir(), recs, snapOpts{sql: []string{
		"UPDATE customers SET last_updated = 'yesterday' WHERE email = 'alice@example.com'",
		"UPDATE customers SET marketing_opt_in = 7 WHERE email = 'zed@example.com'",
	}}))
	for _, q := range []string{"alice@example.com", "zed@example.com"} {
		_, err := snap.Lookup(context.Background(), q)
		if !errors.Is(err, ErrBadData) {
			t.Errorf("Lookup(%q) error = %v, want ErrBadData", q, err)
		}
		if err != nil && containsAt(err.Error()) {
			t.Errorf("error echoes an email: %v", err)
		}
	}
	if _, err := snap.Lookup(context.Background(), "anna+news@example.com"); err != nil {
		t.Errorf("a good row next to bad ones: %v", err)
	}
	var good, bad int
	for r, err := range snap.All(context.Background()) {
		switch {
		case errors.Is(err, ErrBadData):
			bad++
		case err != nil:
			t.Fatalf("iterate: %v", err)
		case r != nil:
			good++
		}
	}
	if good != len(recs)-2 || bad != 2 {
		t.Fatalf("iterated %d good and %d bad rows, want %d and 2", good, bad, len(recs)-2)
	}
}

func containsAt(s string) bool { return slices.Contains([]byte(s), '@') }

func TestAllStopsEarlyAndOnCancel(t *testing.T) {
	snap := openSnap(t, writeSnap(t, t.TempDir(), genRecords(500), snapOpts{}))
	n := 0
	for range snap.All(context.Background()) {
		n++
		if n == 10 {
			break
		}
	}
	if n != 10 {
		t.Fatalf("n = %d", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	n = 0
	for _, e := range snap.All(ctx) {
		if e != nil {
			err = e
			break
		}
		n++
		if n == 5 {
			cancel()
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: err = %v (after %d rows), want context.Canceled", err, n)
	}
}

func TestReleasedSnapshot(t *testing.T) {
	snap, err := Open(context.Background(), writeSnap(t, t.TempDir(), sampleRecords(), snapOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	snap.Release()
	snap.Release() // harmless
	if _, err := snap.Lookup(context.Background(), "alice@example.com"); !errors.Is(err, ErrReleased) {
		t.Fatalf("Lookup after Release: %v, want ErrReleased", err)
	}
	for _, err := range snap.All(context.Background()) {
		if !errors.Is(err, ErrReleased) {
			t.Fatalf("All after Release: %v, want ErrReleased", err)
		}
	}
}

// FuzzOddKeyGlob checks that the GLOB prefilter of selectOdd keeps every
// row oddKey calls odd (it must be a superset, or All would lose rows).
func FuzzOddKeyGlob(f *testing.F) {
	for _, s := range []string{"a@b", "Émile@x", " x@y", "x@y\t", "K@x", "\u212Aelvin@x", "İstanbul@x", "ß@x", "\u00a0a@b", "a\x00b", "\xff"} {
		f.Add(s)
	}
	drv, err := sqliteDriver()
	if err != nil {
		f.Fatal(err)
	}
	db := sqlOpenMemory(drv)
	defer db.Close()
	f.Fuzz(func(t *testing.T, email string) {
		_, odd := oddKey(email)
		if !odd {
			return
		}
		var match bool
		if err := db.QueryRow("SELECT "+oddPrefilter+" FROM (SELECT ? AS email)", email).Scan(&match); err != nil {
			t.Fatal(err)
		}
		if !match {
			t.Fatalf("odd email %q escapes the GLOB prefilter", email)
		}
	})
}
