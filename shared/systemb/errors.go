package systemb

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The sentinel errors of the System B boundary. Every error the Client
// returns is an *Error whose Unwrap yields exactly one of them (plus, where
// known, a cause that never carries an email or a token).
var (
	// ErrNotFound: System B answered 404 to a get; the customer is not in
	// System B. This is an answer, not a failure.
	ErrNotFound = errors.New("systemb: customer not found")

	// ErrUnavailable: System B could not give an answer: a timeout, a
	// transport error, 5xx or 429 after the allowed retries, a redirect (never
	// followed), another non-2xx status, an exhausted retry budget, a
	// Retry-After that does not fit the remaining time, or no time left
	// before the caller's deadline.
	ErrUnavailable = errors.New("systemb: System B unavailable")

	// ErrUnauthorized: System B answered 401 or 403, or the token source gave
	// an empty token. Never retried.
	ErrUnauthorized = errors.New("systemb: System B refused the credentials")

	// ErrInvalidArgument: the caller passed an empty email or a page size
	// outside 1..1000. No request is made.
	ErrInvalidArgument = errors.New("systemb: invalid argument")
)

// Operations named in Error.Op and Call.Op.
const (
	OpGet  = "get"  // GET {base}/customers/{email}
	OpList = "list" // GET {base}/customers?limit=N&cursor=C
)

// Error is the error of one Get or one page of a List. Its message never
// contains the email or the token.
type Error struct {
	Op       string // OpGet or OpList
	Status   int    // the last HTTP status received; 0 when none was
	Attempts int    // HTTP requests made for this call
	Err      error  // ErrNotFound, ErrUnavailable, ErrBadData, ErrUnauthorized or ErrInvalidArgument
	Cause    error  // what happened, for logs; may be nil
}

// Error renders the sentinel, the operation, the status, the attempts and the cause.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	fmt.Fprintf(&b, " (%s", e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ", status %d", e.Status)
	}
	fmt.Fprintf(&b, ", %d attempt", e.Attempts)
	if e.Attempts != 1 {
		b.WriteByte('s')
	}
	b.WriteByte(')')
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel and, when there is one, the cause, so that
// errors.Is works for both (for example context.DeadlineExceeded).
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// sanitize strips what could carry PII from an error of net/http: a
// *url.Error names the request URL, which holds the email, so only its
// inner error is kept.
func sanitize(err error) error {
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	return err
}
