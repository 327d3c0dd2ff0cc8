package systemb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// Defaults filled by New.
const (
	DefaultTimeout         = 2 * time.Second
	DefaultMaxAttempts     = 3
	DefaultDeadlineReserve = 250 * time.Millisecond
	DefaultMaxBodyBytes    = 1 << 20  // one customer
	DefaultMaxPageBytes    = 16 << 20 // one list page
	DefaultMaxRetryWait    = 5 * time.Second
	DefaultBackoffBase     = 50 * time.Millisecond
	DefaultBackoffCap      = time.Second
	DefaultPageSize        = 1000
	MaxPageSize            = 1000
)

// minAttemptTime is the least time a retry must have left after its wait;
// a retry with less could not get an answer and only adds load.
const minAttemptTime = 50 * time.Millisecond

// Call describes one HTTP request to System B, for Config.OnCall (one
// system_b.latency sample per call). Status is 0 when no response came.
type Call struct {
	Op       string // OpGet, OpList or OpPatch
	Attempt  int    // 1 for the first request of a Get or a page
	Status   int
	Duration time.Duration
	Err      error // nil on success (200, or 404 on a get); else an *Error
}

// Config configures a Client. Only BaseURL and Token are required.
type Config struct {
	// BaseURL is System B's absolute http or https URL, optionally with a
	// path prefix ("https://b.example.com/api/v1").
	BaseURL string
	// Token gives the bearer token (a static one, or a cached Secrets
	// Manager lookup).
	Token TokenFunc
	// RefreshToken, when set, reads the token again bypassing any cache of
	// Token (and should update that cache). When System B refuses a token
	// (401 or 403), the call refreshes it once and makes one more request
	// with the new token; refused again, it fails with ErrUnauthorized.
	// Calls refused with a token read before a refresh completed share that
	// refresh instead of making their own, so a rotation costs one refresh,
	// not one per call in flight. Nil (the default, as for a static token):
	// a refusal is final.
	RefreshToken TokenFunc
	// OnTokenRefresh is called after every refresh RefreshToken made (not
	// those shared), with the refreshing call's context and the refresh's
	// error (nil on success), for a metric and a log line. It must be safe
	// for concurrent use (default: nothing).
	OnTokenRefresh func(ctx context.Context, err error)
	// Timeout bounds each HTTP request (default 2s). It is further cut to
	// the caller's deadline minus DeadlineReserve.
	Timeout time.Duration
	// DeadlineReserve is kept free before the caller's context deadline for
	// the caller to answer (default 250ms). When less than nothing is left,
	// a call fails with ErrUnavailable without a request.
	DeadlineReserve time.Duration
	// HTTPClient sends the requests (default: a new client over
	// NewTransport()). To trace calls, pass an instrumented client whose
	// transport ends in NewTransport(): a client with a nil Transport uses
	// http.DefaultTransport, which keeps only 2 idle connections per host.
	// The Client uses a copy whose CheckRedirect never follows redirects: a
	// 3xx is a System B failure. It must not retry by itself.
	HTTPClient *http.Client
	// MaxAttempts bounds the requests of one Get or one page (default 3).
	MaxAttempts int
	// Backoff gives the wait before a retry (default
	// ExponentialBackoff(50ms, 1s, Rand)).
	Backoff Backoff
	// Rand returns a number in [0, 1) for the default Backoff's jitter
	// (default math/rand/v2).
	Rand func() float64
	// CheckRetry classifies outcomes as retryable (default DefaultCheckRetry).
	CheckRetry CheckRetry
	// Budget limits retries across calls (default NewRetryBudget(0.2, 1, 10, Now)).
	Budget Budget
	// MaxRetryWait caps a single wait before a retry, a Retry-After included
	// (default 5s). A wait that does not fit under it or before the
	// deadline ends the call with ErrUnavailable instead.
	MaxRetryWait time.Duration
	// MaxBodyBytes caps the body of a get (default 1 MiB), MaxPageBytes the
	// body of a list page (default 16 MiB). A longer body is ErrBadData.
	MaxBodyBytes, MaxPageBytes int64
	// DisablePrefetch stops the Pager from fetching the next page while the
	// current one is consumed.
	DisablePrefetch bool
	// Now and Sleep are the clock (defaults time.Now and a timer that stops
	// when ctx is done). Now must agree with the clock of context deadlines.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// OnCall, when set, is called after every HTTP request (from the
	// Pager's prefetch goroutine too, so it must be safe for concurrent use).
	OnCall func(Call)
}

