package systema

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
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
	for _, layout := range layouts {
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

// badRowsSQL breaks four rows of sampleRecords, one of them an odd row
// (non-ASCII upper case) and one whose email becomes blank.
var badRowsSQL = []string{
	"UPDATE customers SET last_updated = 'yesterday' WHERE email = 'alice@example.com'",
	"UPDATE customers SET marketing_opt_in = 7 WHERE email = 'zed@example.com'",
	"UPDATE customers SET last_updated = 'soon' WHERE email = 'Émile@exemple.fr'",
	"UPDATE customers SET email = '   ' WHERE email = 'anna+news@example.com'",
}

// badRowsWant are the rows badRowsSQL breaks, by their email before, with
// the reason each must give.
var badRowsWant = map[string]string{
	"alice@example.com":     "last_updated is not RFC 3339",
	"zed@example.com":       "marketing_opt_in is neither 1, 0 nor NULL",
	"Émile@exemple.fr":      "last_updated is not RFC 3339",
	"anna+news@example.com": "email is NULL or blank: the row has no key",
}

// emailOrder returns the emails of the snapshot at path in email order
// (ORDER BY email COLLATE NOCASE), read with SQLite itself.
func emailOrder(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT email FROM customers ORDER BY email COLLATE NOCASE")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBadRowsAreDataAndTheScanGoesOn(t *testing.T) {
	for _, layout := range layouts {
		t.Run(layout.name, func(t *testing.T) {
			recs := sampleRecords()
			path := writeSnap(t, t.TempDir(), recs, snapOpts{rowid: layout.rowid, sql: badRowsSQL})
			// The bad rows' positions, from SQLite's own email order.
			wantBad := map[string]string{} // position -> reason
			wantPos := map[string]string{} // email -> position
			for i, e := range emailOrder(t, path) {
				if e == "   " {
					e = "anna+news@example.com"
				}
				if reason, ok := badRowsWant[e]; ok {
					wantBad["row "+strconv.Itoa(i+1)] = reason
					wantPos[e] = "row " + strconv.Itoa(i+1)
				}
			}
			var good []*merge.Record
			for _, r := range recs {
				if _, bad := badRowsWant[r.Email()]; !bad {
					good = append(good, r)
				}
			}
			snap := openSnap(t, path)

			var gotGood []*merge.Record
			gotBad := map[string]string{}
			for r, err := range snap.All(context.Background()) {
				var bre *merge.BadRecordError
				switch {
				case errors.As(err, &bre):
					if r != nil {
						t.Errorf("a bad row yielded a record too")
					}
					if !errors.Is(err, ErrBadData) || merge.ErrorKindOf(err) != merge.ErrBadData {
						t.Errorf("%v: not ErrBadData of kind bad data", err)
					}
					if bre.Source != merge.SystemA || containsAt(err.Error()) {
						t.Errorf("bad record %+v: wrong source or quotes an email", bre)
					}
					if _, dup := gotBad[bre.Position]; dup {
						t.Errorf("position %q yielded twice", bre.Position)
					}
					gotBad[bre.Position] = bre.Reason
				case err != nil:
					t.Fatalf("the scan ended: %v", err)
				default:
					gotGood = append(gotGood, r)
				}
			}
			if !maps.Equal(gotBad, wantBad) {
				t.Errorf("bad records (position: reason)\n got %v\nwant %v", gotBad, wantBad)
			}
			if got, want := keysOf(gotGood), sortedKeys(good); !slices.Equal(got, want) {
				t.Errorf("good records out of join order or missing:\n got %q\nwant %q", got, want)
			}

			for email, reason := range badRowsWant {
				if email == "anna+news@example.com" {
					continue // blank now: nobody's
				}
				_, err := snap.Lookup(context.Background(), email)
				var bre *merge.BadRecordError
				if !errors.As(err, &bre) || merge.ErrorKindOf(err) != merge.ErrBadData || !errors.Is(err, ErrBadData) {
					t.Errorf("Lookup(%q) error = %v, want a bad record of kind bad data", email, err)
					continue
				}
				if bre.Position != wantPos[email] || bre.Reason != reason || containsAt(err.Error()) {
					t.Errorf("Lookup(%q): bad record %+v, want position %q and reason %q", email, bre, wantPos[email], reason)
				}
			}
			for _, r := range good {
				if _, err := snap.Lookup(context.Background(), r.Email()); err != nil {
					t.Errorf("Lookup(%q), a good row among bad ones: %v", r.Email(), err)
				}
			}
		})
	}
}

// keysOf returns the join keys of recs in their order.
func keysOf(recs []*merge.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Key()
	}
	return out
}

// TestCorruptPageEndsTheScan: a page SQLite cannot read is a failed query,
// not a bad row: the scan yields the error once and ends.
func TestCorruptPageEndsTheScan(t *testing.T) {
	path := writeSnap(t, t.TempDir(), genRecords(3000), snapOpts{})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.BigEndian.Uint16(b[16:18]))
	pages := len(b) / pageSize
	// Garbage over the middle third of the pages (leaves and interior
	// pages of the table): the header and schema pages stay good.
	for i := pages / 3 * pageSize; i < 2*pages/3*pageSize; i++ {
		b[i] = 0xA5
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	snap := openSnap(t, path)
	var fatal error
	n := 0
	for _, err := range snap.All(context.Background()) {
		if fatal != nil {
			t.Fatalf("the scan went on after %v", fatal)
		}
		var bre *merge.BadRecordError
		if err != nil && !errors.As(err, &bre) {
			fatal = err
		}
		n++
	}
	if fatal == nil {
		t.Fatalf("a scan over corrupt pages ended without an error (%d yields)", n)
	}
	if !errors.Is(fatal, ErrUnavailable) || merge.ErrorKindOf(fatal) != merge.ErrUnavailable {
		t.Errorf("error %v: want ErrUnavailable", fatal)
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
