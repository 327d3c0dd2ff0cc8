package systema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// ErrNotFound is returned (wrapped) by Lookup when System A has no customer
// with the key.
var ErrNotFound = errors.New("systema: customer not found")

// ErrBadData is returned (wrapped) for a row that breaks the snapshot
// contract (bad last_updated, marketing_opt_in not 1/0/NULL, no email).
// Errors never echo the row's values (they are PII).
var ErrBadData = errors.New("systema: bad data in snapshot")

// ErrReleased is returned (wrapped) when a Snapshot is used after Release.
var ErrReleased = errors.New("systema: snapshot used after release")

// snapshot is one validated, open snapshot version, shared by every handle
// that pins it.
type snapshot struct {
	version Version
	path    string // the local file; removed when closed unless keep
	keep    bool   // the file is not ours (Open)
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
	if s.keep {
		return err
	}
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("systema: close snapshot: %w", err)
	}
	return nil
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
// The key index folds ASCII case only, so Lookup reads the index for the
// key's ASCII prefix (equality for an ASCII key; for a non-ASCII key the rows
// that continue that prefix with a non-ASCII byte) and keeps the rows whose
// merge.Key matches. If several rows share the key (possible only with
// non-ASCII case variants), Lookup returns the one All yields first. Not
// found by Lookup (yet yielded by All): emails whose lower-casing changes
// their ASCII prefix (U+212A KELVIN SIGN, U+0130) or that carry surrounding
// whitespace; snapshots do not contain such emails in practice.
func (h *Snapshot) Lookup(ctx context.Context, email string) (*merge.Record, error) {
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("systema: lookup: %w", err)
	}
	key := merge.Key(email)
	if key == "" {
		return nil, fmt.Errorf("systema: lookup: empty key: %w", ErrNotFound)
	}
	var rows *sql.Rows
	var err error
	if i := firstNonASCII(key); i < 0 {
		rows, err = h.s.byKey.QueryContext(ctx, key)
	} else {
		p := key[:i]
		rows, err = h.s.byRange.QueryContext(ctx, p+"\x80", p+"\xff")
	}
	if err != nil {
		return nil, fmt.Errorf("systema: lookup: %w: %w", ErrUnavailable, err)
	}
	defer rows.Close()
	var sc scanner
	sc.init(false)
	var best *merge.Record
	bestOdd := false
	for rows.Next() {
		rec, _, err := sc.scan(rows)
		if rec == nil {
			return nil, fmt.Errorf("systema: lookup: %w", err)
		}
		email := rec.Values[merge.FieldEmail]
		k, odd := oddKey(email)
		if k != key {
			continue // another customer sharing the prefix (its data errors are not ours)
		}
		if err != nil {
			return nil, fmt.Errorf("systema: lookup: %w", err)
		}
		// All's order among rows sharing a key: the regular row, then the
		// odd ones by email bytes.
		if best == nil || (bestOdd && !odd) || (odd == bestOdd && email < best.Values[merge.FieldEmail]) {
			best, bestOdd = rec, odd
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("systema: lookup: %w: %w", ErrUnavailable, err)
	}
	if best == nil {
		return nil, ErrNotFound
	}
	return best, nil
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

// scanner turns customers rows (columns() order, optionally followed by a
// key column) into Records.
type scanner struct {
	text [merge.NumFields + 1]sql.NullString // last_updated at NumFields
	flag [merge.NumFields]sql.NullInt64      // KindBool fields
	key  sql.NullString
	dest []any
}

func (sc *scanner) init(withKey bool) {
	sc.dest = make([]any, 0, merge.NumFields+2)
	for i, f := range merge.Fields {
		if f.Kind == merge.KindBool {
			sc.dest = append(sc.dest, &sc.flag[i])
		} else {
			sc.dest = append(sc.dest, &sc.text[i])
		}
	}
	sc.dest = append(sc.dest, &sc.text[merge.NumFields])
	if withKey {
		sc.dest = append(sc.dest, &sc.key)
	}
}

// scan reads the current row and its key column (if any). A row that
// breaks the contract is an error wrapping ErrBadData that names the column,
// never the values; the record is then still returned when its email could
// be read (so callers can tell whose row it is), nil otherwise.
func (sc *scanner) scan(rows *sql.Rows) (*merge.Record, string, error) {
	if err := rows.Scan(sc.dest...); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadData, err)
	}
	rec := &merge.Record{}
	var err error
	for i, f := range merge.Fields {
		if f.Kind != merge.KindBool {
			rec.Values[i] = sc.text[i].String
			continue
		}
		switch b := sc.flag[i]; {
		case !b.Valid:
		case b.Int64 == 1:
			rec.Values[i] = "true"
		case b.Int64 == 0:
			rec.Values[i] = "false"
		default:
			err = fmt.Errorf("%w: %s is neither 1, 0 nor NULL", ErrBadData, f.Column)
		}
	}
	if rec.Values[merge.FieldEmail] == "" {
		return nil, "", fmt.Errorf("%w: a row has no email", ErrBadData)
	}
	if err != nil {
		return rec, sc.key.String, err
	}
	lu := sc.text[merge.NumFields]
	t, perr := time.Parse(time.RFC3339, lu.String)
	if !lu.Valid || perr != nil {
		return rec, sc.key.String, fmt.Errorf("%w: last_updated is not RFC 3339", ErrBadData)
	}
	rec.LastUpdated = t.UTC()
	return rec, sc.key.String, nil
}

// Open validates the local snapshot file at path and opens it in place,
// outside any Store (tools, tests, benchmarks). Release closes it; the file
// is left alone. Errors wrap ErrUnavailable and say why.
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
