package systema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/acme/unified-customer-service/shared/merge"
	"modernc.org/sqlite/vfs"
)

// ErrNotFound is returned (wrapped) by Lookup when System A has no customer
// with the key. Its kind is merge.ErrNotFound: an answer, not a failure.
var ErrNotFound = newError("systema: customer not found", merge.ErrNotFound)

// ErrBadData is returned (wrapped) for a row that breaks the snapshot
// contract (bad last_updated, marketing_opt_in not 1/0/NULL, no email).
// Errors never echo the row's values (they are PII). Its kind is
// merge.ErrBadData; the error also holds a *merge.BadRecordError.
var ErrBadData = newError("systema: bad data in snapshot", merge.ErrBadData)

// ErrReleased is returned (wrapped) when a Snapshot is used after Release.
var ErrReleased = errors.New("systema: snapshot used after release")

// snapshot is one validated, open snapshot version, shared by every handle
// that pins it.
type snapshot struct {
	version Version
	path    string   // the local file; removed when closed unless keep; "" in range mode
	keep    bool     // the file is not ours (Open)
	lock    *os.File // holds the file's shared lock (Store files); may be nil
	remote  *remote  // range mode: the object read in place; nil otherwise
	vfs     *vfs.FS  // range mode: the VFS registered for remote
	db      *sql.DB
	byKey   *sql.Stmt
	byRange *sql.Stmt
	refs    int // guarded by the owning Store's mu
}

// close closes the database and removes the local file.
func (s *snapshot) close() error {
	s.byKey.Close()
	s.byRange.Close()
	err := s.db.Close()
	if s.vfs != nil {
		if verr := s.vfs.Close(); verr != nil && err == nil {
			err = verr
		}
	}
	if s.keep || s.path == "" {
		if err != nil {
			return fmt.Errorf("systema: close snapshot: %w", err)
		}
		return nil
	}
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	if s.lock != nil {
		s.lock.Close()
	}
	if err != nil {
		return fmt.Errorf("systema: close snapshot: %w", err)
	}
	return nil
}

// readErr adds to err, a failed query's error, why the range reads under
// it failed: SQLite reports only "disk I/O error", and a version changed
// under the reader must be seen as ErrChanged (errors.Is).
func (s *snapshot) readErr(err error) error {
	if s.remote == nil {
		return err
	}
	if last, _ := s.remote.failure(); last != nil {
		return fmt.Errorf("%w (range read: %w)", err, last)
	}
	return err
}

// broken reports whether the version changed under a range-mode snapshot:
// it cannot serve any more reads.
func (s *snapshot) broken() bool {
	if s.remote == nil {
		return false
	}
	_, changed := s.remote.failure()
	return changed
}

// Snapshot is one pinned snapshot version: every read through it sees that
// version, whatever refreshes happen meanwhile, until Release. It is safe for
// concurrent use.
type Snapshot struct {
	s        *snapshot
	release  func(*snapshot)
	released atomic.Bool
}

// Version returns the pinned version (URI, ETag, VersionID, Size,
// LastModified, ExportedAt).
func (h *Snapshot) Version() Version { return h.s.version }

// RangeStats returns the range reads of a range-mode snapshot so far, and
// false for a downloaded one.
func (h *Snapshot) RangeStats() (RangeStats, bool) {
	if h.s.remote == nil {
		return RangeStats{}, false
	}
	return h.s.remote.Stats(), true
}

// ExportedAt returns System A's export time: its freshness.
func (h *Snapshot) ExportedAt() time.Time { return h.s.version.ExportedAt }

// Release unpins the version. The Snapshot must not be used afterwards;
// calling Release again is harmless.
func (h *Snapshot) Release() {
	if h.released.CompareAndSwap(false, true) {
		h.release(h.s)
	}
}

func (h *Snapshot) check() error {
	if h.released.Load() {
		return ErrReleased
	}
	return nil
}

// Lookup returns the customer whose join key (merge.Key) is merge.Key(email):
// case-insensitive, also for non-ASCII letters. ErrNotFound when absent.
//
// The key index folds ASCII case only, so for a key with non-ASCII letters
// Lookup probes the index once per non-ASCII case variant of the key ("jörg"
// and "jÖrg"; at most maxProbes, else it scans the index range of the key's
// ASCII prefix) and keeps the rows whose merge.Key matches. If several rows
// share the key (possible only with non-ASCII case variants), Lookup returns
// the one All yields first. Not found by Lookup (yet yielded by All): emails
// with surrounding whitespace or whose lower-casing turns a non-ASCII letter
// into an ASCII one (U+212A KELVIN SIGN, U+0130); System A's emails are not
// like that in practice.
func (h *Snapshot) Lookup(ctx context.Context, email string) (*merge.Record, error) {
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("systema: lookup: %w", err)
	}
	if h.s.remote != nil {
		defer h.s.remote.enter(ctx)()
	}
	key := merge.Key(email)
	if key == "" {
		return nil, fmt.Errorf("systema: lookup: empty key: %w", ErrNotFound)
	}
	m := match{db: h.s.db, s: h.s}
	if i := firstNonASCII(key); i < 0 {
		if err := m.query(ctx, key, h.s.byKey, key); err != nil {
			return nil, err
		}
	} else if probes := caseVariants(key, maxProbes); probes != nil {
		for _, p := range probes {
			if err := m.query(ctx, key, h.s.byKey, p); err != nil {
				return nil, err
			}
		}
	} else if err := m.query(ctx, key, h.s.byRange, key[:i]+"\x80", key[:i]+"\xff"); err != nil {
		return nil, err
	}
	if m.best == nil {
		return nil, ErrNotFound
	}
	return m.best, nil
}

