package systemb

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

func TestNewValidatesConfig(t *testing.T) {
	tok := StaticToken("x")
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"https", Config{BaseURL: "https://b.example.com/api/v1/", Token: tok}, true},
		{"http", Config{BaseURL: "http://127.0.0.1:8080", Token: tok}, true},
		{"empty", Config{Token: tok}, false},
		{"relative", Config{BaseURL: "/customers", Token: tok}, false},
		{"no host", Config{BaseURL: "http:///x", Token: tok}, false},
		{"ftp", Config{BaseURL: "ftp://b.example.com", Token: tok}, false},
		{"query", Config{BaseURL: "https://b.example.com?x=1", Token: tok}, false},
		{"credentials", Config{BaseURL: "https://u:p@b.example.com", Token: tok}, false},
		{"unparsable", Config{BaseURL: "http://[::1", Token: tok}, false},
		{"no token", Config{BaseURL: "https://b.example.com"}, false},
		{"negative timeout", Config{BaseURL: "https://b.example.com", Token: tok, Timeout: -1}, false},
		{"negative attempts", Config{BaseURL: "https://b.example.com", Token: tok, MaxAttempts: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New() error = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "u:p") {
				t.Errorf("error %q echoes credentials", err)
			}
			if !tt.ok {
				return
			}
			if c.cfg.Timeout != DefaultTimeout || c.cfg.MaxAttempts != DefaultMaxAttempts ||
				c.cfg.DeadlineReserve != DefaultDeadlineReserve || c.cfg.MaxBodyBytes != DefaultMaxBodyBytes ||
				c.cfg.MaxPageBytes != DefaultMaxPageBytes || c.cfg.Budget == nil || c.hc.CheckRedirect == nil {
				t.Errorf("defaults not filled: %+v", c.cfg)
			}
			if strings.HasSuffix(c.base, "/") {
				t.Errorf("base %q keeps a trailing slash", c.base)
			}
		})
	}
}

func TestNewDoesNotChangeCallersHTTPClient(t *testing.T) {
	hc := &http.Client{}
	if _, err := New(Config{BaseURL: "http://127.0.0.1:1", Token: StaticToken("x"), HTTPClient: hc}); err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Error("New changed the caller's http.Client")
	}
}

func TestGetSendsHeadersAndMapsAuthErrors(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		status int // what the server answers to a good token
		want   error
	}{
		{"good token", testToken, http.StatusOK, nil},
		{"wrong token is 401", "wrong", 0, ErrUnauthorized},
		{"403", testToken, http.StatusForbidden, ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+testToken {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				if r.Method != http.MethodGet || r.Header.Get("Accept") != "application/json" {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				if tt.status != http.StatusOK {
					w.WriteHeader(tt.status)
					return
				}
				writeJSON(w, customerJSON("ada@example.com"))
			})
			c, rec := newClient(t, s.URL, func(c *Config) { c.Token = StaticToken(tt.token) })
			r, err := c.Get(context.Background(), "ada@example.com")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if want := newRecord("ada@example.com"); *r != want {
					t.Errorf("Get = %+v, want %+v", *r, want)
				}
				return
			}
			checkErr(t, err, tt.want, 1, "ada@example.com", tt.token)
			if r != nil || s.Requests() != 1 || len(rec.Sleeps()) != 0 {
				t.Errorf("record %v, %d requests, sleeps %v; want nil, 1, none", r, s.Requests(), rec.Sleeps())
			}
		})
	}
}

func TestGetEscapesThePath(t *testing.T) {
	tests := []struct{ name, email string }{
		{"plus", "ada+news@example.com"},
		{"slash", "a/../b@example.com"},
		{"non-ASCII", "jörg@exämple.com"},
		{"percent and space", "a%2Fb c@example.com"},
		{"query and fragment chars", "a?b#c@example.com"},
		{"upper case", "ADA@Example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				seg, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/customers/")
				if !ok || strings.Contains(seg, "/") || r.URL.RawQuery != "" {
					w.WriteHeader(http.StatusNotFound)
					return
				}
				got, _ = url.PathUnescape(seg)
				writeJSON(w, customerJSON(strings.ToLower(got)))
			})
			c, _ := newClient(t, s.URL+"/v1/", nil)
			r, err := c.Get(context.Background(), tt.email)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got != tt.email {
				t.Errorf("server got email %q, want %q", got, tt.email)
			}
			if merge.Key(r.Email()) != merge.Key(tt.email) {
				t.Errorf("record email %q", r.Email())
			}
		})
	}
}

