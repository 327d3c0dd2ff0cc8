package reconcile_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// landedThen500 wraps an S3 server: the first PUT whose path matches is
// applied and then answered 500, so the SDK retries a write that landed
// and the retry fails its condition (412) against it. It returns whether
// the failure was injected.
func landedThen500(match func(path string) bool) (func(http.Handler) http.Handler, func() bool) {
	var mu sync.Mutex
	done := false
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			inject := !done && r.Method == http.MethodPut && match(r.URL.Path)
			done = done || inject
			mu.Unlock()
			if !inject {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(httptest.NewRecorder(), r)
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>`)
		})
	}
	return wrap, func() bool { mu.Lock(); defer mu.Unlock(); return done }
}

// TestRetriedReportWritesAreOwn: a report object's PUT lands but its answer
// is lost; the SDK retries it and S3 answers 412 (If-None-Match: *) against
// the run's own write. That is not a failure: the attempt's details and
// partial summary are under its own token, and the night's summary.json
// holding this attempt is this run's commit. The run ends as if the first
// answer had arrived (counted, not "duplicate").
func TestRetriedReportWritesAreOwn(t *testing.T) {
	tests := []struct {
		name       string
		match      func(path string) bool
		failB      bool // System B fails mid-run: the attempt is incomplete
		wantStatus reconcile.Status
	}{
		{"the attempt's details", func(p string) bool { return strings.Contains(p, "/attempts/") && strings.Contains(p, "/details-") }, false, reconcile.StatusRan},
		{"the night's summary.json", func(p string) bool { return strings.HasSuffix(p, event.ID+"/summary.json") }, false, reconcile.StatusRan},
		{"an incomplete attempt's summary", func(p string) bool { return strings.Contains(p, "/attempts/") && strings.HasSuffix(p, "/summary.json") }, true, reconcile.StatusIncomplete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.failB {
				w.sys.BErr = errors.New("systemb: list: unavailable")
			}
			wrap, injected := landedThen500(tc.match)
			st := s3Store(t, wrap)
			r := w.delivery(st, nil)
			sum, err := r.Run(context.Background(), event)
			if !injected() {
				t.Fatal("the failure was never injected")
			}
			if sum.Status != tc.wantStatus {
				t.Fatalf("status %s, %v; want %s", sum.Status, err, tc.wantStatus)
			}
			m := r.Metrics.(*testkit.Metrics)
			if tc.failB {
				if !errors.Is(err, reconcile.ErrIncomplete) || strings.Contains(err.Error(), "write partial summary") {
					t.Errorf("err = %v; want ErrIncomplete alone", err)
				}
				if m.Counts[emf.ReconcileIncomplete] != 1 {
					t.Errorf("reconcile.incomplete.total = %d, want 1", m.Counts[emf.ReconcileIncomplete])
				}
				return
			}
			if err != nil || !sum.Complete {
				t.Fatalf("complete %v, %v; want a complete run", sum.Complete, err)
			}
			if n := m.Counts[emf.ReconcileCustomers]; n == 0 {
				t.Error("reconcile.customers.total not counted: the run took its own commit for another's")
			}
			if _, _, err := st.Get(context.Background(), strings.TrimPrefix(sum.Details, "s3://reports/runs/")); err != nil {
				t.Errorf("details %s: %v", sum.Details, err)
			}
		})
	}
}

// TestStoredIncompleteSummaryFails: a summary.json that says "complete":
// false (left by a version of the function from before incomplete runs
// stopped writing it) is not the night's report: a delivery that finds it
// fails with ErrIncomplete instead of returning it as a success, and does
// not scan.
func TestStoredIncompleteSummaryFails(t *testing.T) {
	tests := []struct {
		name    string
		stored  string
		wantErr error
		want    reconcile.Status
	}{
		{"incomplete", `{"eventId":"x","status":"ran","complete":false,"stoppedReason":"a system failed during the run"}`, reconcile.ErrIncomplete, reconcile.StatusDuplicate},
		{"complete", `{"eventId":"x","status":"ran","complete":true}`, nil, reconcile.StatusDuplicate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			key := strings.TrimSuffix(claimKey, "claim.json") + "summary.json"
			if _, err := w.store.PutIfAbsent(context.Background(), key, strings.NewReader(tc.stored), "application/json"); err != nil {
				t.Fatal(err)
			}
			b := &countingB{next: w.sys.ReconcileB()}
			sum, err := w.delivery(w.store, b).Run(context.Background(), event)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) || sum.Status != tc.want {
				t.Fatalf("Run = %s, %v; want %s, %v", sum.Status, err, tc.want, tc.wantErr)
			}
			if b.lists.Load() != 0 {
				t.Error("the delivery scanned System B")
			}
		})
	}
}

// slowRenewals fails every renewal of claim.json once armed, each after
// took on the fake clock: S3 answering 503 and the SDK retrying with
// backoff before it gives up.
type slowRenewals struct {
	report.Store
	clock *fakeClock
	took  time.Duration
	armed atomic.Bool
}

func (s *slowRenewals) Replace(ctx context.Context, key string, body io.ReadSeeker, ct, tag string) (string, error) {
	if s.armed.Load() && strings.HasSuffix(key, "claim.json") {
		s.clock.Advance(s.took)
		return "", errors.New("s3: 503 SlowDown, after the SDK's retries")
	}
	return s.Store.Replace(ctx, key, body, ct, tag)
}

// TestLeaseSlowFailedRenewalStopsBeforeExpiry: production lease (30 s,
// renewed every 10 s). A renewal fails after 15 s of the SDK's retries;
// the lease then has 5 s left, less than the 10 s to the next renewal, so
// the run stops at once, before the lease expires and another delivery
// may take the event over, not one failed renewal later.
func TestLeaseSlowFailedRenewalStopsBeforeExpiry(t *testing.T) {
	w := newWorld(t)
	slow := &slowRenewals{Store: w.store, clock: w.clock, took: 15 * time.Second}
	st := watch(slow)
	_, done, _, err := w.startGated(st)
	if err != nil {
		t.Fatal(err)
	}
	w.liveUntil(st, 120*time.Second)
	lease := readClaim(t, w.store)

	slow.armed.Store(true)
	w.clock.Advance(reconcile.DefaultLeaseTTL / 3)
	recv(t, st.writes, "the slow renewal")
	r := recv(t, done, "the run to stop") // the gate never opens: only the lost lease ends the run
	if !errors.Is(r.err, reconcile.ErrLeaseLost) {
		t.Fatalf("the run: %s, %v; want ErrLeaseLost", r.sum.Status, r.err)
	}
	if now := w.clock.Now(); !now.Before(lease.ExpiresAt) {
		t.Errorf("the run stopped at %s, after its lease expired at %s", now, lease.ExpiresAt)
	}
	if n := len(st.writes); n != 0 {
		t.Errorf("%d more renewal attempts after the slow one, want the run stopped", n)
	}
}
