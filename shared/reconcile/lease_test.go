package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// fakeClock is the injectable clock of the lease tests: Now, and tickers
// that fire only when Advance moves the time past them (dropping ticks a
// slow receiver missed, as a time.Ticker does).
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
}

type fakeTicker struct {
	c       chan time.Time
	every   time.Duration
	next    time.Time
	stopped bool
}

func newClock(at time.Time) *fakeClock { return &fakeClock{now: at} }

// Now is the reconciler's Now.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Tick is the reconciler's Tick.
func (c *fakeClock) Tick(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTicker{c: make(chan time.Time, 1), every: d, next: c.now.Add(d)}
	c.tickers = append(c.tickers, t)
	return t.c, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		t.stopped = true
	}
}

// Advance moves the time by d and fires the tickers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.tickers {
		for !t.stopped && !t.next.After(c.now) {
			select {
			case t.c <- t.next:
			default:
			}
			t.next = t.next.Add(t.every)
		}
	}
}

// claimJSON is what the tests read of claim.json.
type claimJSON struct {
	Token        string    `json:"token"`
	ExpiresAt    time.Time `json:"expiresAt"`
	Released     bool      `json:"released"`
	TookOverFrom string    `json:"tookOverFrom"`
}

const claimKey = "2026-11-24/cdc73f9d-aea9-11e3-9d5a-835b769c0d9c/claim.json"

func readClaim(t *testing.T, st report.Store) claimJSON {
	t.Helper()
	b, _, err := st.Get(context.Background(), claimKey)
	if err != nil {
		t.Fatalf("claim.json: %v", err)
	}
	var c claimJSON
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("claim.json: %v", err)
	}
	return c
}

// watched wraps a store: it reports every write of claim.json on writes,
// and can be killed (every later call fails, as for a process that is
// gone) or made to fail its claim renewals.
type watched struct {
	report.Store
	writes chan error

	mu           sync.Mutex
	dead         bool
	failRenewals error
}

var errKilled = errors.New("test: the process was killed")

func watch(st report.Store) *watched { return &watched{Store: st, writes: make(chan error, 256)} }

func (w *watched) state() (dead bool, failRenewals error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dead, w.failRenewals
}

func (w *watched) kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dead = true
}

func (w *watched) setFailRenewals(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failRenewals = err
}

func (w *watched) PutIfAbsent(ctx context.Context, key string, body io.ReadSeeker, ct string) (string, error) {
	if dead, _ := w.state(); dead {
		return "", errKilled
	}
	tag, err := w.Store.PutIfAbsent(ctx, key, body, ct)
	if strings.HasSuffix(key, "claim.json") {
		w.writes <- err
	}
	return tag, err
}

func (w *watched) Replace(ctx context.Context, key string, body io.ReadSeeker, ct, tag string) (string, error) {
	dead, fail := w.state()
	if dead {
		return "", errKilled
	}
	var newTag string
	err := fail
	if err == nil {
		newTag, err = w.Store.Replace(ctx, key, body, ct, tag)
	}
	if strings.HasSuffix(key, "claim.json") {
		w.writes <- err
	}
	return newTag, err
}

func (w *watched) Get(ctx context.Context, key string) ([]byte, string, error) {
	if dead, _ := w.state(); dead {
		return nil, "", errKilled
	}
	return w.Store.Get(ctx, key)
}

// recv waits for a value; the bound only keeps a broken test from hanging.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}

// gateB lists the systems' System B but holds after `after` records until
// released, or its context ends (then it fails with the context's error).
type gateB struct {
	next    reconcile.SystemB
	after   int
	reached chan struct{}
	release chan struct{}
}

