//go:build !noxray

package tracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-xray-sdk-go/xray"
)

// traceHeader is a sampled Lambda trace header, as the runtime passes it.
const traceHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

// emitted is what the tests read of one emitted (sub)segment.
type emitted struct {
	Name, Namespace, TraceID, ParentID string
	Fault, Error, Throttle             bool
	Causes                             []string
	Method, URL                        string
	Status                             int
	Operation                          any
}

// captureEmitter records the segments the SDK emits instead of sending
// them to a daemon.
type captureEmitter struct {
	mu   sync.Mutex
	segs []emitted
}

// Emit records seg; the SDK calls it with seg locked.
func (c *captureEmitter) Emit(seg *xray.Segment) {
	e := emitted{Name: seg.Name, Namespace: seg.Namespace, TraceID: seg.TraceID, ParentID: seg.ParentID,
		Fault: seg.Fault, Error: seg.Error, Throttle: seg.Throttle}
	if seg.Cause != nil {
		for _, x := range seg.Cause.Exceptions {
			e.Causes = append(e.Causes, x.Message)
		}
	}
	if seg.HTTP != nil {
		if seg.HTTP.Request != nil {
			e.Method, e.URL = seg.HTTP.Request.Method, seg.HTTP.Request.URL
		}
		if seg.HTTP.Response != nil {
			e.Status = seg.HTTP.Response.Status
		}
	}
	if seg.AWS != nil {
		e.Operation = seg.AWS["operation"]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.segs = append(c.segs, e)
}

// RefreshEmitterWithAddress does nothing.
func (c *captureEmitter) RefreshEmitterWithAddress(*net.UDPAddr) {}

// all returns the recorded segments.
func (c *captureEmitter) all() []emitted {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]emitted(nil), c.segs...)
}

// tracedContext returns a context like a traced Lambda invocation's, whose
// segments go to the returned emitter.
func tracedContext(t *testing.T) (context.Context, *captureEmitter) {
	t.Helper()
	return headerContext(t, traceHeader)
}

// headerContext returns a context with the Lambda trace header h whose
// segments, if any, go to the returned emitter.
func headerContext(t *testing.T, h string) (context.Context, *captureEmitter) {
	t.Helper()
	em := &captureEmitter{}
	ctx, err := xray.ContextWithConfig(context.Background(), xray.Config{Emitter: em})
	if err != nil {
		t.Fatalf("ContextWithConfig: %v", err)
	}
	return context.WithValue(ctx, xray.LambdaTraceHeaderKey, h), em //nolint:staticcheck // the SDK's key
}

func TestConfigure(t *testing.T) {
	if err := Configure(); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := Configure(); err != nil {
		t.Fatalf("second Configure: %v", err)
	}
}

func TestStartUntraced(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"background", context.Background()},
		{"empty trace header", context.WithValue(context.Background(), xray.LambdaTraceHeaderKey, "")},           //nolint:staticcheck
		{"header without root", context.WithValue(context.Background(), xray.LambdaTraceHeaderKey, "Sampled=1")}, //nolint:staticcheck
		{"header of another type", context.WithValue(context.Background(), xray.LambdaTraceHeaderKey, 42)},       //nolint:staticcheck
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			silent(t, func() {
				ctx, end := Start(tt.ctx, SpanSnapshotFetch)
				if ctx != tt.ctx {
					t.Errorf("Start changed an untraced context")
				}
				inner, endInner := Start(ctx, SpanSQLiteQuery)
				endInner(errors.New("boom"))
				end(nil)
				end(nil)
				if xray.GetSegment(inner) != nil {
					t.Errorf("a segment appeared in an untraced context")
				}
			})
		})
	}
}