// Client reads customers from System B API v1 and, through Patch only (the
// opt-in write-back), writes changed fields with API v1.1's conditional
// PATCH. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    string // BaseURL without a trailing slash
	hc      *http.Client
	refresh *refresher // nil without Config.RefreshToken
}

// New validates cfg, fills its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("systemb: new client: BaseURL must be an absolute http or https URL without query, fragment or credentials")
	}
	if cfg.Token == nil {
		return nil, errors.New("systemb: new client: Token is required")
	}
	if cfg.Timeout < 0 || cfg.DeadlineReserve < 0 || cfg.MaxAttempts < 0 || cfg.MaxRetryWait < 0 || cfg.MaxBodyBytes < 0 || cfg.MaxPageBytes < 0 {
		return nil, errors.New("systemb: new client: negative Timeout, DeadlineReserve, MaxAttempts, MaxRetryWait or size cap")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.DeadlineReserve, DefaultDeadlineReserve)
	def(&cfg.MaxRetryWait, DefaultMaxRetryWait)
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxPageBytes == 0 {
		cfg.MaxPageBytes = DefaultMaxPageBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.Backoff == nil {
		cfg.Backoff = ExponentialBackoff(DefaultBackoffBase, DefaultBackoffCap, cfg.Rand)
	}
	if cfg.CheckRetry == nil {
		cfg.CheckRetry = DefaultCheckRetry
	}
	if cfg.Budget == nil {
		cfg.Budget = NewRetryBudget(0, 0, 0, cfg.Now)
	}
	if cfg.OnTokenRefresh == nil {
		cfg.OnTokenRefresh = func(context.Context, error) {}
	}
	hc := &http.Client{Transport: NewTransport()}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.HTTPClient = hc
	c := &Client{cfg: cfg, base: strings.TrimRight(u.String(), "/"), hc: hc}
	if cfg.RefreshToken != nil {
		c.refresh = newRefresher(cfg.RefreshToken, cfg.OnTokenRefresh)
	}
	return c, nil
}

func defaultRand() float64 { return rand.Float64() }

// MaxIdleConnsPerHost is the idle connections to System B that
// NewTransport keeps.
const MaxIdleConnsPerHost = 32

// NewTransport returns the transport for System B: a clone of
// http.DefaultTransport (proxy settings, dial and TLS timeouts, HTTP/2)
// keeping MaxIdleConnsPerHost idle connections per host instead of 2, so
// that concurrent Gets (sync) and the pager's prefetch reuse connections
// rather than opening new ones. Build one per Client and wrap it, not
// replace it, to instrument calls.
func NewTransport() *http.Transport {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = new(http.Transport)
	}
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	return t
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get reads one customer: GET {base}/customers/{url.PathEscape(email)}.
// A 404 is ErrNotFound. The record returned is checked against the contract
// and must carry the requested email's join key, else ErrBadData. Every
// error is an *Error.
func (c *Client) Get(ctx context.Context, email string) (*merge.Record, error) {
	r, _, err := c.GetWithETag(ctx, email)
	return r, err
}

// GetWithETag is Get that also returns the ETag System B API v1.1 answered
// with the record ("" when System B sent none, as v1 does): the version to
// name in Patch's If-Match.
func (c *Client) GetWithETag(ctx context.Context, email string) (*merge.Record, string, error) {
	return c.customer(ctx, OpGet, email, &request{})
}

// Patch writes the fields of set to the customer with the given email:
// PATCH {base}/customers/{email} (API v1.1) with a body of those fields
// only (AppendPatch: never email, never lastUpdated; System B stamps its
// own lastUpdated) and If-Match: etag, the ETag of the read the change was
// decided on. It returns the record System B stored and its new ETag.
// Errors (all *Error): ErrPreconditionFailed (412: the customer changed
// since that read; read it again), ErrNotFound (404), ErrNotSupported (405
// or 501: a System B without API v1.1), ErrInvalidArgument (an empty email
// or etag, an empty set: no request is made), and those of Get. Retries
// follow Get's policy; they are safe because of If-Match: a PATCH that was
// applied but whose answer was lost is answered 412 when retried.
func (c *Client) Patch(ctx context.Context, email, etag string, values *merge.Record, set FieldSet) (*merge.Record, string, error) {
	switch {
	case strings.TrimSpace(etag) == "":
		return nil, "", &Error{Op: OpPatch, Err: ErrInvalidArgument, Cause: errors.New("no ETag to send in If-Match: an unconditional write is never made")}
	case set.Empty():
		return nil, "", &Error{Op: OpPatch, Err: ErrInvalidArgument, Cause: errors.New("no field to write")}
	}
	return c.customer(ctx, OpPatch, email, &request{method: http.MethodPatch, body: AppendPatch(nil, values, set), ifMatch: etag})
}