func TestGetRejectsBadEmailsWithoutARequest(t *testing.T) {
	s := newServer(t, func(int, http.ResponseWriter, *http.Request) {})
	c, _ := newClient(t, s.URL, nil)
	for _, email := range []string{"", "   ", ".", ".."} {
		_, err := c.Get(context.Background(), email)
		checkErr(t, err, ErrInvalidArgument, 0)
	}
	if s.Requests() != 0 {
		t.Errorf("%d requests, want 0", s.Requests())
	}
}

// TestGetStatuses covers fault matrix rows 2 and 3: bounded jittered
// retries on 5xx and 429, none on other 4xx, 404 as "not found".
func TestGetStatuses(t *testing.T) {
	tests := []struct {
		name        string
		statuses    []int // answers in order; 200 serves the customer; the last repeats
		maxAttempts int
		want        error
		requests    int
		sleeps      []time.Duration // with a jitter of 0.5
	}{
		{"503 x3 then 200 succeeds", []int{503, 503, 503, 200}, 4, nil, 4, []time.Duration{25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}},
		{"503 x3 is bounded by 3 attempts", []int{503, 503, 503, 200}, 0, ErrUnavailable, 3, []time.Duration{25 * time.Millisecond, 50 * time.Millisecond}},
		{"500 then 200", []int{500, 200}, 0, nil, 2, []time.Duration{25 * time.Millisecond}},
		{"429 then 200", []int{429, 200}, 0, nil, 2, []time.Duration{25 * time.Millisecond}},
		{"502 always", []int{502}, 0, ErrUnavailable, 3, []time.Duration{25 * time.Millisecond, 50 * time.Millisecond}},
		{"501 is not retried", []int{501}, 0, ErrUnavailable, 1, nil},
		{"400 is not retried", []int{400, 200}, 0, ErrUnavailable, 1, nil},
		{"404 is not found, not retried", []int{404, 200}, 0, ErrNotFound, 1, nil},
		{"410 is not retried", []int{410, 200}, 0, ErrUnavailable, 1, nil},
		{"401 is not retried", []int{401, 200}, 0, ErrUnauthorized, 1, nil},
		{"204 breaks the contract", []int{204, 200}, 0, ErrBadData, 1, nil},
		{"one attempt only", []int{503, 200}, 1, ErrUnavailable, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				st := tt.statuses[min(n, len(tt.statuses))-1]
				if st == http.StatusOK {
					writeJSON(w, customerJSON("ada@example.com"))
					return
				}
				w.WriteHeader(st)
				_, _ = w.Write([]byte(`{"error":"ada@example.com"}`))
			})
			c, rec := newClient(t, s.URL, func(c *Config) { c.MaxAttempts = tt.maxAttempts })
			r, err := c.Get(context.Background(), "ada@example.com")
			if tt.want == nil {
				if err != nil || r == nil {
					t.Fatalf("Get = %v, %v; want a record", r, err)
				}
			} else {
				e := checkErr(t, err, tt.want, tt.requests, "ada@example.com")
				if r != nil {
					t.Errorf("record %+v returned with an error", r)
				}
				if e.Status != tt.statuses[min(tt.requests, len(tt.statuses))-1] {
					t.Errorf("Status = %d", e.Status)
				}
			}
			if s.Requests() != tt.requests {
				t.Errorf("%d requests, want %d", s.Requests(), tt.requests)
			}
			if got := rec.Sleeps(); !slices.Equal(got, tt.sleeps) {
				t.Errorf("sleeps %v, want %v", got, tt.sleeps)
			}
			if len(rec.calls) != tt.requests {
				t.Fatalf("OnCall called %d times, want %d", len(rec.calls), tt.requests)
			}
			for i, call := range rec.calls {
				if call.Op != OpGet || call.Attempt != i+1 || call.Status == 0 || call.Duration < 0 {
					t.Errorf("call %d = %+v", i, call)
				}
				if ok := call.Status == 200 || call.Status == 404; ok != (call.Err == nil) {
					t.Errorf("call %d: status %d with Err %v", i, call.Status, call.Err)
				}
			}
		})
	}
}

