package systema

import "github.com/acme/unified-customer-service/shared/merge"

// This package's sentinels are also of a merge.ErrorKind, so that a caller
// outside the adapter asks errors.Is(err, merge.ErrUnavailable) or
// merge.ErrorKindOf(err) while errors.Is(err, systema.ErrX) keeps working:
//
//	ErrNotFound        -> merge.ErrNotFound     (an answer: no such customer)
//	ErrUnavailable     -> merge.ErrUnavailable  (no snapshot served, a failed query)
//	ErrNoSnapshot      -> merge.ErrUnavailable  (no object: the next export may bring one)
//	ErrChanged         -> merge.ErrUnavailable  (replaced while fetching: look again)
//	ErrBadData         -> merge.ErrBadData      (one row breaks the contract)
//	ErrInvalidSnapshot -> merge.ErrBadData      (the file breaks the contract)
//	ErrOlderSnapshot   -> merge.ErrBadData      (the export went back in time)
//	ErrBadRecord       -> merge.ErrInvalid      (WriteSnapshot's caller gave a bad record)
//	ErrReleased, ErrClosed: none (using a Snapshot or Store after its end is a bug)
//
// Acquire without a served snapshot wraps ErrUnavailable and the reason (an
// ErrInvalidSnapshot, say): merge.ErrorKindOf then answers ErrUnavailable,
// the kind a caller acts on (System A cannot answer now).

// kindError is a sentinel of this package that unwraps to its kind.
type kindError struct {
	msg  string
	kind merge.ErrorKind
}

// newError returns a sentinel with message msg of kind kind.
func newError(msg string, kind merge.ErrorKind) error { return &kindError{msg: msg, kind: kind} }

// Error returns the sentinel's message (without the kind).
func (e *kindError) Error() string { return e.msg }

// Unwrap returns the kind.
func (e *kindError) Unwrap() error { return e.kind }