// customer makes rq (a get or a patch) of one customer and decodes the
// customer document of the answer.
func (c *Client) customer(ctx context.Context, op, email string, rq *request) (*merge.Record, string, error) {
	if t := strings.TrimSpace(email); t == "" || t == "." || t == ".." {
		return nil, "", &Error{Op: op, Err: ErrInvalidArgument, Cause: errors.New("email is empty or a dot segment")}
	}
	var buf bytes.Buffer
	attempts, err := c.fetch(ctx, op, c.base+"/customers/"+url.PathEscape(email), c.cfg.MaxBodyBytes, &buf, rq)
	if err != nil {
		return nil, "", err
	}
	r, err := UnmarshalCustomer(buf.Bytes())
	if err == nil && merge.Key(r.Email()) != merge.Key(email) {
		err = errors.New("record is not the requested customer")
	}
	if err != nil {
		return nil, "", &Error{Op: op, Status: http.StatusOK, Attempts: attempts, Err: ErrBadData, Cause: err}
	}
	return r, rq.etag, nil
}

// request is what one logical call sends beyond its URL: the method (GET
// when empty), a JSON body and an If-Match header (when not empty). etag
// receives the ETag header of the 200 answer.
type request struct {
	method  string
	body    []byte
	ifMatch string
	etag    string
}

// outcome is the result of one attempt.
type outcome struct {
	err   *Error // nil on success
	retry bool   // worth another attempt
	wait  time.Duration
	// hasWait says wait came from Retry-After.
	hasWait bool
}

// fetch makes one logical request of u with retries (a GET, or rq's) and
// leaves the body of its 200 answer in buf and its ETag in rq.etag. It
// returns the number of requests made; errors are *Error.
func (c *Client) fetch(ctx context.Context, op, u string, limit int64, buf *bytes.Buffer, rq *request) (int, error) {
	if rq == nil {
		rq = &request{}
	}
	c.cfg.Budget.Request()
	fail := func(attempts, status int, sentinel, cause error) (int, error) {
		return attempts, &Error{Op: op, Status: status, Attempts: attempts, Err: sentinel, Cause: cause}
	}
	// Noted before reading the token: a refresh that completes after this
	// point may hold a newer token than the one read.
	gen := c.refresh.generation()
	tok, err := c.cfg.Token(ctx)
	if err != nil {
		return fail(0, 0, ErrUnavailable, fmt.Errorf("token source: %w", err))
	}
	if tok == "" {
		return fail(0, 0, ErrUnauthorized, errors.New("token source gave an empty token"))
	}
	maxAttempts := c.cfg.MaxAttempts
	refreshed := false
	for attempt := 1; ; attempt++ {
		actx, cancel, timeout, err := c.attemptContext(ctx)
		if err != nil {
			return fail(attempt-1, 0, ErrUnavailable, err)
		}
		o := c.attempt(ctx, actx, op, u, tok, timeout, limit, buf, attempt, rq)
		cancel()
		if o.err == nil {
			return attempt, nil
		}
		if o.err.Err == ErrUnauthorized && c.refresh != nil && !refreshed {
			// A rotated token: read it again (or take the one a concurrent
			// call just read) and ask once more. The extra request is not a
			// retry of a failing System B: no backoff, no budget.
			refreshed = true
			if tok, err = c.refresh.fresh(ctx, gen); err != nil {
				o.err.Cause = fmt.Errorf("token refresh: %w", err)
				return attempt, o.err
			}
			if tok == "" {
				o.err.Cause = errors.New("token refresh gave an empty token")
				return attempt, o.err
			}
			maxAttempts++
			continue
		}
		if !o.retry || attempt >= maxAttempts {
			return attempt, o.err
		}
		wait := c.cfg.Backoff(attempt)
		if o.hasWait && o.wait > wait {
			wait = o.wait
		}
		if err := c.fits(ctx, wait); err != nil {
			o.err.Cause = fmt.Errorf("%w; no retry: %w", o.err.Cause, err)
			return attempt, o.err
		}
		if !c.cfg.Budget.Retry() {
			o.err.Cause = fmt.Errorf("%w; no retry: retry budget exhausted", o.err.Cause)
			return attempt, o.err
		}
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return fail(attempt, o.err.Status, ErrUnavailable, fmt.Errorf("waiting to retry: %w", err))
		}
	}
}