// maxProbes bounds the index probes of one Lookup.
const maxProbes = 16

// match collects Lookup's candidate rows and keeps the first in All's order.
type match struct {
	db      *sql.DB   // for position
	s       *snapshot // for readErr
	sc      scanner
	best    *merge.Record
	bestOdd bool
}

// query runs stmt with args and considers the rows whose key is key.
func (m *match) query(ctx context.Context, key string, stmt *sql.Stmt, args ...any) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("systema: lookup: %w: %w", ErrUnavailable, m.s.readErr(err))
	}
	defer rows.Close()
	if m.sc.dest == nil {
		m.sc.init(false)
	}
	for rows.Next() {
		rec, _, reason, err := m.sc.scan(rows)
		if err != nil {
			return fmt.Errorf("systema: lookup: %w: %w", ErrUnavailable, m.s.readErr(err))
		}
		if rec == nil {
			continue // a row without an email is nobody's
		}
		email := rec.Values[merge.FieldEmail]
		k, odd := oddKey(email)
		if k != key {
			continue // another customer in the range (its data errors are not ours)
		}
		if reason != "" {
			return fmt.Errorf("systema: lookup: %w", badRecord(m.position(ctx, email), reason))
		}
		// All's order among rows sharing a key: the regular row, then the
		// odd ones by email bytes.
		if m.best == nil || (m.bestOdd && !odd) || (odd == m.bestOdd && email < m.best.Values[merge.FieldEmail]) {
			m.best, m.bestOdd = rec, odd
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("systema: lookup: %w: %w", ErrUnavailable, m.s.readErr(err))
	}
	return nil
}

// position returns the Position of the row whose email is email, as All
// says it ("row N" in email order), or "" if it cannot be read. It counts
// the key index up to the row: a bad row is rare, and only its lookup pays.
func (m *match) position(ctx context.Context, email string) string {
	var n int64
	if err := m.db.QueryRowContext(ctx, selectPosition, email).Scan(&n); err != nil {
		return ""
	}
	return "row " + strconv.FormatInt(n+1, 10)
}

// caseVariants returns key with each non-ASCII rune replaced, in every
// combination, by each rune that lower-cases to it: every string that
// NOCASE-equals an email whose join key is key. nil when there would be more
// than max.
func caseVariants(key string, max int) []string {
	out := []string{""}
	done := 0 // key[:done] is in out
	for i := 0; i < len(key); {
		r, size := utf8.DecodeRuneInString(key[i:])
		if r < utf8.RuneSelf {
			i += size
			continue
		}
		vs := runeVariants(r)
		if len(vs) > 1 {
			if len(out)*len(vs) > max {
				return nil
			}
			next := make([]string, 0, len(out)*len(vs))
			for _, p := range out {
				for _, v := range vs {
					next = append(next, p+key[done:i]+string(v))
				}
			}
			out, done = next, i+size
		}
		i += size
	}
	for i := range out {
		out[i] += key[done:]
	}
	return out
}

// runeVariants returns r and every other rune of its case-folding orbit
// that lower-cases to r.
func runeVariants(r rune) []rune {
	vs := []rune{r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if unicode.ToLower(f) == r {
			vs = append(vs, f)
		}
	}
	return vs
}

// oddKey returns merge.Key(email) and whether it differs from email with
// only its ASCII letters lower-cased: such "odd" rows (non-ASCII upper case,
// surrounding whitespace) sort differently under NOCASE than by join key.
func oddKey(email string) (key string, odd bool) {
	key = merge.Key(email)
	if len(key) != len(email) {
		return key, true
	}
	for i := 0; i < len(key); i++ {
		if key[i] != asciiLower(email[i]) {
			return key, true
		}
	}
	return key, false
}

func asciiLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// firstNonASCII returns the index of the first byte >= 0x80 of s, or -1.
func firstNonASCII(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return i
		}
	}
	return -1
}

// Open validates the local snapshot file at path and opens it in place,
// outside any Store (tools, tests, benchmarks), with the header, schema and
// column checks but no quick_check. Release closes it; the file is left
// alone. Errors wrap ErrUnavailable and say why.
func Open(ctx context.Context, path string) (*Snapshot, error) {
	src := NewFileSource(path)
	v, err := src.Stat(ctx)
	if err != nil {
		return nil, fmt.Errorf("systema: open: %w: %w", ErrUnavailable, err)
	}
	s, err := openSnapshot(ctx, path, v, openOptions{})
	if err != nil {
		return nil, fmt.Errorf("systema: open %s: %w: %w", v.URI, ErrUnavailable, err)
	}
	s.keep = true
	return &Snapshot{s: s, release: func(s *snapshot) { s.close() }}, nil //nolint:errcheck // read-only
}
