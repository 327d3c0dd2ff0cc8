package systema

import (
	"context"
	"database/sql"
	"fmt"
	"iter"

	"github.com/acme/unified-customer-service/shared/merge"
)

// All yields every customer of the pinned version in join order: by
// merge.Key (trimmed, Unicode lower-cased email) compared byte-wise, the
// order of System B's list endpoint, ready for a sort-merge join (use
// iter.Pull2 for a pull-style cursor). Memory stays constant whatever the
// number of customers.
//
// It yields (record, nil) for each customer. A row that breaks the contract
// yields (nil, err wrapping ErrBadData) in its place and iteration goes on; a
// failed query or a cancelled ctx yields (nil, err) once and ends it.
//
// How: the key index orders rows by email with ASCII letters folded (NOCASE),
// which is the join order for every row whose key is its ASCII-lowered email.
// The few others ("odd" rows: non-ASCII upper case, surrounding whitespace)
// are skipped in that stream and merged in from a second query that selects
// only them, ordered by their key (SQLite sorts only those).
//
// Duplicate keys: the key index makes ASCII-case variants impossible, but two
// rows may differ by non-ASCII case only ("JÖRG@x" and "jörg@x"). All yields
// every such row, consecutively and deterministically: the row whose email is
// already lower case first, then the others by email bytes. Callers that
// need one record per key see two consecutive records with the same Key and
// decide (count them as a data error, keep the first as Lookup does).
func (h *Snapshot) All(ctx context.Context) iter.Seq2[*merge.Record, error] {
	return func(yield func(*merge.Record, error) bool) {
		if err := h.check(); err != nil {
			yield(nil, fmt.Errorf("systema: iterate: %w", err))
			return
		}
		plain, err := h.s.db.QueryContext(ctx, selectAll)
		if err != nil {
			yield(nil, fmt.Errorf("systema: iterate: %w: %w", ErrUnavailable, err))
			return
		}
		defer plain.Close()
		odd, err := h.s.db.QueryContext(ctx, selectOdd)
		if err != nil {
			yield(nil, fmt.Errorf("systema: iterate: %w: %w", ErrUnavailable, err))
			return
		}
		defer odd.Close()

		a := &stream{rows: plain}
		a.sc.init(false)
		b := &stream{rows: odd, odd: true}
		b.sc.init(true)
		a.advance()
		b.advance()
		for n := 1; !a.done || !b.done; n++ {
			// database/sql notices a cancelled ctx asynchronously; a check
			// every 64 rows makes the stop prompt and certain.
			if n&63 == 0 {
				if err := ctx.Err(); err != nil {
					yield(nil, fmt.Errorf("systema: iterate: %w", err))
					return
				}
			}
			s := a // ties: the plain stream first
			switch {
			case a.fatal:
			case b.fatal, a.done, !b.done && b.key < a.key:
				s = b
			}
			if s.fatal {
				yield(nil, fmt.Errorf("systema: iterate: %w: %w", ErrUnavailable, s.err))
				return
			}
			if !yield(s.rec, s.err) {
				return
			}
			s.advance()
		}
	}
}

// stream is one ordered query of All, one row ahead.
type stream struct {
	rows *sql.Rows
	sc   scanner
	odd  bool // the odd-rows query (its key comes from SQL)

	rec   *merge.Record // current row; nil with err for a bad row
	key   string        // current row's join key ("" if a bad row has no email)
	err   error         // current row's ErrBadData, or the fatal error
	done  bool          // no more rows
	fatal bool          // the query failed: err ends the iteration
}

// advance moves to the next row to yield.
func (s *stream) advance() {
	for s.rows.Next() {
		rec, key, err := s.sc.scan(s.rows)
		if !s.odd && rec != nil {
			k, odd := oddKey(rec.Values[merge.FieldEmail])
			if odd {
				continue // the odd stream yields it
			}
			key = k
		}
		if err != nil {
			rec = nil
		}
		s.rec, s.key, s.err = rec, key, err
		return
	}
	s.rec, s.key, s.err, s.done = nil, "", nil, true
	if err := s.rows.Err(); err != nil {
		s.err, s.done, s.fatal = err, false, true
	}
}
