package systemb

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CheckRetry decides whether the outcome of one attempt is worth another
// attempt. ctx is the caller's context (not the attempt's); resp is nil when
// err is not. It only classifies: attempts, backoff, Retry-After, the retry
// budget and the deadline are checked by the Client.
type CheckRetry func(ctx context.Context, resp *http.Response, err error) bool

// DefaultCheckRetry retries transport errors and timeouts, 429 and every 5xx
// but 501 (Not Implemented will not change), unless the caller's context is
// done.
func DefaultCheckRetry(ctx context.Context, resp *http.Response, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		return true
	}
	s := resp.StatusCode
	return s == http.StatusTooManyRequests || s >= 500 && s != http.StatusNotImplemented
}

// Backoff returns how long to wait before retry number retry (1 for the
// first retry).
type Backoff func(retry int) time.Duration

// ExponentialBackoff is capped exponential backoff with full jitter: a
// uniformly random wait in [0, min(limit, base*2^(retry-1))). rnd returns a
// number in [0, 1); nil means math/rand/v2.
func ExponentialBackoff(base, limit time.Duration, rnd func() float64) Backoff {
	if rnd == nil {
		rnd = defaultRand
	}
	return func(retry int) time.Duration {
		d := limit
		if retry < 1 {
			retry = 1
		}
		if retry-1 < 62 {
			if e := base << (retry - 1); e > 0 && e < limit {
				d = e
			}
		}
		return time.Duration(rnd() * float64(d))
	}
}

// retryAfter parses a Retry-After header (delta-seconds or an HTTP date) of
// resp relative to now; ok is false when there is none or it does not parse.
func retryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" { // delta-seconds
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true // out of range: huge
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// Budget limits retries across calls so that an outage of System B does not
// multiply the load on it. Request records one call (not its retries); Retry
// withdraws one retry and reports whether it was allowed. Implementations
// are safe for concurrent use.
type Budget interface {
	Request()
	Retry() bool
}

// RetryBudget is a token bucket in units of retries, after Finagle's
// RetryBudget and gRPC's retry throttling: each call deposits Ratio tokens,
// the bucket also refills at PerSecond tokens per second (the floor that
// lets a quiet client retry at all), it holds at most Max tokens and starts
// full, and a retry costs one token. Over time, retries stay below Ratio of
// the calls plus PerSecond per second.
type RetryBudget struct {
	ratio, perSecond, max float64
	now                   func() time.Time

	mu      sync.Mutex
	balance float64
	last    time.Time
}

var _ Budget = (*RetryBudget)(nil)

// NewRetryBudget returns a full RetryBudget. Zero values take the defaults:
// ratio 0.2, perSecond 1, max 10; now nil means time.Now.
func NewRetryBudget(ratio, perSecond, max float64, now func() time.Time) *RetryBudget {
	if ratio <= 0 {
		ratio = 0.2
	}
	if perSecond <= 0 {
		perSecond = 1
	}
	if max <= 0 {
		max = 10
	}
	if now == nil {
		now = time.Now
	}
	return &RetryBudget{ratio: ratio, perSecond: perSecond, max: max, now: now, balance: max, last: now()}
}

// refill adds the floor's tokens for the time elapsed; b.mu is held.
func (b *RetryBudget) refill() {
	t := b.now()
	if el := t.Sub(b.last); el > 0 {
		b.balance = min(b.max, b.balance+el.Seconds()*b.perSecond)
	}
	b.last = t
}

// Request deposits Ratio tokens.
func (b *RetryBudget) Request() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.balance = min(b.max, b.balance+b.ratio)
}

// Retry withdraws one token; false when fewer than one is left.
func (b *RetryBudget) Retry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	if b.balance < 1-1e-9 { // tolerate float sums such as 10 x 0.1
		return false
	}
	b.balance = max(0, b.balance-1)
	return true
}

// Balance returns the tokens left (for tests and metrics).
func (b *RetryBudget) Balance() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	return b.balance
}
