// Package systemb is the adapter over System B, the external near-real-time
// REST API (v1, see docs/contracts.md): its JSON codec, and a client with
// per-call deadlines, bounded retries, a retry budget and a streaming pager.
// The client reads; its one write is Client.Patch, API v1.1's conditional
// PATCH (If-Match with the ETag of GetWithETag), used only by the opt-in
// write-back (WRITE_BACK=systemB). Vendor errors become the sentinel errors
// of this package at the boundary.
//
// # Calls
//
// Client.Get reads one customer; Client.List returns a Pager over all of
// them in join order. The Pager decodes a page's items one by one: an item
// that is not a valid customer is yielded as a *merge.BadRecordError in
// its place (position "page N item M", a reason naming the field, never its
// value) and the Pager carries on; only a page whose envelope does not
// parse ends it. Every HTTP request gets min(Config.Timeout, the
// caller's deadline minus Config.DeadlineReserve); with nothing left the
// call fails at once. Redirects are never followed. Config.OnCall sees
// every request (for the system_b.latency metric).
//
// # Retries
//
// Retries happen in this layer only: up to Config.MaxAttempts requests per
// Get or per page, on transport errors, timeouts, 5xx (but 501) and 429
// (Config.CheckRetry), after a capped exponential backoff with full jitter
// or the server's Retry-After when longer. A wait that does not fit under
// Config.MaxRetryWait or before the deadline ends the call instead, and so
// does an empty retry budget (Config.Budget, a token bucket: retries stay
// under 20% of calls plus one per second), so that an outage of System B is
// not multiplied by our retries.
//
// # Errors
//
// Every error is an *Error (Op, Status, Attempts) wrapping one sentinel,
// and through it the sentinel's merge.ErrorKind (ErrInvalidArgument is
// merge.ErrInvalid, the others their namesakes): ErrNotFound (404 on a
// get), ErrUnauthorized (401, 403, empty token; with Config.RefreshToken,
// after one refresh of the token and one more request), ErrBadData (the
// contract is broken: invalid JSON, a truncated body, a body over
// Config.MaxBodyBytes or Config.MaxPageBytes, a got record without a valid
// lastUpdated or email, a get answered with another customer, a list page
// out of join order, a 2xx other than 200), ErrInvalidArgument (an
// empty email, a bad page size) or ErrUnavailable (everything else). A body
// over the cap is ErrBadData rather than ErrUnavailable because no customer
// or page can legitimately be that large: it is a contract breach, and
// retrying would fetch it again; ErrBadData is never retried. Messages
// never contain the email or the token; net/http errors are stripped of the
// request URL.
//
// # Codec
//
// AppendCustomer and UnmarshalCustomer are driven by the merge.Fields table.
// The decoder is strict (a member of the table given twice is an error;
// anything after the document too) and allocation-lean: one string
// allocation per record holds all its values.
package systemb
