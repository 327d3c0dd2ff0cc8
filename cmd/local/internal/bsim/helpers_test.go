package bsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
)

const testToken = "test-token"

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// customer builds a System B record with a few fields set.
func customer(email, first string) *merge.Record {
	var r merge.Record
	r.Values[merge.FieldEmail] = email
	r.Values[merge.FieldFirstName] = first
	r.Values[merge.FieldCity] = "Springfield"
	r.Values[merge.FieldMarketingOptIn] = "true"
	r.LastUpdated = testTime
	return &r
}

// jsonLines encodes records as JSON Lines, as Load reads them.
func jsonLines(recs ...*merge.Record) []byte {
	var b []byte
	for _, r := range recs {
		b = systemb.AppendCustomer(b, r)
		b = append(b, '\n')
	}
	return b
}

// manyCustomers returns n customers with distinct emails.
func manyCustomers(n int) []*merge.Record {
	recs := make([]*merge.Record, n)
	for i := range recs {
		recs[i] = customer(fmt.Sprintf("User%06d@Example.com", i), fmt.Sprintf("First %d", i))
	}
	return recs
}

// newTestServer starts a simulator holding recs on a free loopback port.
func newTestServer(t *testing.T, cfg Config, recs ...*merge.Record) (*Sim, *httptest.Server) {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testTime }
	}
	sim := New(cfg)
	if err := sim.Load(bytes.NewReader(jsonLines(recs...))); err != nil {
		t.Fatalf("Load: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	return sim, srv
}

// call sends one request with the test token (unless auth is given) and
// returns the status, headers and body.
func call(t *testing.T, srv *httptest.Server, method, path, body string, auth ...string) (int, http.Header, []byte) {
	t.Helper()
	return callCtx(t, context.Background(), srv, method, path, body, auth...)
}

func callCtx(t *testing.T, ctx context.Context, srv *httptest.Server, method, path, body string, auth ...string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := send(ctx, srv, method, path, body, auth...)
	return readAnswer(t, method+" "+path, resp, err)
}

// readAnswer reads the answer of a request (or fails the test with err).
func readAnswer(t *testing.T, what string, resp *http.Response, err error) (int, http.Header, []byte) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read body: %v", what, err)
	}
	return resp.StatusCode, resp.Header, b
}

// send sends one request; the caller closes the body.
func send(ctx context.Context, srv *httptest.Server, method, path, body string, auth ...string) (*http.Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if len(auth) > 0 {
		if auth[0] != "" {
			req.Header.Set("Authorization", auth[0])
		}
	} else {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return client.Do(req)
}

// page is a decoded list answer.
type page struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor *string           `json:"nextCursor"`
}

func decodePage(t *testing.T, b []byte) page {
	t.Helper()
	var p page
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode page: %v: %.200s", err, b)
	}
	return p
}

// emailOf decodes one customer document and returns its email.
func emailOf(t *testing.T, doc []byte) string {
	t.Helper()
	r, err := systemb.UnmarshalCustomer(doc)
	if err != nil {
		t.Fatalf("decode customer: %v", err)
	}
	return r.Email()
}

// waitFor polls cond (bounded) until it holds; it fails the test otherwise.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}