func newGate(next reconcile.SystemB, after int) *gateB {
	return &gateB{next: next, after: after, reached: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateB) List(ctx context.Context) iter.Seq2[*merge.Record, error] {
	return func(yield func(*merge.Record, error) bool) {
		n := 0
		for r, err := range g.next.List(ctx) {
			if n == g.after {
				close(g.reached)
				select {
				case <-ctx.Done():
					yield(nil, fmt.Errorf("gate: %w", ctx.Err()))
					return
				case <-g.release:
				}
			}
			n++
			if !yield(r, err) {
				return
			}
		}
	}
}

// world is the shared report store, the systems and the clock of a lease
// test; each delivery gets its own reconciler over them.
type world struct {
	t     *testing.T
	clock *fakeClock
	store report.Store
	dir   string
	sys   *testkit.Systems
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	return &world{t: t, clock: newClock(event.Time), store: &report.FileStore{Dir: dir}, dir: dir, sys: testkit.NewSystems(t, 300)}
}

// delivery returns a reconciler for one delivery with the production
// lease (LeaseTTL zero: DefaultLeaseTTL) on the fake clock.
func (w *world) delivery(st report.Store, b reconcile.SystemB) *reconcile.Reconciler {
	if b == nil {
		b = w.sys.ReconcileB()
	}
	return &reconcile.Reconciler{
		A: w.sys.ReconcileA(), B: b, Reports: st,
		Log:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Metrics: testkit.NewMetrics(), Now: w.clock.Now, Tick: w.clock.Tick, TempDir: w.t.TempDir(),
	}
}

type result struct {
	sum reconcile.Summary
	err error
}

// start runs r in the background with a Lambda context of 900 s (the
// function's Timeout) and returns its result channel and its cancel.
func start(r *reconcile.Reconciler) (<-chan result, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 900*time.Second)
	done := make(chan result, 1)
	go func() {
		s, err := r.Run(ctx, event)
		done <- result{s, err}
	}()
	return done, cancel
}

// startGated starts a delivery over st whose System B holds after 100
// records, waits until it lists System B (its claim is written by then)
// and returns the gate, its result channel and its cancel, and the error
// of its claim write.
func (w *world) startGated(st *watched) (*gateB, <-chan result, context.CancelFunc, error) {
	w.t.Helper()
	gate := newGate(w.sys.ReconcileB(), 100)
	done, cancel := start(w.delivery(st, gate))
	w.t.Cleanup(cancel)
	recv(w.t, gate.reached, "the run to list System B")
	return gate, done, cancel, recv(w.t, st.writes, "the claim")
}

// liveUntil advances the clock to elapsed (from the event's time) in
// heartbeat steps, waiting at each for the running delivery's renewal.
func (w *world) liveUntil(st *watched, elapsed time.Duration) {
	w.t.Helper()
	step := reconcile.DefaultLeaseTTL / 3
	for w.clock.Now().Sub(event.Time) < elapsed {
		w.clock.Advance(step)
		if err := recv(w.t, st.writes, "a lease renewal"); err != nil {
			w.t.Fatalf("renewal at +%s: %v", w.clock.Now().Sub(event.Time), err)
		}
		if c := readClaim(w.t, w.store); !c.ExpiresAt.Equal(w.clock.Now().Add(reconcile.DefaultLeaseTTL)) {
			w.t.Fatalf("at +%s the lease expires at %s, want now + %s", w.clock.Now().Sub(event.Time), c.ExpiresAt, reconcile.DefaultLeaseTTL)
		}
	}
}

func (w *world) exists(rel ...string) bool {
	_, err := os.Stat(filepath.Join(append([]string{w.dir, "2026-11-24", event.ID}, rel...)...))
	return err == nil
}