// TestRetryAfter covers fault matrix row 4: Retry-After is honoured only
// when it fits; an hour is never waited.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		retryAfter string
		deadline   time.Duration // 0: none
		want       error
		requests   int
		sleeps     []time.Duration
	}{
		{"3600 seconds fails fast", "3600", 0, ErrUnavailable, 1, nil},
		{"3600 seconds with a deadline", "3600", 10 * time.Second, ErrUnavailable, 1, nil},
		{"huge number", "99999999999999999999", 0, ErrUnavailable, 1, nil},
		{"HTTP date an hour away", now.Add(time.Hour).Format(http.TimeFormat), 0, ErrUnavailable, 1, nil},
		{"1 second is honoured", "1", 0, nil, 2, []time.Duration{time.Second}},
		{"HTTP date 2s away is honoured", now.Add(2 * time.Second).Format(http.TimeFormat), 0, nil, 2, []time.Duration{2 * time.Second}},
		{"past date uses backoff", now.Add(-time.Hour).Format(http.TimeFormat), 0, nil, 2, []time.Duration{25 * time.Millisecond}},
		{"garbage uses backoff", "soon", 0, nil, 2, []time.Duration{25 * time.Millisecond}},
		{"3 seconds does not fit a 2s deadline", "3", 2 * time.Second, ErrUnavailable, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n > 1 {
					writeJSON(w, customerJSON("ada@example.com"))
					return
				}
				w.Header().Set("Retry-After", tt.retryAfter)
				w.WriteHeader(http.StatusTooManyRequests)
			})
			ctx := context.Background()
			clock := func() time.Time { return now }
			if tt.deadline > 0 {
				// Deadlines are on the real clock.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
				clock = time.Now
			}
			c, rec := newClient(t, s.URL, func(c *Config) { c.Now = clock })
			_, err := c.Get(ctx, "ada@example.com")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
			} else {
				e := checkErr(t, err, tt.want, 1)
				if e.Status != http.StatusTooManyRequests {
					t.Errorf("Status = %d", e.Status)
				}
			}
			if s.Requests() != tt.requests {
				t.Errorf("%d requests, want %d", s.Requests(), tt.requests)
			}
			if got := rec.Sleeps(); !slices.Equal(got, tt.sleeps) {
				t.Errorf("sleeps %v, want %v", got, tt.sleeps)
			}
		})
	}
}

// deadlineRecorder records the deadline of every request's context.
type deadlineRecorder struct {
	mu        sync.Mutex
	deadlines []time.Time
}

func (d *deadlineRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	dl, _ := r.Context().Deadline()
	d.mu.Lock()
	d.deadlines = append(d.deadlines, dl)
	d.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestHangingServerIsCutAtTheBudget covers fault matrix row 1.
func TestHangingServerIsCutAtTheBudget(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release) // before s.Close (cleanup) waits for handlers
	tests := []struct {
		name     string
		deadline time.Duration
		requests int
	}{
		{"cut at deadline minus reserve", time.Second, 1},
		{"no time left: no request", 100 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Requests()
			rt := new(deadlineRecorder)
			c, rec := newClient(t, s.URL, func(c *Config) { c.HTTPClient = &http.Client{Transport: rt} })
			ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
			defer cancel()
			ctxDeadline, _ := ctx.Deadline()
			_, err := c.Get(ctx, "ada@example.com")
			checkErr(t, err, ErrUnavailable, tt.requests, "ada@example.com")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
			}
			// The server may not see a request cut before it arrived.
			if got := s.Requests() - before; got > tt.requests {
				t.Errorf("%d requests, want at most %d", got, tt.requests)
			}
			if len(rt.deadlines) != tt.requests {
				t.Errorf("%d requests sent, want %d", len(rt.deadlines), tt.requests)
			}
			if len(rec.Sleeps()) != 0 {
				t.Errorf("slept %v with no time left", rec.Sleeps())
			}
			for _, dl := range rt.deadlines {
				if limit := ctxDeadline.Add(-DefaultDeadlineReserve); dl.IsZero() || dl.After(limit) {
					t.Errorf("request deadline %v is after the budget %v", dl, limit)
				}
			}
		})
	}
}

