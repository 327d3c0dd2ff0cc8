package dedup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/acme/unified-customer-service/shared/merge"
)

// File is the embedded Store: one SQLite file (WAL), shared safely by
// several processes on one machine. An id's TTL is honoured on read
// (Seen); expired rows are removed by Record now and then.
type File struct {
	db  *sql.DB
	now func() time.Time
	// The prepared statements.
	seen, mark, expire, applied, setApplied *sql.Stmt
	records                                 atomic.Uint64 // Record calls, to expire old ids now and then
}

var _ Store = (*File)(nil)

// OpenFile opens (creating it and its directory when missing) the store at
// path. now is the clock of the TTLs; time.Now when nil.
func OpenFile(path string, now func() time.Time) (*File, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("dedup: open %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, fmt.Errorf("dedup: open %s: %w", path, err)
	}
	const schema = `
CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, expires_ns INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied (key TEXT NOT NULL, system TEXT NOT NULL, last_updated_ns INTEGER NOT NULL,
  PRIMARY KEY (key, system)) WITHOUT ROWID;`
	// One connection: SQLite has one writer at a time, and writers that
	// meet on the file lock back off in sleeps of milliseconds; queued in
	// the pool they take turns at once. Other processes still share the
	// file (WAL, busy_timeout).
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("dedup: open %s: %w: %w", path, merge.ErrUnavailable, err)
	}
	f := &File{db: db, now: now}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&f.seen, `SELECT expires_ns FROM seen WHERE id = ?`},
		{&f.mark, `INSERT INTO seen (id, expires_ns) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET expires_ns = excluded.expires_ns`},
		{&f.expire, `DELETE FROM seen WHERE expires_ns <= ?`},
		{&f.applied, `SELECT last_updated_ns FROM applied WHERE key = ? AND system = ?`},
		{&f.setApplied, `INSERT INTO applied (key, system, last_updated_ns) VALUES (?, ?, ?)
ON CONFLICT (key, system) DO UPDATE SET last_updated_ns = excluded.last_updated_ns
WHERE excluded.last_updated_ns > applied.last_updated_ns`},
	} {
		if *p.st, err = db.Prepare(p.sql); err != nil {
			db.Close()
			return nil, fmt.Errorf("dedup: open %s: %w: %w", path, merge.ErrUnavailable, err)
		}
	}
	return f, nil
}

// Close closes the file.
func (f *File) Close() error { return f.db.Close() }

// Seen implements Store.
func (f *File) Seen(ctx context.Context, id string) (bool, error) {
	var exp int64
	err := f.seen.QueryRowContext(ctx, id).Scan(&exp)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dedup: seen: %w: %w", merge.ErrUnavailable, err)
	}
	return !expired(time.Unix(0, exp), f.now()), nil
}

// Record implements Store: every entry in one transaction. One call in 64
// also deletes expired ids.
func (f *File) Record(ctx context.Context, ttl time.Duration, entries ...Entry) error {
	if len(entries) == 0 {
		return nil
	}
	now := f.now()
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dedup: record: %w: %w", merge.ErrUnavailable, err)
	}
	defer tx.Rollback()
	mark, setApplied := tx.StmtContext(ctx, f.mark), tx.StmtContext(ctx, f.setApplied)
	for _, e := range entries {
		if !e.LastUpdated.IsZero() {
			if _, err := setApplied.ExecContext(ctx, e.Key, string(e.System), e.LastUpdated.UnixNano()); err != nil {
				return fmt.Errorf("dedup: record: watermark: %w: %w", merge.ErrUnavailable, err)
			}
		}
		if _, err := mark.ExecContext(ctx, e.ID, now.Add(ttl).UnixNano()); err != nil {
			return fmt.Errorf("dedup: record: id: %w: %w", merge.ErrUnavailable, err)
		}
	}
	if f.records.Add(1)%64 == 0 {
		if _, err := tx.StmtContext(ctx, f.expire).ExecContext(ctx, now.UnixNano()); err != nil {
			return fmt.Errorf("dedup: record: expire: %w: %w", merge.ErrUnavailable, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("dedup: record: commit: %w: %w", merge.ErrUnavailable, err)
	}
	return nil
}

// Applied implements Store.
func (f *File) Applied(ctx context.Context, key string, system merge.Source) (time.Time, error) {
	var ns int64
	err := f.applied.QueryRowContext(ctx, key, string(system)).Scan(&ns)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("dedup: applied: %w: %w", merge.ErrUnavailable, err)
	}
	return time.Unix(0, ns).UTC(), nil
}