// TestLeaseKilledRunIsTakenOver: production timings. The function's
// Timeout is 900 s; the run is killed at +240 s (out of memory, say);
// Lambda retries the failed invocation 60 s after the failure and again
// 120 s after that. The first retry finds the lease expired (it was last
// renewed at the kill) and no report: it takes the event over and writes
// the night's report. With the old deadline claim, both retries would have
// answered inProgress (the 900 s deadline was still ahead) and the night
// would have had no report.
func TestLeaseKilledRunIsTakenOver(t *testing.T) {
	tests := []struct {
		name     string
		killedAt time.Duration
	}{
		{"killed at +240 s", 240 * time.Second},
		{"killed right after its claim", 0},
		{"killed just before the end of its window", 870 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			dying := watch(w.store)
			_, done, cancel, err := w.startGated(dying)
			if err != nil {
				t.Fatal(err)
			}
			w.liveUntil(dying, tc.killedAt)
			dead := readClaim(t, w.store)

			dying.kill()
			cancel()
			if r := recv(t, done, "the killed run to end"); r.err == nil {
				t.Fatalf("the killed run succeeded: %+v", r.sum)
			}
			if w.exists("summary.json") || w.exists("attempts", dead.Token, "summary.json") {
				t.Fatal("the killed run left a report")
			}

			w.clock.Advance(60 * time.Second) // Lambda's first retry
			retry := w.delivery(w.store, nil)
			sum, err := retry.Run(context.Background(), event)
			if err != nil || sum.Status != reconcile.StatusRan || !sum.Complete {
				t.Fatalf("first retry: %s complete %v, %v; want it to take over and complete", sum.Status, sum.Complete, err)
			}
			if sum.TookOverFrom != dead.Token || sum.Attempt == dead.Token {
				t.Errorf("attempt %q took over from %q, want a new attempt taking over %q", sum.Attempt, sum.TookOverFrom, dead.Token)
			}
			if !w.exists("summary.json") || !w.exists("attempts", sum.Attempt, "details-0001.jsonl.gz") {
				t.Error("no report after the takeover")
			}

			w.clock.Advance(120 * time.Second) // a second delivery, where Lambda's second retry would be
			again, err := w.delivery(w.store, nil).Run(context.Background(), event)
			if err != nil || again.Status != reconcile.StatusDuplicate || again.Attempt != sum.Attempt {
				t.Errorf("second retry: %s attempt %q, %v; want the stored report", again.Status, again.Attempt, err)
			}
		})
	}
}

// TestLeaseLiveRunAnswersInProgress: a duplicate delivery while the run is
// alive (its lease renewed every 10 s) answers inProgress without scanning,
// however long the run has been going; the run then completes.
func TestLeaseLiveRunAnswersInProgress(t *testing.T) {
	for _, at := range []time.Duration{0, 100 * time.Second, 600 * time.Second} {
		t.Run(fmt.Sprintf("at +%s", at), func(t *testing.T) {
			w := newWorld(t)
			st := watch(w.store)
			gate, done, _, err := w.startGated(st)
			if err != nil {
				t.Fatal(err)
			}
			w.liveUntil(st, at)

			b := &countingB{next: w.sys.ReconcileB()}
			dup, err := w.delivery(w.store, b).Run(context.Background(), event)
			if err != nil || dup.Status != reconcile.StatusInProgress || b.lists.Load() != 0 {
				t.Errorf("duplicate delivery: %s, %v, %d scans; want inProgress without a scan", dup.Status, err, b.lists.Load())
			}

			close(gate.release)
			r := recv(t, done, "the run to end")
			if r.err != nil || r.sum.Status != reconcile.StatusRan || !r.sum.Complete {
				t.Errorf("the live run: %s complete %v, %v", r.sum.Status, r.sum.Complete, r.err)
			}
		})
	}
}

