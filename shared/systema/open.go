package systema

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"modernc.org/sqlite"
)

// ErrInvalidSnapshot is returned (wrapped) for a file that is not a usable
// schema v1 snapshot: not SQLite, truncated, WAL mode, wrong schema_version,
// a missing column or key index. Its kind is merge.ErrBadData: the file
// breaks the contract (Acquire, which then has nothing to serve, wraps it
// in ErrUnavailable).
var ErrInvalidSnapshot = newError("systema: invalid snapshot", merge.ErrBadData)

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// oddKeyFunc is the SQL name of oddKey, registered on this package's private
// driver only (so it never leaks into other users of modernc.org/sqlite).
const oddKeyFunc = "systema_odd_key"

// sqliteDriver is this package's own modernc driver, carrying oddKeyFunc. It
// is built once and never changes afterwards.
var sqliteDriver = sync.OnceValues(func() (*sqlite.Driver, error) {
	d := &sqlite.Driver{}
	err := d.RegisterDeterministicScalarFunction(oddKeyFunc, 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		email, ok := args[0].(string)
		if !ok {
			return nil, nil
		}
		if k, odd := oddKey(email); odd {
			return k, nil
		}
		return nil, nil
	})
	return d, err
})

// connector opens read-only connections with sqliteDriver.
type connector struct {
	drv *sqlite.Driver
	dsn string
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.drv.Open(c.dsn)
}

func (c connector) Driver() driver.Driver { return c.drv }

// readOnlyDSN is the URI that opens path read-only and immutable (no locks,
// no journal: snapshots never change once validated).
func readOnlyDSN(path string) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro&immutable=1&_pragma=query_only(1)"}
	return u.String()
}

// checkHeader validates the SQLite file header of f (checkHeaderBytes).
func checkHeader(f *os.File) error {
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: not an SQLite database (file shorter than its header)", ErrInvalidSnapshot)
		}
		return fmt.Errorf("systema: read header: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("systema: stat snapshot: %w", err)
	}
	return checkHeaderBytes(h[:], fi.Size())
}

// headerPageSize returns the page size the SQLite header h (its first 100
// bytes at least) declares, after checking the magic string and a
// rollback-journal (not WAL) file format.
func headerPageSize(h []byte) (int64, error) {
	if len(h) < 100 || !bytes.Equal(h[:16], []byte(sqliteMagic)) {
		return 0, fmt.Errorf("%w: not an SQLite database (bad header)", ErrInvalidSnapshot)
	}
	if h[18] == 2 || h[19] == 2 {
		return 0, fmt.Errorf("%w: WAL-mode file; snapshots must be in rollback-journal mode", ErrInvalidSnapshot)
	}
	if h[18] != 1 || h[19] != 1 {
		return 0, fmt.Errorf("%w: unknown file format versions %d/%d", ErrInvalidSnapshot, h[18], h[19])
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return 0, fmt.Errorf("%w: bad page size %d", ErrInvalidSnapshot, pageSize)
	}
	return pageSize, nil
}

// headerPages returns the page count the header h declares, or 0 when the
// header does not vouch for it (the in-header count is valid when the change
// counter equals the version-valid-for number; every SQLite since 3.7.0
// writes both).
func headerPages(h []byte) int64 {
	if !bytes.Equal(h[24:28], h[92:96]) {
		return 0
	}
	return int64(binary.BigEndian.Uint32(h[28:32]))
}

// checkHeaderBytes validates an SQLite header h for a file of size bytes:
// the magic string, a rollback-journal file format, a sane page size, and a
// file at least as long as the header says (a truncated download or object
// fails here).
func checkHeaderBytes(h []byte, size int64) error {
	pageSize, err := headerPageSize(h)
	if err != nil {
		return err
	}
	if size%pageSize != 0 {
		return fmt.Errorf("%w: truncated (%d bytes is not a whole number of %d-byte pages)", ErrInvalidSnapshot, size, pageSize)
	}
	if pages := headerPages(h); pages != 0 && size < pages*pageSize {
		return fmt.Errorf("%w: truncated (%d bytes, header says %d pages of %d)", ErrInvalidSnapshot, size, pages, pageSize)
	}
	return nil
}

// openOptions tune openSnapshot.
type openOptions struct {
	integrityCheck bool // run PRAGMA quick_check (reads every page)
}

// openSnapshot validates the snapshot file at path and opens it read-only.
// v is the version it was fetched as; the result's version carries its
// exported_at. Every validation failure wraps ErrInvalidSnapshot.
func openSnapshot(ctx context.Context, path string, v Version, opts openOptions) (*snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("systema: open snapshot: %w", err)
	}
	err = checkHeader(f)
	if err == nil && !v.Manifest.IsZero() {
		head := make([]byte, 100)
		if _, err = f.ReadAt(head, 0); err == nil {
			err = v.Manifest.check(head, v.Size)
		}
	}
	f.Close()
	if err != nil {
		return nil, err
	}
	s, err := openDB(ctx, readOnlyDSN(path), v, opts)
	if err != nil {
		return nil, err
	}
	s.path = path
	return s, nil
}

