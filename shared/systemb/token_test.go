package systemb

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// rotatingSecret is a secret store and the cached token source over it, as
// shared/app builds over Secrets Manager: Token serves the cached value,
// Refresh reads the store again and updates the cache.
type rotatingSecret struct {
	mu        sync.Mutex
	stored    string // the store's current value
	cached    string
	fail      error // Refresh's error, when set
	refreshes atomic.Int64
}

func newRotatingSecret(tok string) *rotatingSecret {
	return &rotatingSecret{stored: tok, cached: tok}
}

func (s *rotatingSecret) rotate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stored = tok
}

func (s *rotatingSecret) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cached, nil
}

func (s *rotatingSecret) Refresh(context.Context) (string, error) {
	s.refreshes.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return "", s.fail
	}
	s.cached = s.stored
	return s.cached, nil
}

// tokenServer is a System B that accepts only its current token on GET
// /customers/{email} and answers with that customer; it counts the
// requests made with each token.
type tokenServer struct {
	*server
	mu       sync.Mutex
	accepted string
	byToken  map[string]int
	// hold, when set, holds every request made with token hold.tok until
	// hold.n of them have arrived, so that they are all refused together.
	hold *barrier
}

type barrier struct {
	tok     string
	n       int
	arrived int
	release chan struct{}
}

func newTokenServer(t *testing.T, accepted string) *tokenServer {
	t.Helper()
	ts := &tokenServer{accepted: accepted, byToken: map[string]int{}}
	ts.server = newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		ts.mu.Lock()
		ts.byToken[tok]++
		ok := tok == ts.accepted
		h := ts.hold
		var wait chan struct{}
		if h != nil && tok == h.tok {
			h.arrived++
			if h.arrived == h.n {
				close(h.release)
			}
			wait = h.release
		}
		ts.mu.Unlock()
		if wait != nil {
			select {
			case <-wait:
			case <-r.Context().Done():
				return
			}
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		writeJSON(w, customerJSON(strings.TrimPrefix(r.URL.Path, "/customers/")))
	})
	return ts
}

func (ts *tokenServer) accept(tok string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.accepted = tok
}

func (ts *tokenServer) requests(tok string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.byToken[tok]
}

// refreshClient is a Client of ts over sec; it counts OnTokenRefresh's
// calls and their errors.
func refreshClient(t *testing.T, ts *tokenServer, sec *rotatingSecret) (*Client, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var done, failed atomic.Int64
	c, _ := newClient(t, ts.URL, func(c *Config) {
		c.Token = sec.Token
		c.RefreshToken = sec.Refresh
		c.OnTokenRefresh = func(_ context.Context, err error) {
			done.Add(1)
			if err != nil {
				failed.Add(1)
			}
		}
	})
	return c, &done, &failed
}