func TestStartTraced(t *testing.T) {
	ctx, em := tracedContext(t)
	silent(t, func() {
		ctx1, end1 := Start(ctx, SpanSnapshotFetch)
		if xray.GetSegment(ctx1) == nil {
			t.Fatalf("no subsegment in the returned context")
		}
		_, end2 := Start(ctx1, SpanSQLiteQuery)
		end2(fmt.Errorf("systema: lookup ana@example.com: %w", errors.New("disk I/O error")))
		end1(nil)
		end1(errors.New("second end is ignored"))
	})
	segs := em.all()
	if len(segs) != 1 {
		t.Fatalf("emitted %d segments, want 1 (the outer subsegment with its child): %+v", len(segs), segs)
	}
	s := segs[0]
	if s.Name != SpanSnapshotFetch || s.TraceID != "1-5759e988-bd862e3fe1be46a994272793" || s.ParentID != "53995c3f42cd8ad8" {
		t.Errorf("emitted %+v", s)
	}
	if s.Fault || len(s.Causes) != 0 {
		t.Errorf("the outer span, ended with nil, is marked failed: %+v", s)
	}
}

func TestStartTracedError(t *testing.T) {
	ctx, em := tracedContext(t)
	_, end := Start(ctx, SpanSystemBCall)
	end(errors.New("systemb: get customer ana@example.com: 503"))
	segs := em.all()
	if len(segs) != 1 {
		t.Fatalf("emitted %d segments, want 1", len(segs))
	}
	s := segs[0]
	if !s.Fault || len(s.Causes) != 1 || s.Causes[0] != "systemb: get customer [email]: 503" {
		t.Errorf("emitted %+v, want a fault with the scrubbed message", s)
	}
}

