package systema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

var testExportedAt = time.Date(2025, 6, 1, 2, 0, 0, 0, time.UTC)

func testRecords() []*merge.Record {
	full := &merge.Record{LastUpdated: time.Date(2025, 5, 30, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))}
	full.Values = [merge.NumFields]string{
		merge.FieldEmail:          "Ada.Lovelace@example.com",
		merge.FieldFirstName:      "Ada",
		merge.FieldLastName:       "Lovelace",
		merge.FieldPhone:          "+44 20 7946 0000",
		merge.FieldAddressLine1:   "12 St James's Square",
		merge.FieldCity:           "London",
		merge.FieldPostalCode:     "SW1Y 4JH",
		merge.FieldCountry:        "GB",
		merge.FieldMarketingOptIn: "true",
		merge.FieldLoyaltyTier:    "gold",
	}
	optOut := &merge.Record{LastUpdated: time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)}
	optOut.Values[merge.FieldEmail] = "jörg.müller@example.com"
	optOut.Values[merge.FieldMarketingOptIn] = "false"
	sparse := &merge.Record{LastUpdated: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	sparse.Values[merge.FieldEmail] = "zoe+news@example.org"
	// Not in key order on purpose: the writer must accept any order.
	return []*merge.Record{sparse, full, optOut}
}

// readBack reads every customer of the snapshot at path, in email order, with
// NULLs as "<nil>" so tests can tell NULL from "".
func readBack(t *testing.T, path string) (rows [][]string, meta map[string]string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cols := make([]string, 0, merge.NumFields+1)
	for _, f := range merge.Fields {
		cols = append(cols, f.Column)
	}
	cols = append(cols, "last_updated")
	q := fmt.Sprintf("SELECT %s FROM customers ORDER BY email", strings.Join(cols, ", "))
	rs, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = "<nil>"
			if v.Valid {
				row[i] = v.String
			}
		}
		rows = append(rows, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	meta = map[string]string{}
	ms, err := db.Query("SELECT key, value FROM snapshot_meta")
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	for ms.Next() {
		var k, v string
		if err := ms.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		meta[k] = v
	}
	return rows, meta
}

func tableSQL(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	if err := db.QueryRow("SELECT sql FROM sqlite_schema WHERE name = 'customers'").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWriteSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  WriteSnapshotOptions
		rowid bool
	}{
		{name: "without rowid", opts: WriteSnapshotOptions{}},
		{name: "legacy rowid", opts: WriteSnapshotOptions{Rowid: true}, rowid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "snapshot.db")
			if err := WriteSnapshotWithOptions(context.Background(), path, testExportedAt, slices.Values(testRecords()), tc.opts); err != nil {
				t.Fatal(err)
			}

			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(raw), "SQLite format 3\x00") {
				t.Fatalf("not an SQLite file: header %q", raw[:16])
			}
			if raw[18] != 1 || raw[19] != 1 {
				t.Errorf("header bytes 18/19 = %d/%d, want 1/1 (rollback journal, not WAL)", raw[18], raw[19])
			}
			for _, leftover := range []string{path + ".tmp", path + ".tmp-journal", path + "-journal", path + "-wal"} {
				if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind (stat err %v)", filepath.Base(leftover), err)
				}
			}
			if got := strings.Contains(strings.ToUpper(tableSQL(t, path)), "WITHOUT ROWID"); got == tc.rowid {
				t.Errorf("customers WITHOUT ROWID = %v, want %v", got, !tc.rowid)
			}

			rows, meta := readBack(t, path)
			want := [][]string{
				{"Ada.Lovelace@example.com", "Ada", "Lovelace", "+44 20 7946 0000", "12 St James's Square", "London", "SW1Y 4JH", "GB", "1", "gold", "2025-05-30T10:00:00Z"},
				{"jörg.müller@example.com", "<nil>", "<nil>", "<nil>", "<nil>", "<nil>", "<nil>", "<nil>", "0", "<nil>", "2025-05-01T00:00:00Z"},
				{"zoe+news@example.org", "<nil>", "<nil>", "<nil>", "<nil>", "<nil>", "<nil>", "<nil>", "<nil>", "<nil>", "2024-01-02T03:04:05Z"},
			}
			if !slices.EqualFunc(rows, want, slices.Equal) {
				t.Errorf("rows:\n got %q\nwant %q", rows, want)
			}
			wantMeta := map[string]string{"schema_version": "1", "exported_at": "2025-06-01T02:00:00Z"}
			if fmt.Sprint(meta) != fmt.Sprint(wantMeta) {
				t.Errorf("snapshot_meta = %v, want %v", meta, wantMeta)
			}
		})
	}
}

func TestWriteSnapshotEmailIsCaseInsensitiveKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot.db")
	a := &merge.Record{LastUpdated: testExportedAt}
	a.Values[merge.FieldEmail] = "ADA@example.com"
	b := &merge.Record{LastUpdated: testExportedAt}
	b.Values[merge.FieldEmail] = "ada@EXAMPLE.com"
	err := WriteSnapshot(context.Background(), path, testExportedAt, slices.Values([]*merge.Record{a, b}))
	if err == nil {
		t.Fatal("two emails differing only by case were both stored, want a primary key error")
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("snapshot exists after a failed write (stat err %v)", statErr)
	}
}

