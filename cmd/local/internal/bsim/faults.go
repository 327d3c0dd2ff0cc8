package bsim

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// DefaultOversizedBytes is the body size of the oversized fault when
// Faults.OversizedBytes is zero.
const DefaultOversizedBytes = 32 << 20

// MaxLatencyMs bounds Faults.LatencyMs (ten minutes).
const MaxLatencyMs = 600_000

// ErrBadFaults is returned (wrapped) by SetFaults for an invalid setting.
var ErrBadFaults = errors.New("bsim: invalid faults")

// Faults are the misbehaviours the simulator injects into API requests (the
// admin paths are never affected). The zero value injects nothing. They are
// applied in this order: latency, down, hang, failNext, errorRate, redirect;
// then the request is authenticated and served, and a 200 GET answer may be
// broken by oversized, malformed, truncated or badLastUpdated (first set wins,
// in that order).
type Faults struct {
	// LatencyMs delays every API request by this many milliseconds (cut short
	// when the client gives up).
	LatencyMs int `json:"latencyMs"`
	// ErrorRate is the probability in [0, 1] that a request is answered with
	// Status instead of being served, drawn from Config.Rand.
	ErrorRate float64 `json:"errorRate"`
	// Status is the status of injected errors (errorRate, failNext); 503 when
	// zero. Must be 400..599.
	Status int `json:"status"`
	// FailNext answers the next FailNext API requests with Status, then
	// serves normally ("503 three times, then 200"). Counts down as it fires.
	FailNext int `json:"failNext"`
	// RetryAfter, when set, is sent as the Retry-After header of injected
	// errors (e.g. "3600" with Status 429).
	RetryAfter string `json:"retryAfter"`
	// Down makes System B unreachable: the simulator accepts the connection
	// and closes it without an answer (the client sees a transport error,
	// like a crashed server behind a load balancer). Not an HTTP status: use
	// ErrorRate 1 with Status 503 for that.
	Down bool `json:"down"`
	// Hang holds every API request without an answer until the client gives
	// up, the faults change (the request then proceeds under the new
	// faults), or Close is called (503).
	Hang bool `json:"hang"`
	// Redirect, when set, answers every request with 302 to this URL
	// (another host): a client must not follow it.
	Redirect string `json:"redirect"`
	// Malformed answers 200 GETs with a body that is not JSON.
	Malformed bool `json:"malformed"`
	// Truncated answers 200 GETs with the first half of the real body while
	// declaring the full Content-Length, then closes the connection (the
	// client sees an unexpected EOF).
	Truncated bool `json:"truncated"`
	// Oversized answers 200 GETs with a valid JSON object of OversizedBytes
	// bytes (a padding string), to prove the client caps the body it reads.
	Oversized bool `json:"oversized"`
	// OversizedBytes is the oversized body's size; DefaultOversizedBytes
	// when zero.
	OversizedBytes int64 `json:"oversizedBytes"`
	// BadLastUpdated answers 200 GETs with every record's lastUpdated made
	// unparsable (a System B data error).
	BadLastUpdated bool `json:"badLastUpdated"`
	// BadItem, when set, is the email of one stored customer served, in
	// gets and in list pages, with its lastUpdated made unparsable: one bad
	// record among good ones, the rest of its page intact.
	BadItem string `json:"badItem"`
	// NoPatch makes the simulator a System B API v1 without PATCH: every
	// PATCH is answered 405 (Allow: GET, PUT, DELETE), as a System B that
	// has not deployed v1.1 would.
	NoPatch bool `json:"noPatch"`
}