// TestLeaseLostStopsTheRun: the run's lease is taken from it (by a
// delivery that found it expired: the run could not renew in time), or
// its renewals keep failing until it would expire. The run stops at its
// next heartbeat, cancels its scan and writes no report.
func TestLeaseLostStopsTheRun(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, w *world, st *watched)
		ticks   int // heartbeats until the run notices
	}{
		{"another delivery took the claim", func(t *testing.T, w *world, _ *watched) {
			_, tag, err := w.store.Get(context.Background(), claimKey)
			if err != nil {
				t.Fatal(err)
			}
			now := w.clock.Now()
			taker := fmt.Sprintf(`{"eventId":%q,"token":"taker","startedAt":%q,"expiresAt":%q}`, event.ID, now.Format(time.RFC3339), now.Add(30*time.Second).Format(time.RFC3339))
			if _, err := w.store.Replace(context.Background(), claimKey, strings.NewReader(taker), "application/json", tag); err != nil {
				t.Fatal(err)
			}
		}, 1},
		{"renewals fail until the lease would expire", func(_ *testing.T, _ *world, st *watched) {
			st.setFailRenewals(errors.New("s3: 503 SlowDown"))
		}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			st := watch(w.store)
			_, done, _, err := w.startGated(st)
			if err != nil {
				t.Fatal(err)
			}
			w.liveUntil(st, 120*time.Second)
			mine := readClaim(t, w.store).Token

			tc.breakIt(t, w, st)
			for range tc.ticks {
				w.clock.Advance(reconcile.DefaultLeaseTTL / 3)
				recv(t, st.writes, "a renewal attempt")
			}
			r := recv(t, done, "the run to stop") // the gate never opens: only the lost lease ends the run
			if !errors.Is(r.err, reconcile.ErrLeaseLost) || r.sum.Status != reconcile.StatusLeaseLost {
				t.Fatalf("the run: %s, %v; want it stopped with ErrLeaseLost", r.sum.Status, r.err)
			}
			if w.exists("summary.json") || w.exists("attempts", mine) {
				t.Error("a run that lost its lease wrote a report")
			}
		})
	}
}