// openDB opens the database dsn names with this package's driver, checks
// snapshot_meta and the customers table (and with opts.integrityCheck runs
// quick_check) and prepares the lookups.
func openDB(ctx context.Context, dsn string, v Version, opts openOptions) (_ *snapshot, err error) {
	drv, err := sqliteDriver()
	if err != nil {
		return nil, fmt.Errorf("systema: sqlite driver: %w", err)
	}
	db := sql.OpenDB(connector{drv: drv, dsn: dsn})
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	if v.ExportedAt, err = checkMeta(ctx, db); err != nil {
		return nil, err
	}
	if err := checkCustomers(ctx, db); err != nil {
		return nil, err
	}
	if opts.integrityCheck {
		if err := quickCheck(ctx, db); err != nil {
			return nil, err
		}
	}
	s := &snapshot{version: v, db: db}
	if s.byKey, err = db.PrepareContext(ctx, selectByKey); err != nil {
		return nil, fmt.Errorf("%w: prepare lookup: %w", ErrInvalidSnapshot, err)
	}
	if s.byRange, err = db.PrepareContext(ctx, selectByRange); err != nil {
		s.byKey.Close()
		return nil, fmt.Errorf("%w: prepare lookup: %w", ErrInvalidSnapshot, err)
	}
	return s, nil
}

// invalid wraps a query error met while validating: SQLite's "file is not a
// database" and "malformed" answers mean a bad file, not an outage.
func invalid(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("systema: %s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrInvalidSnapshot, what, err)
}

// checkMeta checks snapshot_meta: schema_version and exported_at.
func checkMeta(ctx context.Context, db *sql.DB) (time.Time, error) {
	meta := func(key string) (string, error) {
		var v string
		err := db.QueryRowContext(ctx, "SELECT value FROM snapshot_meta WHERE key = ?", key).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("%w: snapshot_meta has no %s", ErrInvalidSnapshot, key)
		}
		if err != nil {
			return "", invalid("read snapshot_meta "+key, err)
		}
		return v, nil
	}
	ver, err := meta("schema_version")
	if err != nil {
		return time.Time{}, err
	}
	if ver != SchemaVersion {
		return time.Time{}, fmt.Errorf("%w: schema_version is %q, want %q", ErrInvalidSnapshot, ver, SchemaVersion)
	}
	exp, err := meta("exported_at")
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, exp)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: exported_at is not RFC 3339: %w", ErrInvalidSnapshot, err)
	}
	return t.UTC(), nil
}

// checkCustomers checks the customers table: every column the field table
// names plus last_updated, and a unique NOCASE key on email alone (the
// PRIMARY KEY of either layout), on which Lookup and All rely.
func checkCustomers(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info('customers')")
	if err != nil {
		return invalid("read customers columns", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return invalid("read customers columns", err)
		}
		have[strings.ToLower(name)] = true
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return invalid("read customers columns", err)
	}
	rows.Close()
	if len(have) == 0 {
		return fmt.Errorf("%w: no customers table", ErrInvalidSnapshot)
	}
	var missing []string
	for _, c := range columns() {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: customers lacks column(s) %s", ErrInvalidSnapshot, strings.Join(missing, ", "))
	}
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_index_list('customers') AS il
		WHERE il."unique" AND (SELECT count(*) FROM pragma_index_info(il.name)) = 1
		AND EXISTS (SELECT 1 FROM pragma_index_xinfo(il.name) AS x
			WHERE x.key AND x.name = 'email' AND upper(x.coll) = 'NOCASE')`).Scan(&n)
	if err != nil {
		return invalid("read customers indexes", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: customers.email is not a unique COLLATE NOCASE key", ErrInvalidSnapshot)
	}
	return nil
}

// quickCheck runs PRAGMA quick_check.
func quickCheck(ctx context.Context, db *sql.DB) error {
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check(1)").Scan(&res); err != nil {
		return invalid("quick_check", err)
	}
	if res != "ok" {
		return fmt.Errorf("%w: quick_check: %s", ErrInvalidSnapshot, res)
	}
	return nil
}

// columns returns the customers columns read, in Record order: one per
// entry of merge.Fields, then last_updated.
func columns() []string {
	cols := make([]string, 0, merge.NumFields+1)
	for _, f := range merge.Fields {
		cols = append(cols, f.Column)
	}
	return append(cols, "last_updated")
}

// The queries, built from the declarative field table.
var (
	// selectByKey finds the row whose email equals an ASCII key, ignoring
	// ASCII case (the NOCASE key index).
	selectByKey = "SELECT " + rowExpr + " FROM customers WHERE email = ?1 COLLATE NOCASE"
	// selectByRange scans a NOCASE key range (see Lookup).
	selectByRange = "SELECT " + rowExpr + " FROM customers WHERE email >= ?1 COLLATE NOCASE AND email < ?2 COLLATE NOCASE"
	// selectPosition counts the rows before an email in email order (the
	// key index; a bad row's Position).
	selectPosition = "SELECT count(*) FROM customers WHERE email < ?1 COLLATE NOCASE"
	// selectAll streams every row in NOCASE order (the key index).
	selectAll = "SELECT " + rowExpr + " FROM customers ORDER BY email COLLATE NOCASE"
	// selectOdd streams the rows whose join key is not their ASCII-lowered
	// email, ordered by join key then email bytes. oddPrefilter, evaluated
	// inside SQLite, keeps only rows that may be odd; oddKeyFunc decides.
	selectOdd = "SELECT " + rowExpr + ", " + oddKeyFunc + "(email) AS k FROM customers" +
		" WHERE " + oddPrefilter + " AND " + oddKeyFunc + "(email) IS NOT NULL" +
		" ORDER BY k, email COLLATE BINARY"
)

// oddPrefilter is a cheap superset of the odd rows: an odd email has a
// character outside '!'..'~' (non-ASCII, whitespace, control) that GLOB
// sees, or a NUL byte, which hides the rest of the text from GLOB and
// length() but not from octet_length().
const oddPrefilter = "(email GLOB '*[^!-~]*' OR length(email) != octet_length(email))"