func TestTokenRefreshAfterRotation(t *testing.T) {
	ts := newTokenServer(t, "old-token")
	sec := newRotatingSecret("old-token")
	c, done, _ := refreshClient(t, ts, sec)
	ctx := context.Background()
	if _, err := c.Get(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}

	// The secret rotates: System B and the store change, the cache does not.
	sec.rotate("new-token")
	ts.accept("new-token")
	r, err := c.Get(ctx, "ada@example.com")
	if err != nil || r.Email() != "ada@example.com" {
		t.Fatalf("Get after the rotation = %v, %v; want the customer", r, err)
	}
	if sec.refreshes.Load() != 1 || done.Load() != 1 {
		t.Errorf("%d refreshes, %d reported; want 1, 1", sec.refreshes.Load(), done.Load())
	}
	if ts.requests("old-token") != 2 || ts.requests("new-token") != 1 {
		t.Errorf("requests by token %v, want old 2 (1 before, 1 refused), new 1", ts.byToken)
	}

	// The next calls use the refreshed cache: no more refreshes.
	for range 3 {
		if _, err := c.Get(ctx, "ada@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if sec.refreshes.Load() != 1 || ts.requests("new-token") != 4 {
		t.Errorf("%d refreshes, %d requests with the new token; want 1, 4", sec.refreshes.Load(), ts.requests("new-token"))
	}
}

func TestTokenStillRefused(t *testing.T) {
	tests := []struct {
		name      string
		fail      error // of the refresh
		requests  int   // per call
		wantCause string
	}{
		{"refreshed token refused too", nil, 2, ""},
		{"refresh fails", errors.New("secrets manager: throttled"), 1, "token refresh: secrets manager: throttled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, "nobody-has-it")
			sec := newRotatingSecret("old-token")
			sec.fail = tt.fail
			c, done, failed := refreshClient(t, ts, sec)
			for call := 1; call <= 3; call++ {
				_, err := c.Get(context.Background(), "ada@example.com")
				e := checkErr(t, err, ErrUnauthorized, tt.requests, "old-token")
				if tt.wantCause != "" && !strings.Contains(e.Error(), tt.wantCause) {
					t.Errorf("error %q does not say %q", e, tt.wantCause)
				}
				// Exactly one refresh per call.
				if n := sec.refreshes.Load(); n != int64(call) || done.Load() != int64(call) {
					t.Fatalf("after call %d: %d refreshes, %d reported; want %d", call, n, done.Load(), call)
				}
			}
			if wantFailed := map[bool]int64{true: 3, false: 0}[tt.fail != nil]; failed.Load() != wantFailed {
				t.Errorf("%d failed refreshes reported, want %d", failed.Load(), wantFailed)
			}
			if ts.Requests() != 3*tt.requests {
				t.Errorf("%d requests, want %d", ts.Requests(), 3*tt.requests)
			}
		})
	}
}

// TestTokenRefreshShared refuses n concurrent calls together: they share
// one refresh, whether the refreshed token is accepted or not.
func TestTokenRefreshShared(t *testing.T) {
	const n = 8
	tests := []struct {
		name     string
		accepted string // after the rotation
		want     error
	}{
		{"rotation", "new-token", nil},
		{"refreshed token refused too", "nobody-has-it", ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.accepted)
			ts.hold = &barrier{tok: "old-token", n: n, release: make(chan struct{})}
			sec := newRotatingSecret("old-token")
			sec.rotate("new-token")
			c, done, _ := refreshClient(t, ts, sec)
			errs := make(chan error, n)
			for range n {
				go func() {
					_, err := c.Get(context.Background(), "ada@example.com")
					errs <- err
				}()
			}
			for range n {
				if err := <-errs; !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Errorf("Get = %v, want %v", err, tt.want)
				}
			}
			if sec.refreshes.Load() != 1 || done.Load() != 1 {
				t.Errorf("%d refreshes for %d calls refused together, want 1", sec.refreshes.Load(), n)
			}
			if ts.requests("old-token") != n || ts.requests("new-token") != n {
				t.Errorf("requests by token %v, want %d of each", ts.byToken, n)
			}
		})
	}
}

func TestTokenRefreshDuringList(t *testing.T) {
	rs := dataset(10)
	sec := newRotatingSecret("old-token")
	s := newListServer(t, rs, nil)
	old, rotated := "old-token", "new-token"
	s.token.Store(&old)
	s.status = func(n int) int {
		if n == 2 { // the secret rotates before page 2
			sec.rotate(rotated)
			s.token.Store(&rotated)
		}
		return http.StatusOK
	}
	c, _ := newClient(t, s.URL, func(c *Config) {
		c.Token = sec.Token
		c.RefreshToken = sec.Refresh
	})
	p := c.List(context.Background(), 4)
	defer p.Close()
	got := collect(p)
	if p.Err() != nil || len(got) != len(rs) {
		t.Fatalf("%d records, err %v; want %d, nil", len(got), p.Err(), len(rs))
	}
	if sec.refreshes.Load() != 1 || s.Requests() != 4 || p.Pages() != 3 {
		t.Errorf("%d refreshes, %d requests for %d pages; want 1, 4 (page 2 twice), 3", sec.refreshes.Load(), s.Requests(), p.Pages())
	}
}
