// Package bsim is an in-process simulator of System B API v1 (see
// docs/contracts.md) for the Docker-free local loop and for tests:
//
//   - GET /customers/{email}: 200 with the customer JSON, or 404;
//   - GET /customers?limit=N&cursor=C: {"items": [...], "nextCursor": "..." | null},
//     items ordered by merge.Key (trimmed, lower-cased email) byte-wise,
//     limit 1..1000 (default 100), an opaque cursor; with API v1.1's
//     updatedSince=<RFC 3339> only the customers whose lastUpdated is at or
//     after it (unless Config.V1Only: then 400, as a v1 System B);
//   - PUT, PATCH and DELETE /customers/{email}, so a user can change System
//     B and watch a conflict appear; PATCH (API v1.1, the write-back's
//     write) overlays fields on the stored record; both stamp lastUpdated
//     with Now unless the body gives one;
//   - API v1.1 optimistic concurrency: GET, PUT and PATCH of one customer
//     answer a strong ETag that changes on every write; a PUT or PATCH with
//     If-Match is refused with 412 when it does not match (without If-Match
//     they are unconditional, for changes by hand); PATCHes are counted per
//     customer (PatchCount, GET /_sim/stats/patches?email=...);
//   - every API request needs "Authorization: Bearer <token>", else 401;
//   - with SetWebhook, a signed POST of every change made through the API
//     (created, updated, deleted) to a receiver, retried on non-2xx.
//
// Faults (latency, error rate and status, down, hang, broken bodies,
// redirects) are switched while it runs with SetFaults or over HTTP on the
// admin paths under /_sim/, which need no token (see AdminHelp).
//
// Storage is built for a million customers: a slice of (key, pre-encoded
// JSON) sorted by key, searched by binary search, and pages written by
// appending the pre-encoded documents, never re-encoding per request.
//
// Typical wiring:
//
//	sim := bsim.New(bsim.Config{Token: token})
//	if err := sim.Load(f); err != nil { ... }    // JSON Lines of customers
//	srv, err := sim.Serve("127.0.0.1:8081")       // or http.Handler: sim.Handler()
//	defer srv.Close()
package bsim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
)

// DefaultToken is the bearer token New uses when Config.Token is empty.
const DefaultToken = "local-systemb-token"

// MaxLineBytes bounds one JSON Lines record given to Load and one PUT body.
const MaxLineBytes = 1 << 20

// ErrBadInput is returned (wrapped) by Load for input that is not JSON Lines
// of valid System B customers, or that names one customer twice.
var ErrBadInput = errors.New("bsim: bad input")

// Config configures a Sim. The zero value is usable.
type Config struct {
	// Token is the bearer token every API request must carry; DefaultToken
	// when empty.
	Token string
	// Now is the clock used for a PUT without lastUpdated; time.Now when nil.
	Now func() time.Time
	// Rand returns a number in [0, 1) and decides which requests the
	// errorRate fault fails. When nil, New uses a PCG generator seeded with
	// Seed, so a run is reproducible. It is called under a lock.
	Rand func() float64
	// Seed seeds the default Rand.
	Seed uint64
	// Latency delays every API request (never the admin paths) before the
	// faults apply: a System B that is far away or slow per request. The
	// latencyMs fault adds to it. At most MaxLatencyMs.
	Latency time.Duration
	// Sleep waits d, or until ctx ends (false); a timer when nil. Latency,
	// the latencyMs fault and the webhook's retries wait with it (tests
	// record the waits).
	Sleep func(ctx context.Context, d time.Duration) bool
	// V1Only makes the list refuse API v1.1's updatedSince with 400, as a
	// System B without it does.
	V1Only bool
}

// entry is one stored customer: its join key and its pre-encoded System B
// JSON document.
type entry struct {
	key     string
	doc     []byte
	updated int64  // lastUpdated, Unix nanoseconds (for updatedSince)
	rev     uint64 // the write that stored doc: the ETag
}

// Sim is a System B API v1 simulator. It is safe for concurrent use.
type Sim struct {
	token   atomic.Pointer[string]
	now     func() time.Time
	latency time.Duration
	sleep   func(ctx context.Context, d time.Duration) bool
	v1Only  bool
	hook    webhookState

	randMu sync.Mutex
	rand   func() float64

	mu      sync.RWMutex
	entries []entry          // sorted by key, byte-wise; keys unique
	rev     uint64           // the last revision given to a write
	patches map[string]int64 // PATCHes answered 200, by key

	faults faultBox
	stats  counters
	stop   chan struct{} // closed by Close: releases hung requests
	once   sync.Once
}