// validate checks f and fills its defaults.
func (f *Faults) validate() error {
	switch {
	case f.LatencyMs < 0 || f.LatencyMs > MaxLatencyMs:
		return fmt.Errorf("bsim: faults: %w: latencyMs must be 0..%d", ErrBadFaults, MaxLatencyMs)
	case !(f.ErrorRate >= 0 && f.ErrorRate <= 1): // also rejects NaN
		return fmt.Errorf("bsim: faults: %w: errorRate must be 0..1", ErrBadFaults)
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("bsim: faults: %w: status must be 400..599", ErrBadFaults)
	case f.FailNext < 0:
		return fmt.Errorf("bsim: faults: %w: failNext must not be negative", ErrBadFaults)
	case f.OversizedBytes < 0:
		return fmt.Errorf("bsim: faults: %w: oversizedBytes must not be negative", ErrBadFaults)
	}
	if f.Status == 0 {
		f.Status = 503
	}
	if f.OversizedBytes == 0 {
		f.OversizedBytes = DefaultOversizedBytes
	}
	return nil
}

// faultState is one generation of faults; release is closed when it is
// replaced, waking the requests its hang fault holds.
type faultState struct {
	f        Faults
	failNext atomic.Int64
	release  chan struct{}
}

// faultBox holds the current faults.
type faultBox struct {
	mu  sync.Mutex // serialises replacements
	cur atomic.Pointer[faultState]
}

func (b *faultBox) init() {
	f := Faults{}
	_ = f.validate() // the zero value is valid
	b.cur.Store(&faultState{f: f, release: make(chan struct{})})
}

func (b *faultBox) load() *faultState { return b.cur.Load() }

func (b *faultBox) set(f Faults) {
	st := &faultState{f: f, release: make(chan struct{})}
	st.failNext.Store(int64(f.FailNext))
	b.mu.Lock()
	old := b.cur.Swap(st)
	b.mu.Unlock()
	close(old.release)
}

// SetFaults replaces the faults in force, at once, for requests that arrive
// from now on (requests held by a hang are released to the new faults).
// Zero fields mean "no such fault"; defaults (Status 503, OversizedBytes) are
// filled in. An invalid setting is an error wrapping ErrBadFaults and changes
// nothing.
func (s *Sim) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.faults.set(f)
	return nil
}

// Faults returns the faults in force, with defaults filled in and FailNext
// as many as are left.
func (s *Sim) Faults() Faults {
	st := s.faults.load()
	f := st.f
	f.FailNext = int(max(st.failNext.Load(), 0))
	return f
}

// Stats counts API requests (admin requests are not counted) since New or
// the last ResetStats.
type Stats struct {
	Requests     int64 `json:"requests"`     // every API request received, faulted or not
	Get          int64 `json:"get"`          // GET /customers/{email} served (any status)
	List         int64 `json:"list"`         // GET /customers served (any status)
	Put          int64 `json:"put"`          // PUT or PATCH served (any status)
	Patch        int64 `json:"patch"`        // PATCH received (any status; also counted in put)
	Delete       int64 `json:"delete"`       // DELETE served
	Unauthorized int64 `json:"unauthorized"` // answered 401
	Injected     int64 `json:"injected"`     // answered (or dropped) by a fault
	// PreconditionFailed counts PUTs and PATCHes answered 412 (If-Match
	// did not match).
	PreconditionFailed int64 `json:"preconditionFailed"`
}

type counters struct {
	requests, get, list, put, patch, delete, unauthorized, injected, preconditionFailed atomic.Int64
}

// Stats returns the request counters.
func (s *Sim) Stats() Stats {
	c := &s.stats
	return Stats{
		Requests:     c.requests.Load(),
		Get:          c.get.Load(),
		List:         c.list.Load(),
		Put:          c.put.Load(),
		Delete:       c.delete.Load(),
		Unauthorized: c.unauthorized.Load(),
		Injected:     c.injected.Load(),
		Patch:        c.patch.Load(),

		PreconditionFailed: c.preconditionFailed.Load(),
	}
}

// ResetStats zeroes the request counters and the PATCH counts.
func (s *Sim) ResetStats() {
	c := &s.stats
	for _, v := range []*atomic.Int64{&c.requests, &c.get, &c.list, &c.put, &c.patch, &c.delete, &c.unauthorized, &c.injected, &c.preconditionFailed} {
		v.Store(0)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.patches = nil
}
