package systemb

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

const testToken = "t0ken-s3cret-value"

// newRecord returns a complete record for email.
func newRecord(email string) merge.Record {
	var r merge.Record
	r.Values[merge.FieldEmail] = email
	r.Values[merge.FieldFirstName] = "Ada"
	r.Values[merge.FieldLastName] = "Lovelace"
	r.Values[merge.FieldPhone] = "+44 20 7946 0000"
	r.Values[merge.FieldAddressLine1] = "12 St James's Square"
	r.Values[merge.FieldCity] = "London"
	r.Values[merge.FieldPostalCode] = "SW1Y 4JH"
	r.Values[merge.FieldCountry] = "GB"
	r.Values[merge.FieldMarketingOptIn] = "true"
	r.Values[merge.FieldLoyaltyTier] = "gold"
	r.LastUpdated = time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	return r
}

// customerJSON is the System B JSON of newRecord(email).
func customerJSON(email string) []byte {
	r := newRecord(email)
	return AppendCustomer(nil, &r)
}

// recorder captures what a Client did through its injectable hooks.
type recorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
	calls  []Call
}

func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sleeps = append(r.sleeps, d)
	return nil
}

func (r *recorder) onCall(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recorder) Sleeps() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.sleeps...)
}

// server is an httptest System B whose handler is a function of the
// request's sequence number (1-based); it counts requests.
type server struct {
	*httptest.Server
	n atomic.Int64
}

func newServer(t *testing.T, h func(n int, w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := new(server)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(int(s.n.Add(1)), w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) Requests() int { return int(s.n.Load()) }

// newClient returns a Client of base with a static token, recorded sleeps
// and calls, and a jitter of one half; mod adjusts the Config.
func newClient(t *testing.T, base string, mod func(*Config)) (*Client, *recorder) {
	t.Helper()
	rec := new(recorder)
	cfg := Config{
		BaseURL: base,
		Token:   StaticToken(testToken),
		Sleep:   rec.sleep,
		OnCall:  rec.onCall,
		Rand:    func() float64 { return 0.5 },
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, rec
}

// writeJSON answers 200 with body.
func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// checkErr asserts that err is an *Error wrapping want with the given
// attempts (-1: any), and that its message holds no secret.
func checkErr(t *testing.T, err, want error, attempts int, secrets ...string) *Error {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want one wrapping %v", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not an *Error", err)
	}
	if attempts >= 0 && e.Attempts != attempts {
		t.Errorf("Attempts = %d, want %d (%v)", e.Attempts, attempts, err)
	}
	for _, s := range append(secrets, testToken) {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error message %q contains a secret %q", err, s)
		}
	}
	return e
}