// server is an httptest server recording the trace header it receives.
func server(t *testing.T, status int) (*httptest.Server, func() string) {
	t.Helper()
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("X-Amzn-Trace-Id")
		mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() string {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

func TestHTTPClientUntraced(t *testing.T) {
	srv, header := server(t, http.StatusOK)
	c := HTTPClient(srv.Client())
	silent(t, func() {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/v1/customers/ana@example.com", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != `{"ok":true}` {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})
	if h := header(); h != "" {
		t.Errorf("an untraced call sent a trace header: %q", h)
	}
}

func TestHTTPClientTraced(t *testing.T) {
	tests := []struct {
		name                  string
		status                int
		wantErr, wantThrottle bool
		wantFault             bool
	}{
		{"ok", http.StatusOK, false, false, false},
		{"not found", http.StatusNotFound, true, false, false},
		{"throttled", http.StatusTooManyRequests, true, true, false},
		{"unavailable", http.StatusServiceUnavailable, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, header := server(t, tt.status)
			c := HTTPClient(&http.Client{Transport: srv.Client().Transport})
			ctx, em := tracedContext(t)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet,
				srv.URL+"/v1/customers/ana%40example.com?token=abc#frag", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer abc")
			silent(t, func() {
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				resp.Body.Close()
			})
			if req.Header.Get("X-Amzn-Trace-Id") != "" {
				t.Errorf("the caller's request was modified")
			}
			if h := header(); !strings.HasPrefix(h, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=") || !strings.HasSuffix(h, ";Sampled=1") {
				t.Errorf("downstream trace header = %q", h)
			}
			segs := em.all()
			if len(segs) != 1 {
				t.Fatalf("emitted %d segments, want 1", len(segs))
			}
			s := segs[0]
			wantURL := srv.URL + "/v1/customers/{redacted}"
			if s.Namespace != "remote" || s.Method != http.MethodGet || s.URL != wantURL || s.Status != tt.status {
				t.Errorf("emitted %+v, want URL %s", s, wantURL)
			}
			if s.Error != tt.wantErr || s.Throttle != tt.wantThrottle || s.Fault != tt.wantFault {
				t.Errorf("flags error=%v throttle=%v fault=%v", s.Error, s.Throttle, s.Fault)
			}
		})
	}
}

func TestHTTPClientTransportError(t *testing.T) {
	srv, _ := server(t, http.StatusOK)
	url := srv.URL + "/v1/customers/ana@example.com"
	srv.Close() // connection refused
	ctx, em := tracedContext(t)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	silent(t, func() {
		if _, err := HTTPClient(nil).Do(req); err == nil {
			t.Fatalf("Do to a closed server succeeded")
		}
	})
	segs := em.all()
	if len(segs) != 1 || !segs[0].Fault || len(segs[0].Causes) != 1 {
		t.Fatalf("emitted %+v, want one fault", segs)
	}
	if !strings.Contains(segs[0].Causes[0], "connection refused") {
		t.Errorf("cause %q is not the transport error", segs[0].Causes[0])
	}
}

func TestHTTPClientKeepsSettings(t *testing.T) {
	jar := http.CookieJar(nil)
	redirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	in := &http.Client{Timeout: 1234, CheckRedirect: redirect, Jar: jar}
	out := HTTPClient(in)
	if out == in || out.Timeout != 1234 || out.CheckRedirect == nil || in.Transport != nil {
		t.Errorf("HTTPClient did not copy the settings or modified its argument")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://b.example/v1/customers/ana@example.com", "https://b.example/v1/customers/{redacted}"},
		{"https://b.example/v1/customers/ANA%40example.com/orders", "https://b.example/v1/customers/{redacted}/orders"},
		{"https://user:pw@b.example/v1/customers?email=ana@example.com&cursor=x", "https://b.example/v1/customers"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tt.in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := redactURL(req.URL); got != tt.want {
				t.Errorf("redactURL = %q, want %q", got, tt.want)
			}
		})
	}
}

// s3Client returns an S3 client on an instrumented config pointed at url.
func s3Client(t *testing.T, url string, instrumentTimes int) *s3.Client {
	t.Helper()
	cfg := aws.Config{
		Region:           "eu-west-1",
		Credentials:      aws.NewCredentialsCache(aws.CredentialsProviderFunc(fakeCredentials)),
		BaseEndpoint:     aws.String(url),
		RetryMaxAttempts: 1,
	}
	for range instrumentTimes {
		InstrumentAWS(&cfg)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// fakeCredentials are static test credentials.
func fakeCredentials(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", Source: "test"}, nil
}

func TestInstrumentAWS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("x-amz-request-id", "REQ123")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>REQ123</RequestId></Error>`)
	}))
	t.Cleanup(srv.Close)
	traced, em := tracedContext(t)
	noRoot, emNoRoot := headerContext(t, "Sampled=1")
	tests := []struct {
		name       string
		ctx        context.Context
		instrument int
		wantSegs   int
	}{
		{"untraced", context.Background(), 1, 0},
		{"trace header without root", noRoot, 1, 0},
		{"instrumented twice", context.Background(), 2, 0},
		{"traced", traced, 1, 1},
		{"traced, instrumented twice", traced, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s3Client(t, srv.URL, tt.instrument)
			silent(t, func() {
				_, err := c.GetObject(tt.ctx, &s3.GetObjectInput{Bucket: aws.String("snapshots"), Key: aws.String("systema.db")})
				if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
					t.Errorf("GetObject error = %v, want AccessDenied", err)
				}
			})
			if got := len(em.all()); got != tt.wantSegs {
				t.Errorf("%d segments emitted so far, want %d", got, tt.wantSegs)
			}
		})
	}
	if segs := emNoRoot.all(); len(segs) != 0 {
		t.Errorf("a call with a trace header without root emitted %+v", segs)
	}
	s := em.all()[0]
	if s.Name != "S3" || s.Namespace != "aws" || s.Operation != "GetObject" || s.Status != http.StatusForbidden || !s.Error {
		t.Errorf("emitted %+v", s)
	}
}

func BenchmarkStartUntraced(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		_, end := Start(ctx, SpanSQLiteQuery)
		end(nil)
	}
}

// countingTransport counts the requests it carries to its base.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// TestHTTPClientUsesTheGivenTransport checks that traced and untraced
// calls both go through the client's own transport (with its connection
// pool), never a default one.
func TestHTTPClientUsesTheGivenTransport(t *testing.T) {
	srv, _ := server(t, http.StatusOK)
	base := &countingTransport{base: srv.Client().Transport}
	c := HTTPClient(&http.Client{Transport: base})
	traced, _ := tracedContext(t)
	for i, ctx := range []context.Context{context.Background(), traced} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/customers", nil)
		if err != nil {
			t.Fatal(err)
		}
		silent(t, func() {
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			resp.Body.Close()
		})
		if got := base.n.Load(); got != int64(i+1) {
			t.Errorf("after %d calls the given transport carried %d", i+1, got)
		}
	}
}
