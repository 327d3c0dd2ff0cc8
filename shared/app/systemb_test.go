package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// awsEnv points the AWS SDK of the process at a fake Secrets Manager with
// fake credentials.
func awsEnv(t *testing.T, sm *testkit.SecretsManager) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIDFAKEFAKEFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret-key",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_SECRETS_MANAGER": sm.URL,
	} {
		t.Setenv(k, v)
	}
}

// tokenSystemB is a System B that accepts one token at a time and holds
// every customer asked for.
type tokenSystemB struct {
	*httptest.Server
	accepted atomic.Pointer[string]
	refused  atomic.Int64
}

func newTokenSystemB(t *testing.T, tok string) *tokenSystemB {
	t.Helper()
	b := new(tokenSystemB)
	b.accepted.Store(&tok)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+*b.accepted.Load() {
			b.refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		writeCustomer(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

// writeCustomer answers a get with a customer holding the email asked for.
func writeCustomer(w http.ResponseWriter, r *http.Request) {
	var rec merge.Record
	rec.Values[merge.FieldEmail] = strings.TrimPrefix(r.URL.Path, "/customers/")
	rec.LastUpdated = time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	w.Write(systemb.AppendCustomer(nil, &rec)) //nolint:errcheck // test server
}

// metricValue returns the sum of metric name's values in the EMF lines of out.
func metricValue(t *testing.T, out string, name string) float64 {
	t.Helper()
	var sum float64
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, `"_aws"`) {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		switch v := doc[name].(type) {
		case float64:
			sum += v
		case []any:
			for _, x := range v {
				sum += x.(float64)
			}
		}
	}
	return sum
}

// TestSystemBTokenRotation runs the client the app builds over Secrets
// Manager (the real SDK client against a fake endpoint): after a rotation
// the first call is refused, reads the secret once more, and succeeds; the
// refresh is counted and logged without the token.
func TestSystemBTokenRotation(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:system-b-token"
	sm := testkit.NewSecretsManager(t)
	sm.Put(arn, "token-before-rotation")
	awsEnv(t, sm)
	snap, _ := writeSnapshot(t, 10)
	b := newTokenSystemB(t, "token-before-rotation")
	env := map[string]string{
		config.EnvSnapshotURI: "file://" + snap, config.EnvSystemBURL: b.URL, config.EnvSystemBTokenSecretARN: arn,
	}
	var out bytes.Buffer
	a, err := app.New(context.Background(), app.Options{Function: "lookup", Getenv: func(k string) string { return env[k] }, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.Client.Get(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}

	sm.Put(arn, "token-after-rotation")
	tok := "token-after-rotation"
	b.accepted.Store(&tok)
	for range 3 {
		if _, err := a.Client.Get(ctx, "ada@example.com"); err != nil {
			t.Fatalf("Get after the rotation: %v", err)
		}
	}
	if sm.Reads(arn) != 2 || b.refused.Load() != 1 {
		t.Errorf("%d secret reads, %d refused requests; want 2 (start, one refresh), 1", sm.Reads(arn), b.refused.Load())
	}
	a.Flush()
	if n := metricValue(t, out.String(), emf.SystemBTokenRefreshes); n != 1 {
		t.Errorf("%s = %v, want 1", emf.SystemBTokenRefreshes, n)
	}
	if !strings.Contains(out.String(), "read it again from Secrets Manager") {
		t.Errorf("no log line for the refresh:\n%s", out.String())
	}
	if strings.Contains(out.String(), "token-before") || strings.Contains(out.String(), "token-after") {
		t.Errorf("a token reached the output:\n%s", out.String())
	}

	// Refused even after a refresh: unauthorized, one refresh per call.
	b.accepted.Store(new(string))
	_, err = a.Client.Get(ctx, "ada@example.com")
	if !errors.Is(err, merge.ErrUnauthorized) || sm.Reads(arn) != 3 {
		t.Errorf("Get = %v after %d secret reads; want unauthorized after 3", err, sm.Reads(arn))
	}
}

// connCounter is a System B that counts the connections opened to it and
// holds each wave of requests until all of the wave have arrived, so that
// every request of a wave needs its own connection.
type connCounter struct {
	*httptest.Server
	opened atomic.Int64
	mu     sync.Mutex
	wave   int
	n      int
	gate   chan struct{}
}

func newConnCounter(t *testing.T, wave int) *connCounter {
	t.Helper()
	c := &connCounter{wave: wave, gate: make(chan struct{})}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		gate := c.gate
		if c.n++; c.n == c.wave {
			close(c.gate)
			c.n, c.gate = 0, make(chan struct{})
		}
		c.mu.Unlock()
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		writeCustomer(w, r)
	}))
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.opened.Add(1)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

// TestSystemBClientKeepsItsConnections checks that the System B client the
// app builds, traced, still runs on the tuned transport: after a wave of
// concurrent calls, the next wave reuses every connection. Over
// http.DefaultTransport (2 idle connections per host) the second wave
// would open wave-2 new ones.
func TestSystemBClientKeepsItsConnections(t *testing.T) {
	const wave = 8 // over http.DefaultTransport's 2, under systemb.MaxIdleConnsPerHost
	snap, _ := writeSnapshot(t, 10)
	b := newConnCounter(t, wave)
	env := map[string]string{config.EnvSnapshotURI: "file://" + snap, config.EnvSystemBURL: b.URL, config.EnvSystemBToken: "tok"}
	a, err := app.New(context.Background(), app.Options{Function: "sync", Getenv: func(k string) string { return env[k] }, Stdout: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 3; round++ {
		var wg sync.WaitGroup
		for range wave {
			wg.Go(func() {
				if _, err := a.Client.Get(context.Background(), "ada@example.com"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := b.opened.Load(); n != wave {
			t.Fatalf("after round %d: %d connections opened, want %d (one per concurrent call, then reused)", round, n, wave)
		}
	}
}
