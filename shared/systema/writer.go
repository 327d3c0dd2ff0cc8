package systema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"os"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrBadRecord is returned (wrapped) by WriteSnapshot for a record that cannot
// be stored in a schema v1 snapshot (no email, no lastUpdated, a boolean field
// that is not "true", "false" or ""). Its kind is merge.ErrInvalid: the
// caller's input is wrong.
var ErrBadRecord = newError("systema: record does not fit the snapshot schema", merge.ErrInvalid)

// WriteSnapshotOptions changes how WriteSnapshotWithOptions lays out a snapshot.
// The zero value writes exactly what System A's batch writes.
type WriteSnapshotOptions struct {
	// Rowid writes the legacy layout: the same columns in a customers table
	// with a rowid (no WITHOUT ROWID), which readers must also accept.
	Rowid bool
}

// WriteSnapshot writes a schema v1 snapshot of records to path, as System A's
// nightly batch does: the customers table of Schema, snapshot_meta rows
// schema_version and exported_at, in rollback-journal mode (vacuumed, so a
// read-only VFS can read it). Records may come in any order; in join-key
// order is fastest. The file is built beside path (path+".tmp") and renamed
// into place, so path never holds a half-written snapshot.
func WriteSnapshot(ctx context.Context, path string, exportedAt time.Time, records iter.Seq[*merge.Record]) error {
	return WriteSnapshotWithOptions(ctx, path, exportedAt, records, WriteSnapshotOptions{})
}

// WriteSnapshotWithOptions is WriteSnapshot with layout options.
func WriteSnapshotWithOptions(ctx context.Context, path string, exportedAt time.Time, records iter.Seq[*merge.Record], opts WriteSnapshotOptions) error {
	if path == "" || strings.ContainsRune(path, '?') {
		return fmt.Errorf("systema: write snapshot: invalid path %q", path)
	}
	if exportedAt.IsZero() {
		return fmt.Errorf("systema: write snapshot: exported_at is zero")
	}
	tmp := path + ".tmp"
	removeTemp(tmp)
	if err := writeFile(ctx, tmp, exportedAt, records, opts); err != nil {
		removeTemp(tmp)
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// database/sql closes the statements of a cancelled
			// transaction asynchronously: the symptom may come first.
			return fmt.Errorf("systema: write snapshot: %w (%v)", cerr, err)
		}
		return fmt.Errorf("systema: write snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		removeTemp(tmp)
		return fmt.Errorf("systema: write snapshot: %w", err)
	}
	return nil
}

// removeTemp removes a temporary snapshot and its rollback journal, if any.
func removeTemp(tmp string) {
	_ = os.Remove(tmp)
	_ = os.Remove(tmp + "-journal")
}

// schemaDDL returns the DDL for the chosen layout.
func schemaDDL(opts WriteSnapshotOptions) (string, error) {
	if !opts.Rowid {
		return Schema, nil
	}
	ddl := strings.Replace(Schema, ") WITHOUT ROWID;", ");", 1)
	if ddl == Schema {
		return "", errors.New("schema has no WITHOUT ROWID clause to drop")
	}
	return ddl, nil
}

// insertBatch is how many rows one INSERT statement carries: fewer, larger
// statements cut the per-statement overhead of database/sql and the driver
// (64 rows x 11 columns stays far below SQLite's 32766 parameters).
const insertBatch = 64

// numColumns is the customers table's column count: one per field, then
// last_updated.
const numColumns = merge.NumFields + 1

// insertSQL builds an INSERT of rows rows from the declarative field table.
func insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO customers (")
	for _, f := range merge.Fields {
		b.WriteString(f.Column)
		b.WriteString(", ")
	}
	b.WriteString("last_updated) VALUES ")
	row := "(" + strings.Repeat("?, ", numColumns-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

func writeFile(ctx context.Context, file string, exportedAt time.Time, records iter.Seq[*merge.Record], opts WriteSnapshotOptions) (err error) {
	ddl, err := schemaDDL(opts)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", file)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	conn, err := db.Conn(ctx) // one connection: pragmas are per connection
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()

	for _, p := range []string{
		"PRAGMA journal_mode=OFF",
		"PRAGMA synchronous=OFF",
		"PRAGMA locking_mode=EXCLUSIVE",
		"PRAGMA cache_size=-16384", // 16 MiB: key-ordered inserts touch few pages
	} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := insertAll(ctx, conn, ddl, exportedAt, records); err != nil {
		return err
	}
	for _, p := range []string{"PRAGMA journal_mode=DELETE", "VACUUM"} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func insertAll(ctx context.Context, conn *sql.Conn, ddl string, exportedAt time.Time, records iter.Seq[*merge.Record]) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO snapshot_meta (key, value) VALUES ('schema_version', ?), ('exported_at', ?)",
		SchemaVersion, exportedAt.UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("write snapshot_meta: %w", err)
	}
	batch, err := tx.PrepareContext(ctx, insertSQL(insertBatch))
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	defer batch.Close()
	single, err := tx.PrepareContext(ctx, insertSQL(1))
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	defer single.Close()

	args := make([]any, 0, numColumns*insertBatch)
	n := 0 // records bound so far
	for r := range records {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("record %d: %w", n, err)
			}
		}
		if args, err = appendRecord(args, r); err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
		n++
		if len(args) == cap(args) {
			if _, err := batch.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("insert records %d-%d: %w", n-insertBatch, n-1, err)
			}
			args = args[:0]
		}
	}
	for first := n - len(args)/numColumns; len(args) > 0; first++ {
		if _, err := single.ExecContext(ctx, args[:numColumns]...); err != nil {
			return fmt.Errorf("insert record %d: %w", first, err)
		}
		args = args[numColumns:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// appendRecord appends r's column values (one per field, then last_updated)
// to args. Absent values become NULL; boolean fields become 1 or 0. Errors
// never echo values (they are PII).
func appendRecord(args []any, r *merge.Record) ([]any, error) {
	if r == nil {
		return args, fmt.Errorf("%w: nil record", ErrBadRecord)
	}
	if strings.TrimSpace(r.Values[merge.FieldEmail]) == "" {
		return args, fmt.Errorf("%w: email is empty", ErrBadRecord)
	}
	if r.LastUpdated.IsZero() {
		return args, fmt.Errorf("%w: lastUpdated is zero", ErrBadRecord)
	}
	for i, f := range merge.Fields {
		v := r.Values[i]
		switch {
		case v == "":
			args = append(args, nil)
		case f.Kind == merge.KindBool:
			switch v {
			case "true":
				args = append(args, int64(1))
			case "false":
				args = append(args, int64(0))
			default:
				return args, fmt.Errorf("%w: %s is neither true nor false", ErrBadRecord, f.Path)
			}
		default:
			args = append(args, v)
		}
	}
	return append(args, r.LastUpdated.UTC().Format(time.RFC3339)), nil
}
