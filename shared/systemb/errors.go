package systemb

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/acme/unified-customer-service/shared/merge"
)

// The sentinel errors of the System B boundary. Every error the Client
// returns is an *Error whose Unwrap yields exactly one of them (plus, where
// known, a cause that never carries an email or a token). Each sentinel
// wraps its kind of merge.ErrorKind, so callers outside this package ask
// errors.Is(err, merge.ErrNotFound) or merge.ErrorKindOf(err) without
// knowing System B.
var (
	// ErrNotFound: System B answered 404 to a get; the customer is not in
	// System B. This is an answer, not a failure. Kind merge.ErrNotFound.
	ErrNotFound error = &sentinel{"systemb: customer not found", merge.ErrNotFound}

	// ErrUnavailable: System B could not give an answer: a timeout, a
	// transport error, 5xx or 429 after the allowed retries, a redirect (never
	// followed), another non-2xx status, an exhausted retry budget, a
	// Retry-After that does not fit the remaining time, or no time left
	// before the caller's deadline. Kind merge.ErrUnavailable.
	ErrUnavailable error = &sentinel{"systemb: System B unavailable", merge.ErrUnavailable}

	// ErrUnauthorized: System B answered 401 or 403 (again after one
	// refresh of the token, when Config.RefreshToken is set), or the token
	// source gave an empty token. Kind merge.ErrUnauthorized.
	ErrUnauthorized error = &sentinel{"systemb: System B refused the credentials", merge.ErrUnauthorized}

	// ErrInvalidArgument: the caller passed an empty email or a page size
	// outside 1..1000. No request is made. Kind merge.ErrInvalid.
	ErrInvalidArgument error = &sentinel{"systemb: invalid argument", merge.ErrInvalid}

	// ErrBadData: System B sent a document that breaks its contract
	// (invalid JSON, a wrong type, a missing or unparsable lastUpdated).
	// Nothing of such a document is used. Kind merge.ErrBadData.
	ErrBadData error = &sentinel{"systemb: data breaks the System B contract", merge.ErrBadData}

	// ErrPreconditionFailed: System B answered 412 to a PATCH: the
	// customer changed since the read whose ETag the PATCH named. Read it
	// again and decide again. Kind merge.ErrUnavailable (the write could
	// not be made now; it is never retried as is).
	ErrPreconditionFailed error = &sentinel{"systemb: the customer changed since it was read", merge.ErrUnavailable}

	// ErrNotSupported: System B answered 405 or 501 to a PATCH: it does
	// not offer API v1.1, so write-back cannot work against it until it
	// does. Kind merge.ErrInvalid (a configuration that cannot work; no
	// retry helps).
	ErrNotSupported error = &sentinel{"systemb: System B does not support PATCH (API v1.1)", merge.ErrInvalid}

	// ErrUpdatedSinceUnsupported: System B answered 400 to the first page
	// of a ListSince: it implements API v1 without the v1.1 parameter
	// updatedSince. List all instead. Kind merge.ErrInvalid.
	ErrUpdatedSinceUnsupported error = &sentinel{"systemb: System B does not support updatedSince (API v1.1)", merge.ErrInvalid}
)

// sentinel is an error of this package that unwraps to its kind.
type sentinel struct {
	msg  string
	kind merge.ErrorKind
}

// Error returns the sentinel's message.
func (s *sentinel) Error() string { return s.msg }

// Unwrap returns the sentinel's kind.
func (s *sentinel) Unwrap() error { return s.kind }

// Operations named in Error.Op and Call.Op.
const (
	OpGet   = "get"   // GET {base}/customers/{email}
	OpList  = "list"  // GET {base}/customers?limit=N&cursor=C
	OpPatch = "patch" // PATCH {base}/customers/{email} (API v1.1)
)

// Error is the error of one Get or one page of a List. Its message never
// contains the email or the token.
type Error struct {
	Op       string // OpGet, OpList or OpPatch
	Status   int    // the last HTTP status received; 0 when none was
	Attempts int    // HTTP requests made for this call
	Err      error  // one of the sentinel errors above
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
