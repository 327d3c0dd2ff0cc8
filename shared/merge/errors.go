package merge

// This file declares the kinds of failure the service distinguishes, the one
// vocabulary the adapters translate their own errors into at their boundary
// and the handlers translate into answers (one table per handler).

import (
	"errors"
	"strings"
)

// ErrorKind is the kind of a failure: what went wrong, not where. It is an error
// itself, so an adapter wraps its cause with one (fmt.Errorf("systemb: get
// customer: %w: %w", merge.ErrUnavailable, cause)) and a caller asks
// errors.Is(err, merge.ErrUnavailable) or ErrorKindOf(err).
type ErrorKind string

// The kinds. An error that wraps none of them is internal: a bug or an
// unexpected failure, answered as such.
const (
	// ErrInvalid: the caller's input is wrong; asking again will not help.
	ErrInvalid ErrorKind = "invalid"
	// ErrNotFound: the system answered, and it does not hold the customer.
	// This is an answer, not a failure.
	ErrNotFound ErrorKind = "not found"
	// ErrUnavailable: the system could not answer now (timeout, transport
	// error, 5xx, throttling, no snapshot); asking again later may help.
	ErrUnavailable ErrorKind = "unavailable"
	// ErrBadData: the system answered with data that does not fit the
	// contract (a malformed row or item). The data is wrong, not the caller.
	ErrBadData ErrorKind = "bad data"
	// ErrUnauthorized: the system refused our credentials.
	ErrUnauthorized ErrorKind = "unauthorized"
)

// ErrorKinds returns every kind, for tables that must cover them all.
func ErrorKinds() [5]ErrorKind {
	return [...]ErrorKind{ErrInvalid, ErrNotFound, ErrUnavailable, ErrBadData, ErrUnauthorized}
}

// Error implements error.
func (k ErrorKind) Error() string { return string(k) }

// ErrorKindOf returns the kind err wraps, or "" when it wraps none (an internal
// error). When err wraps several, the first in ErrorKinds' order wins.
func ErrorKindOf(err error) ErrorKind {
	if err == nil {
		return ""
	}
	for _, k := range ErrorKinds() {
		if errors.Is(err, k) {
			return k
		}
	}
	return ""
}

// BadRecordError is one record a system holds that does not fit the
// contract. A record stream (System A's snapshot scan, System B's list)
// yields it in place of the record and carries on with the next one: a bad
// record is data to count and report, not a reason to stop. Its fields never
// carry a customer's email, name or phone number.
type BadRecordError struct {
	Source Source // the system that holds the record
	// Position says where the record is without quoting it: "rowid 1234" in
	// a snapshot, "page 17 item 3" in a list.
	Position string
	// Reason says what is wrong, naming fields but never their values.
	Reason string
}

// Error implements error.
func (e *BadRecordError) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Source))
	b.WriteString(": bad record")
	if e.Position != "" {
		b.WriteString(" at ")
		b.WriteString(e.Position)
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Unwrap returns ErrBadData.
func (e *BadRecordError) Unwrap() error { return ErrBadData }