// flakyS3 is an S3 server (gofakes3) in front of which the first PUT of
// claim.json numbered in failPuts is applied and then answered 500: the
// write landed but the client saw an error, so the SDK retries it and the
// retry fails its condition (412) against the client's own write.
func flakyS3(t *testing.T, failPuts ...int) (report.Store, func() int) {
	t.Helper()
	var mu sync.Mutex
	puts := 0
	fail := map[int]bool{}
	for _, n := range failPuts {
		fail[n] = true
	}
	st := s3Store(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "claim.json") {
				next.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			puts++
			n := puts
			mu.Unlock()
			if !fail[n] {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>`)
		})
	})
	return st, func() int { mu.Lock(); defer mu.Unlock(); return puts }
}

// s3Store serves a fresh in-process S3 (gofakes3 over real HTTP on
// 127.0.0.1, behind wrap) and returns a store on bucket "reports". The
// client retries like the SDK's default, without the backoff's sleeps.
func s3Store(t *testing.T, wrap func(http.Handler) http.Handler) report.Store {
	t.Helper()
	srv := httptest.NewServer(wrap(gofakes3.New(s3mem.New()).Server()))
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("reports")}); err != nil {
		t.Fatal(err)
	}
	st, err := report.Open("s3://reports/runs", client)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestLeaseRecognisesItsOwnRetriedWrite: a claim write lands but its answer
// is lost (here: a 500 after the write); the SDK retries it and the retry
// fails its condition (412) against the delivery's own write. Re-reading
// the claim and finding its own token, the delivery knows the claim is its
// own and runs, instead of answering inProgress to itself.
func TestLeaseRecognisesItsOwnRetriedWrite(t *testing.T) {
	expired := fmt.Sprintf(`{"eventId":%q,"token":"dead","startedAt":"2026-11-24T03:00:00Z","expiresAt":"2026-11-24T03:10:00Z"}`, event.ID)
	tests := []struct {
		name    string
		failPut int    // the PUT of claim.json answered 500 after landing
		before  string // a claim already there (written by PUT 1)
		renew   bool   // the failed PUT is the first renewal
	}{
		{"the claim (If-None-Match: *)", 1, "", false},
		{"the takeover of an expired claim (If-Match)", 2, expired, false},
		{"a renewal (If-Match)", 2, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			s3st, puts := flakyS3(t, tc.failPut)
			w.store = s3st
			if tc.before != "" {
				if _, err := s3st.PutIfAbsent(context.Background(), claimKey, strings.NewReader(tc.before), "application/json"); err != nil {
					t.Fatal(err)
				}
			}
			st := watch(s3st)
			gate, done, _, _ := w.startGated(st) // a claim write's error (the 412) is handled inside
			if tc.renew {
				w.clock.Advance(reconcile.DefaultLeaseTTL / 3)
				if err := recv(t, st.writes, "the renewal"); !errors.Is(err, report.ErrChanged) {
					t.Fatalf("the renewal: %v, want the 412 of the SDK's retry of a landed write", err)
				}
				w.liveUntil(st, 2*reconcile.DefaultLeaseTTL/3) // the next renewal goes on the landed write's ETag
			}
			close(gate.release)
			r := recv(t, done, "the run to end")
			if r.err != nil || r.sum.Status != reconcile.StatusRan || !r.sum.Complete {
				t.Fatalf("the run: %s, %v; want it to recognise its own claim and complete", r.sum.Status, r.err)
			}
			if n := puts(); n <= tc.failPut {
				t.Errorf("%d PUTs of claim.json: the failure was never injected", n)
			}
			if got := readClaim(t, s3st); got.Token != r.sum.Attempt {
				t.Errorf("claim held by %q, want %q", got.Token, r.sum.Attempt)
			}
		})
	}
}

// TestRunFindsAClaim: what a delivery does with the claim it finds (no
// summary.json yet), on the fake clock at the event's time + 5 min.
func TestRunFindsAClaim(t *testing.T) {
	tests := []struct {
		name  string
		claim string
		want  reconcile.Status
	}{
		{"a live lease", `{"eventId":"x","token":"other","expiresAt":"2026-11-24T03:35:10Z"}`, reconcile.StatusInProgress},
		{"a lease that has just expired", `{"eventId":"x","token":"other","expiresAt":"2026-11-24T03:35:00Z"}`, reconcile.StatusRan},
		{"a released lease", `{"eventId":"x","token":"other","expiresAt":"2026-11-24T03:40:00Z","released":true}`, reconcile.StatusRan},
		{"an old deadline claim, deadline passed", `{"eventId":"x","startedAt":"2026-11-24T03:30:00Z","deadline":"2026-11-24T03:34:00Z"}`, reconcile.StatusRan},
		{"an old deadline claim, deadline ahead", `{"eventId":"x","startedAt":"2026-11-24T03:30:00Z","deadline":"2026-11-24T03:45:00Z"}`, reconcile.StatusInProgress},
		{"an old claim without a deadline", `{"eventId":"x","startedAt":"2026-11-24T03:30:00Z"}`, reconcile.StatusRan},
		{"a damaged claim", `{"eventId":`, reconcile.StatusRan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.clock.Advance(5 * time.Minute)
			if _, err := w.store.PutIfAbsent(context.Background(), claimKey, strings.NewReader(tc.claim), "application/json"); err != nil {
				t.Fatal(err)
			}
			b := &countingB{next: w.sys.ReconcileB()}
			sum, err := w.delivery(w.store, b).Run(context.Background(), event)
			if err != nil || sum.Status != tc.want {
				t.Fatalf("Run = %s, %v; want %s", sum.Status, err, tc.want)
			}
			if scanned := b.lists.Load() > 0; scanned != (tc.want == reconcile.StatusRan) {
				t.Errorf("System B scanned: %v", scanned)
			}
			if tc.want == reconcile.StatusRan {
				if c := readClaim(t, w.store); c.Token != sum.Attempt || c.TookOverFrom != sum.TookOverFrom {
					t.Errorf("claim %+v, summary attempt %q tookOverFrom %q", c, sum.Attempt, sum.TookOverFrom)
				}
			}
		})
	}
}