func TestGetTimeoutPerAttempt(t *testing.T) {
	// A server that hangs on the first request only: the attempt is cut at
	// Timeout and the retry succeeds.
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done()
			return
		}
		writeJSON(w, customerJSON("ada@example.com"))
	})
	c, rec := newClient(t, s.URL, func(c *Config) { c.Timeout = 300 * time.Millisecond })
	if _, err := c.Get(context.Background(), "ada@example.com"); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if s.Requests() != 2 || rec.calls[0].Status != 0 || !errors.Is(rec.calls[0].Err, ErrUnavailable) {
		t.Errorf("%d requests, first call %+v", s.Requests(), rec.calls[0])
	}
}

// TestGetBadData covers fault matrix row 5: nothing of a bad answer is used
// or followed.
func TestGetBadData(t *testing.T) {
	const email = "ada@example.com"
	good := string(customerJSON(email))
	tests := []struct {
		name string
		body func(w http.ResponseWriter)
	}{
		{"invalid JSON", func(w http.ResponseWriter) { writeJSON(w, []byte(`{"email": "ada@example.com",`)) }},
		{"not an object", func(w http.ResponseWriter) { writeJSON(w, []byte(`[1,2]`)) }},
		{"empty body", func(w http.ResponseWriter) {}},
		{"truncated body", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", strconv.Itoa(len(good)))
			_, _ = w.Write([]byte(good[:len(good)/2]))
		}},
		{"declared length over the cap", func(w http.ResponseWriter) {
			writeJSON(w, []byte(good+strings.Repeat(" ", 2048)))
		}},
		{"chunked body over the cap", func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(good))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(strings.Repeat(" ", 2048)))
		}},
		{"missing lastUpdated", func(w http.ResponseWriter) {
			writeJSON(w, []byte(strings.Replace(good, `"lastUpdated"`, `"lastUpdatedX"`, 1)))
		}},
		{"unparsable lastUpdated", func(w http.ResponseWriter) {
			writeJSON(w, []byte(strings.Replace(good, `"2026-03-01T12:30:00Z"`, `"yesterday"`, 1)))
		}},
		{"record of another customer", func(w http.ResponseWriter) { writeJSON(w, customerJSON("eve@example.com")) }},
		{"wrong type", func(w http.ResponseWriter) {
			writeJSON(w, []byte(strings.Replace(good, `"marketingOptIn":true`, `"marketingOptIn":"yes"`, 1)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { tt.body(w) })
			c, rec := newClient(t, s.URL, func(c *Config) { c.MaxBodyBytes = int64(len(good) + 1024) })
			r, err := c.Get(context.Background(), email)
			e := checkErr(t, err, ErrBadData, 1, email)
			if r != nil || e.Status != http.StatusOK || s.Requests() != 1 || len(rec.Sleeps()) != 0 {
				t.Errorf("record %v, status %d, %d requests, sleeps %v", r, e.Status, s.Requests(), rec.Sleeps())
			}
		})
	}
}

func TestGetDoesNotFollowRedirects(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			other := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, customerJSON("ada@example.com"))
			})
			s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+r.URL.Path, status)
			})
			c, _ := newClient(t, s.URL, nil)
			r, err := c.Get(context.Background(), "ada@example.com")
			e := checkErr(t, err, ErrUnavailable, 1, "ada@example.com")
			if r != nil || e.Status != status || s.Requests() != 1 || other.Requests() != 0 {
				t.Errorf("record %v, status %d, %d requests, %d to the other host", r, e.Status, s.Requests(), other.Requests())
			}
		})
	}
}