// New returns an empty simulator, with Config's defaults filled in.
func New(cfg Config) *Sim {
	s := &Sim{now: cfg.Now, rand: cfg.Rand, stop: make(chan struct{}), sleep: cfg.Sleep, v1Only: cfg.V1Only}
	s.latency = min(max(cfg.Latency, 0), MaxLatencyMs*time.Millisecond)
	s.hook.queue = make(chan notification, webhookQueue)
	if s.sleep == nil {
		s.sleep = sleepCtx
	}
	tok := cfg.Token
	if tok == "" {
		tok = DefaultToken
	}
	s.token.Store(&tok)
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		r := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
		s.rand = r.Float64
	}
	s.faults.init()
	return s
}

// sleepCtx waits d or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Latency returns the per-request latency of Config.Latency.
func (s *Sim) Latency() time.Duration { return s.latency }

// Token returns the bearer token the simulator accepts.
func (s *Sim) Token() string { return *s.token.Load() }

// SetToken makes the simulator accept tok instead of its token from now on
// (a rotation of System B's credentials). An empty token is refused.
func (s *Sim) SetToken(tok string) error {
	if strings.TrimSpace(tok) == "" {
		return errors.New("bsim: set token: the token is empty")
	}
	s.token.Store(&tok)
	return nil
}

// Close releases every request held by the hang fault (they then fail with
// 503) and makes later hang faults answer 503 at once, and stops the webhook
// sender (queued notifications are not sent). Call it before shutting
// down the HTTP server that serves Handler. It does not drop the data.
func (s *Sim) Close() {
	s.once.Do(func() { close(s.stop) })
}

// Len returns the number of customers held.
func (s *Sim) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// Customer returns a copy of the stored JSON document of the customer with
// the given email (matched by merge.Key), or false.
func (s *Sim) Customer(email string) ([]byte, bool) {
	key := merge.Key(email)
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.find(key)
	if !ok {
		return nil, false
	}
	return bytes.Clone(s.entries[i].doc), true
}

// Load reads JSON Lines of System B customers (blank lines are skipped) and
// adds them, replacing stored customers with the same key. Each line is
// decoded with systemb.UnmarshalCustomer and stored re-encoded with
// systemb.AppendCustomer; lines are decoded on every core. On any error (a
// bad line, a key that appears twice in r) nothing is changed; the error
// names the line number, never its data.
func (s *Sim) Load(r io.Reader) error {
	batches, err := decodeLines(r)
	if err != nil {
		return err
	}
	var loaded []lineEntry
	for _, b := range batches {
		if b.err != nil {
			return b.err // the first bad line: batches are in input order
		}
		loaded = append(loaded, b.out...)
	}
	slices.SortFunc(loaded, func(a, b lineEntry) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return a.line - b.line
	})
	entries := make([]entry, len(loaded))
	for i, e := range loaded {
		if i > 0 && loaded[i-1].key == e.key {
			return fmt.Errorf("bsim: load line %d: %w: same customer as line %d", e.line, ErrBadInput, loaded[i-1].line)
		}
		entries[i] = e.entry
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range entries {
		s.rev++
		entries[i].rev = s.rev
	}
	s.entries = mergeSorted(s.entries, entries)
	return nil
}

// lineEntry is a decoded customer and its line number in Load's input.
type lineEntry struct {
	entry
	line int
}

// lineBatch is a run of input lines decoded by one worker.
type lineBatch struct {
	first int      // line number of lines[0]
	lines [][]byte // the raw lines; dropped once decoded
	out   []lineEntry
	err   error // the first bad line's error
}

const batchLines = 2048

// decodeLines splits r into batches of lines and decodes them on
// GOMAXPROCS workers. It returns the batches in input order, or the
// reading error.
func decodeLines(r io.Reader) ([]*lineBatch, error) {
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *lineBatch, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var arena docArena
			for b := range work {
				b.decode(&arena)
			}
		}()
	}

	var batches []*lineBatch
	cur := &lineBatch{first: 1}
	flush := func(next int) {
		batches = append(batches, cur)
		work <- cur
		cur = &lineBatch{first: next}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		cur.lines = append(cur.lines, bytes.Clone(sc.Bytes()))
		if len(cur.lines) == batchLines {
			flush(line + 1)
		}
	}
	flush(0)
	close(work)
	wg.Wait()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bsim: load line %d: %w: %w", line+1, ErrBadInput, err)
	}
	return batches, nil
}