// attemptContext derives the context of one request: it ends after
// Timeout or at the caller's deadline minus DeadlineReserve, whichever comes
// first. It fails when nothing is left or ctx is done.
func (c *Client) attemptContext(ctx context.Context) (context.Context, context.CancelFunc, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		end := dl.Add(-c.cfg.DeadlineReserve)
		left := end.Sub(c.cfg.Now())
		if left <= 0 {
			return nil, nil, 0, fmt.Errorf("no time left before the deadline (reserve %v): %w", c.cfg.DeadlineReserve, context.DeadlineExceeded)
		}
		if left < c.cfg.Timeout {
			actx, cancel := context.WithDeadline(ctx, end)
			return actx, cancel, left, nil
		}
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	return actx, cancel, c.cfg.Timeout, nil
}

// fits reports (as an error) whether waiting d still leaves a retry its
// minimum time before the deadline and d is within MaxRetryWait.
func (c *Client) fits(ctx context.Context, d time.Duration) error {
	if d > c.cfg.MaxRetryWait {
		return fmt.Errorf("wait of %v is over the %v cap", d, c.cfg.MaxRetryWait)
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := dl.Sub(c.cfg.Now()) - c.cfg.DeadlineReserve - d; left < minAttemptTime {
			return fmt.Errorf("wait of %v does not fit before the deadline", d)
		}
	}
	return nil
}

// attempt makes one HTTP request and classifies its outcome.
// actx is the request's context, derived from ctx, the caller's.
func (c *Client) attempt(ctx, actx context.Context, op, u, tok string, timeout time.Duration, limit int64, buf *bytes.Buffer, n int, rq *request) (o outcome) {
	start := c.cfg.Now()
	status := 0
	defer func() {
		if c.cfg.OnCall != nil {
			var err error
			if o.err != nil && !errors.Is(o.err.Err, ErrNotFound) {
				err = o.err
			}
			c.cfg.OnCall(Call{Op: op, Attempt: n, Status: status, Duration: c.cfg.Now().Sub(start), Err: err})
		}
	}()
	fail := func(sentinel, cause error) outcome {
		return outcome{err: &Error{Op: op, Status: status, Attempts: n, Err: sentinel, Cause: cause}}
	}
	transportFailure := func(err error) outcome {
		err = sanitize(err)
		if actx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("request timed out after %v: %w", timeout, err)
		}
		o := fail(ErrUnavailable, err)
		o.retry = c.cfg.CheckRetry(ctx, nil, err)
		return o
	}
	method, body := http.MethodGet, io.Reader(nil)
	if rq.method != "" {
		method = rq.method
	}
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(actx, method, u, body)
	if err != nil {
		return fail(ErrUnavailable, errors.New("cannot build the request"))
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rq.ifMatch != "" {
		req.Header.Set("If-Match", rq.ifMatch)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportFailure(err)
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	switch {
	case status == http.StatusOK:
	case status == http.StatusNotFound && (op == OpGet || op == OpPatch):
		drain(resp.Body)
		return fail(ErrNotFound, nil)
	case status == http.StatusPreconditionFailed && op == OpPatch:
		drain(resp.Body)
		return fail(ErrPreconditionFailed, nil)
	case (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) && op == OpPatch:
		drain(resp.Body)
		return fail(ErrNotSupported, fmt.Errorf("status %d to PATCH: System B does not offer API v1.1", status))
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		drain(resp.Body)
		return fail(ErrUnauthorized, nil)
	case status >= 300 && status < 400:
		drain(resp.Body)
		return fail(ErrUnavailable, errors.New("redirect not followed"))
	default:
		drain(resp.Body)
		o := fail(ErrUnavailable, fmt.Errorf("unexpected status %q", resp.Status))
		if status < 200 || status > 299 {
			o.retry = c.cfg.CheckRetry(ctx, resp, nil)
			o.wait, o.hasWait = retryAfter(resp, c.cfg.Now())
		} else {
			o.err.Err = ErrBadData // a 2xx other than 200 breaks the contract
		}
		return o
	}
	if resp.ContentLength > limit {
		return fail(ErrBadData, fmt.Errorf("body of %d bytes is over the %d-byte cap", resp.ContentLength, limit))
	}
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		if actx.Err() != nil {
			return transportFailure(err)
		}
		return fail(ErrBadData, fmt.Errorf("truncated body: %w", sanitize(err)))
	}
	if int64(buf.Len()) > limit {
		return fail(ErrBadData, fmt.Errorf("body is over the %d-byte cap", limit))
	}
	rq.etag = resp.Header.Get("ETag")
	return outcome{}
}

// drain reads a little of an unwanted body so the connection can be reused.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 4<<10)) }