func TestWriteSnapshotErrors(t *testing.T) {
	ok := func() *merge.Record {
		r := &merge.Record{LastUpdated: testExportedAt}
		r.Values[merge.FieldEmail] = "ada@example.com"
		return r
	}
	noEmail := ok()
	noEmail.Values[merge.FieldEmail] = "  "
	noTime := ok()
	noTime.LastUpdated = time.Time{}
	badBool := ok()
	badBool.Values[merge.FieldMarketingOptIn] = "yes"
	for _, tc := range []struct {
		name    string
		records []*merge.Record
		want    error
		wantMsg string
	}{
		{name: "nil record", records: []*merge.Record{ok(), nil}, want: ErrBadRecord, wantMsg: "record 1"},
		{name: "empty email", records: []*merge.Record{noEmail}, want: ErrBadRecord, wantMsg: "email is empty"},
		{name: "zero lastUpdated", records: []*merge.Record{noTime}, want: ErrBadRecord, wantMsg: "lastUpdated"},
		{name: "bad boolean", records: []*merge.Record{badBool}, want: ErrBadRecord, wantMsg: "marketingOptIn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "snapshot.db")
			// An older good snapshot must survive a failed write.
			if err := os.WriteFile(path, []byte("previous"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := WriteSnapshot(context.Background(), path, testExportedAt, slices.Values(tc.records))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.wantMsg)
			}
			if strings.Contains(err.Error(), "ada@") || strings.Contains(err.Error(), "yes") {
				t.Errorf("error echoes record values: %v", err)
			}
			if got, _ := os.ReadFile(path); string(got) != "previous" {
				t.Errorf("previous file replaced by a failed write")
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("dir holds %d entries after a failed write, want only the previous file", len(entries))
			}
		})
	}
}

func TestWriteSnapshotContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	path := filepath.Join(t.TempDir(), "snapshot.db")
	var records iter.Seq[*merge.Record] = func(yield func(*merge.Record) bool) {
		for i := 0; i < 5000; i++ {
			if i == 100 {
				cancel()
			}
			r := &merge.Record{LastUpdated: testExportedAt}
			r.Values[merge.FieldEmail] = fmt.Sprintf("c%06d@example.com", i)
			if !yield(r) {
				return
			}
		}
	}
	err := WriteSnapshot(ctx, path, testExportedAt, records)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("snapshot exists after a cancelled write")
	}
}

func TestWriteSnapshotBadArgs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name       string
		path       string
		exportedAt time.Time
	}{
		{name: "empty path", path: "", exportedAt: testExportedAt},
		{name: "question mark", path: filepath.Join(dir, "a?b.db"), exportedAt: testExportedAt},
		{name: "zero exportedAt", path: filepath.Join(dir, "x.db")},
		{name: "missing dir", path: filepath.Join(dir, "no", "such", "x.db"), exportedAt: testExportedAt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := WriteSnapshot(context.Background(), tc.path, tc.exportedAt, slices.Values(testRecords())); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestInsertSQLFollowsFieldTable(t *testing.T) {
	for _, rows := range []int{1, insertBatch} {
		q := insertSQL(rows)
		for _, f := range merge.Fields {
			if !strings.Contains(q, f.Column+",") {
				t.Errorf("insert lacks column %s: %s", f.Column, q)
			}
		}
		if got, want := strings.Count(q, "?"), rows*(merge.NumFields+1); got != want {
			t.Errorf("%d rows: %d placeholders, want %d", rows, got, want)
		}
	}
}

func TestWriteSnapshotBatchBoundaries(t *testing.T) {
	for _, n := range []int{0, 1, insertBatch - 1, insertBatch, insertBatch + 1, 2*insertBatch + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "snapshot.db")
			var records []*merge.Record
			for i := range n {
				r := &merge.Record{LastUpdated: testExportedAt}
				r.Values[merge.FieldEmail] = fmt.Sprintf("c%04d@example.com", (i*37)%n) // not in key order
				r.Values[merge.FieldCity] = fmt.Sprint("city ", i)
				records = append(records, r)
			}
			if err := WriteSnapshot(context.Background(), path, testExportedAt, slices.Values(records)); err != nil {
				t.Fatal(err)
			}
			rows, _ := readBack(t, path)
			if len(rows) != n {
				t.Fatalf("%d rows, want %d", len(rows), n)
			}
			for i, row := range rows {
				if want := fmt.Sprintf("c%04d@example.com", i); row[0] != want {
					t.Fatalf("row %d email %s, want %s", i, row[0], want)
				}
			}
		})
	}
	t.Run("duplicate in the tail", func(t *testing.T) {
		var records []*merge.Record
		for i := range insertBatch + 2 {
			r := &merge.Record{LastUpdated: testExportedAt}
			r.Values[merge.FieldEmail] = fmt.Sprintf("c%04d@example.com", min(i, insertBatch))
			records = append(records, r)
		}
		err := WriteSnapshot(context.Background(), filepath.Join(t.TempDir(), "s.db"), testExportedAt, slices.Values(records))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("record %d", insertBatch+1)) {
			t.Fatalf("err = %v, want a constraint error naming record %d", err, insertBatch+1)
		}
	})
}

func BenchmarkWriteSnapshot(b *testing.B) {
	const n = 100_000
	records := make([]*merge.Record, n)
	for i := range records {
		r := testRecords()[1]
		r.Values[merge.FieldEmail] = fmt.Sprintf("c%07d@example.com", i)
		records[i] = r
	}
	dir := b.TempDir()
	b.ResetTimer()
	for range b.N {
		if err := WriteSnapshot(context.Background(), filepath.Join(dir, "s.db"), testExportedAt, slices.Values(records)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