func (b *lineBatch) decode(arena *docArena) {
	b.out = make([]lineEntry, 0, len(b.lines))
	for i, raw := range b.lines {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		rec, err := systemb.UnmarshalCustomer(raw)
		if err != nil {
			b.err = fmt.Errorf("bsim: load line %d: %w: %w", b.first+i, ErrBadInput, err)
			break
		}
		// Clone the key: it may share the decoded record's one string of
		// all values, which would stay alive with it.
		key := strings.Clone(merge.Key(rec.Email()))
		b.out = append(b.out, lineEntry{entry{key: key, doc: arena.encode(rec), updated: rec.LastUpdated.UnixNano()}, b.first + i})
	}
	b.lines = nil
}

// Reset drops every customer.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = nil
}

// docArena hands out encoded documents from large shared chunks, so a
// million customers cost a few hundred allocations, not a million.
type docArena struct{ chunk []byte }

const arenaChunk = 1 << 20

func (a *docArena) encode(r *merge.Record) []byte {
	if cap(a.chunk)-len(a.chunk) < arenaChunk/64 {
		a.chunk = make([]byte, 0, arenaChunk)
	}
	start := len(a.chunk)
	out := systemb.AppendCustomer(a.chunk, r)
	if start > 0 && cap(out) != cap(a.chunk) {
		// It did not fit: AppendCustomer copied the chunk. Keep only this
		// document, in its own slice, and the chunk as it was.
		return bytes.Clone(out[start:])
	}
	a.chunk = out
	return out[start:len(out):len(out)]
}

// mergeSorted merges add into cur (both sorted, keys unique within each);
// add wins on equal keys. cur may be reused.
func mergeSorted(cur, add []entry) []entry {
	if len(cur) == 0 {
		return add
	}
	out := make([]entry, 0, len(cur)+len(add))
	i, j := 0, 0
	for i < len(cur) && j < len(add) {
		switch c := strings.Compare(cur[i].key, add[j].key); {
		case c < 0:
			out = append(out, cur[i])
			i++
		case c > 0:
			out = append(out, add[j])
			j++
		default:
			out = append(out, add[j])
			i++
			j++
		}
	}
	out = append(out, cur[i:]...)
	return append(out, add[j:]...)
}

// find returns the index of key, or where it would be inserted. Caller holds mu.
func (s *Sim) find(key string) (int, bool) {
	return slices.BinarySearchFunc(s.entries, key, func(e entry, k string) int { return strings.Compare(e.key, k) })
}

// put stores doc under key as a new revision and returns it; it reports
// whether the key was new. Caller holds mu for writing; the webhook
// notification is queued under it, so notifications follow the order of
// the changes.
func (s *Sim) put(key string, doc []byte, updated time.Time) (rev uint64, created bool) {
	s.rev++
	i, ok := s.find(key)
	if ok {
		s.entries[i].doc, s.entries[i].updated, s.entries[i].rev = doc, updated.UnixNano(), s.rev
		s.notify(changeUpdated, doc)
		return s.rev, false
	}
	s.entries = slices.Insert(s.entries, i, entry{key: key, doc: doc, updated: updated.UnixNano(), rev: s.rev})
	s.notify(changeCreated, doc)
	return s.rev, true
}

// ETag renders revision rev as a strong entity tag.
func ETag(rev uint64) string { return `"r` + strconv.FormatUint(rev, 10) + `"` }

// PatchCount returns how many PATCHes of the customer with the given email
// (matched by merge.Key) the simulator applied (answered 200) since it
// started or its stats were last reset.
func (s *Sim) PatchCount(email string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.patches[merge.Key(email)]
}

// remove deletes key; it reports whether it was there.
func (s *Sim) remove(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.find(key)
	if ok {
		s.notify(changeDeleted, s.entries[i].doc)
		s.entries = slices.Delete(s.entries, i, i+1)
	}
	return ok
}

// The change types of a notification.
const (
	changeCreated = "created"
	changeUpdated = "updated"
	changeDeleted = "deleted"
)

// random returns the next number of the error-rate generator.
func (s *Sim) random() float64 {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.rand()
}
