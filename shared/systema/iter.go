package systema

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strconv"

	"github.com/acme/unified-customer-service/shared/merge"
)

// All yields every customer of the pinned version in join order: by
// merge.Key (trimmed, Unicode lower-cased email) compared byte-wise, the
// order of System B's list endpoint, ready for a sort-merge join (use
// iter.Pull2 for a pull-style cursor). Memory stays constant whatever the
// number of customers.
//
// It yields (record, nil) for each customer. A row that breaks the contract
// (see decodeRow: no email, a last_updated that is NULL or not RFC 3339, a
// marketing_opt_in other than 1, 0 or NULL) yields (nil, err) in its place
// and iteration goes on with the next row: err holds a *merge.BadRecordError
// (errors.As; kind merge.ErrBadData) and wraps ErrBadData. Its Position is
// "row N": the row is the customers table's Nth in email order, the key
// index's (SELECT * FROM customers ORDER BY email COLLATE NOCASE LIMIT 1
// OFFSET N-1 shows it); a snapshot's table has no rowid (WITHOUT ROWID), and
// its key, the email, is personal data. Its Reason names the column, never
// the value. Bad rows come in email order among the records, not in join
// order (they have no record to order). A failed query (an I/O or SQLite
// error) or a cancelled ctx yields (nil, err) once and ends the iteration.
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
		if h.s.remote != nil {
			defer h.s.remote.enter(ctx)()
		}
		plain, err := h.s.db.QueryContext(ctx, selectAll)
		if err != nil {
			yield(nil, fmt.Errorf("systema: iterate: %w: %w", ErrUnavailable, h.s.readErr(err)))
			return
		}
		defer plain.Close()
		odd, err := h.s.db.QueryContext(ctx, selectOdd)
		if err != nil {
			yield(nil, fmt.Errorf("systema: iterate: %w: %w", ErrUnavailable, h.s.readErr(err)))
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
				yield(nil, fmt.Errorf("systema: iterate: %w: %w", ErrUnavailable, h.s.readErr(s.err)))
				return
			}
			if !yield(s.rec, s.err) {
				return
			}
			s.advance()
		}
	}
}

// stream is one ordered query of All, one row ahead. The plain stream
// yields every bad row (it reads every row, in email order, so it knows the
// row's position); the odd stream yields only good odd rows.
type stream struct {
	rows *sql.Rows
	sc   scanner
	odd  bool // the odd-rows query (its key comes from SQL)
	n    int  // rows read so far (the plain stream's position in email order)

	rec   *merge.Record // current row; nil with err for a bad row
	key   string        // current row's join key ("" for a bad row)
	err   error         // current row's bad record error, or the fatal error
	done  bool          // no more rows
	fatal bool          // the query failed: err ends the iteration
}

// advance moves to the next row to yield.
func (s *stream) advance() {
	for s.rows.Next() {
		s.n++
		rec, key, reason, err := s.sc.scan(s.rows)
		switch {
		case err != nil:
			s.rec, s.key, s.err, s.fatal = nil, "", err, true
			return
		case reason != "" && s.odd:
			continue // the plain stream yields it
		case reason != "":
			s.rec, s.key, s.err = nil, "", badRecord("row "+strconv.Itoa(s.n), reason)
			return
		case !s.odd:
			k, odd := oddKey(rec.Values[merge.FieldEmail])
			if odd {
				continue // the odd stream yields it
			}
			key = k
		}
		s.rec, s.key, s.err = rec, key, nil
		return
	}
	s.rec, s.key, s.err, s.done = nil, "", nil, true
	if err := s.rows.Err(); err != nil {
		s.err, s.done, s.fatal = err, false, true
	}
}