// TestRetryBudgetStopsARetryStorm covers fault matrix row 6.
func TestRetryBudgetStopsARetryStorm(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c, _ := newClient(t, s.URL, func(c *Config) { c.Now = func() time.Time { return now } })
	const calls = 100
	exhausted := 0
	for range calls {
		_, err := c.Get(context.Background(), "ada@example.com")
		checkErr(t, err, ErrUnavailable, -1)
		if strings.Contains(err.Error(), "retry budget exhausted") {
			exhausted++
		}
	}
	// Without a budget: 300 requests. With it: the 10 tokens it starts with
	// plus 0.2 per call.
	if got, limit := s.Requests(), calls+10+calls/5; got > limit || got < calls {
		t.Errorf("%d requests for %d calls, want %d..%d", got, calls, calls, limit)
	}
	if exhausted < calls/2 {
		t.Errorf("%d calls stopped by the budget, want most", exhausted)
	}
	// The floor refills the budget over time.
	before := s.Requests()
	now = now.Add(time.Minute)
	_, _ = c.Get(context.Background(), "ada@example.com")
	if got := s.Requests() - before; got != 3 {
		t.Errorf("after a quiet minute a call made %d requests, want 3", got)
	}
}

func TestRetryBudget(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := NewRetryBudget(0.1, 2, 5, func() time.Time { return now })
	for i := range 5 {
		if !b.Retry() {
			t.Fatalf("retry %d refused with a full budget", i)
		}
	}
	if b.Retry() {
		t.Fatal("retry allowed with an empty budget")
	}
	for range 10 {
		b.Request()
	}
	if !b.Retry() || b.Retry() {
		t.Fatalf("10 requests at 0.1 should allow exactly one retry")
	}
	now = now.Add(time.Second)
	if got := b.Balance(); got < 1.99 || got > 2.01 {
		t.Errorf("balance after 1s at 2/s = %v, want 2", got)
	}
	now = now.Add(time.Hour)
	if got := b.Balance(); got != 5 {
		t.Errorf("balance is capped at %v, want 5", got)
	}
}

func TestExponentialBackoff(t *testing.T) {
	one := func() float64 { return 0.999999 }
	b := ExponentialBackoff(50*time.Millisecond, time.Second, one)
	want := []time.Duration{50, 100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		got := b(i + 1)
		if w := w * time.Millisecond; got > w || got < w*99/100 {
			t.Errorf("backoff(%d) = %v, want just under %v", i+1, got, w)
		}
	}
	if got := b(200); got > time.Second {
		t.Errorf("backoff(200) = %v, over the cap", got)
	}
	if got := ExponentialBackoff(50*time.Millisecond, time.Second, func() float64 { return 0 })(3); got != 0 {
		t.Errorf("full jitter with rand 0 = %v, want 0", got)
	}
}

func TestTokenSource(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { writeJSON(w, customerJSON("ada@example.com")) })
	tests := []struct {
		name  string
		token TokenFunc
		want  error
	}{
		{"failing source", func(context.Context) (string, error) { return "", errors.New("secrets manager down") }, ErrUnavailable},
		{"empty token", StaticToken(""), ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, s.URL, func(c *Config) { c.Token = tt.token })
			_, err := c.Get(context.Background(), "ada@example.com")
			checkErr(t, err, tt.want, 0)
			if s.Requests() != 0 {
				t.Errorf("%d requests, want 0", s.Requests())
			}
		})
	}
}

func TestTransportErrorHidesTheURL(t *testing.T) {
	s := newServer(t, func(int, http.ResponseWriter, *http.Request) {})
	base := s.URL
	s.Close()
	c, rec := newClient(t, base, nil)
	const email = "secret.person@example.com"
	_, err := c.Get(context.Background(), email)
	checkErr(t, err, ErrUnavailable, 3, email, "secret.person", "customers/")
	if len(rec.calls) != 3 || rec.calls[0].Status != 0 {
		t.Errorf("calls %+v", rec.calls)
	}
}

func TestGetCanceledContext(t *testing.T) {
	s := newServer(t, func(int, http.ResponseWriter, *http.Request) {})
	c, _ := newClient(t, s.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Get(ctx, "ada@example.com")
	checkErr(t, err, ErrUnavailable, 0)
	if !errors.Is(err, context.Canceled) || s.Requests() != 0 {
		t.Errorf("error %v, %d requests", err, s.Requests())
	}
}
