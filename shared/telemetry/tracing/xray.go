//go:build !noxray

package tracing

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/header"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"
	"github.com/aws/aws-xray-sdk-go/strategy/ctxmissing"
	"github.com/aws/aws-xray-sdk-go/xray"
	"github.com/aws/aws-xray-sdk-go/xraylog"
	"github.com/aws/smithy-go/middleware"

	"github.com/acme/unified-customer-service/shared/telemetry/internal/pii"
)

// configure holds the result of the one-time SDK configuration.
var configure = sync.OnceValue(func() error {
	xray.SetLogger(xraylog.NullLogger)
	return xray.Configure(xray.Config{ContextMissingStrategy: ctxmissing.NewDefaultIgnoreErrorStrategy()})
})

// Configure silences the SDK's logger and makes a missing segment a silent
// no-op. Call it once at init; the other functions of the package call it
// too, so forgetting it is harmless. It returns the SDK's error for a
// malformed AWS_XRAY_DAEMON_ADDRESS, every time it is called.
func Configure() error { return configure() }

// traced reports whether ctx can hold a subsegment: it has a segment, or the
// Lambda trace header with a trace id (the SDK then creates the facade
// segment of the invocation).
func traced(ctx context.Context) bool {
	if xray.GetSegment(ctx) != nil {
		return true
	}
	h, _ := ctx.Value(xray.LambdaTraceHeaderKey).(string)
	return h != "" && header.FromString(h).TraceID != ""
}

// Start begins a span (an X-Ray subsegment) named name, a child of the span
// or segment in ctx. Call end exactly once with the outcome; a non-nil
// error marks the span as failed, its message scrubbed of email addresses.
// Calling end again does nothing. Without a segment or trace header in ctx,
// Start returns ctx and an end that does nothing. Names are at most 200
// characters of letters, digits, spaces and _ . : / % & # = + \ - @.
func Start(ctx context.Context, name string) (_ context.Context, end func(err error)) {
	_ = Configure()
	if !traced(ctx) {
		return ctx, func(error) {}
	}
	ctx, seg := xray.BeginSubsegment(ctx, name)
	if seg == nil {
		return ctx, func(error) {}
	}
	var once sync.Once
	return ctx, func(err error) { once.Do(func() { seg.Close(scrub(err)) }) }
}

// scrubbedError is an error whose message had email addresses removed.
type scrubbedError struct{ msg string }

// Error returns the scrubbed message.
func (e *scrubbedError) Error() string { return e.msg }

// scrub returns err, or an error with its message scrubbed of email
// addresses when it holds any.
func scrub(err error) error {
	if err == nil {
		return nil
	}
	if msg := pii.Scrub(err.Error()); msg != err.Error() {
		return &scrubbedError{msg: msg}
	}
	return err
}

// HTTPClient returns a copy of c (http.DefaultClient's settings when nil)
// whose calls are traced: each request made with a traced context becomes
// a "remote" subsegment named after the host, recording the method, the
// redacted URL and the status (4xx error, 429 throttle, 5xx fault), and
// carries the X-Amzn-Trace-Id header downstream. Requests made with an
// untraced context go straight to the transport. Timeout, CheckRedirect
// and Jar are kept, and every request goes through c's own Transport, so
// its connection pool is the one used; a nil Transport means
// http.DefaultTransport (2 idle connections per host), so pass a tuned one.
func HTTPClient(c *http.Client) *http.Client {
	_ = Configure()
	if c == nil {
		c = http.DefaultClient
	}
	out := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = &roundTripper{base: base}
	return &out
}

// roundTripper traces the requests of a traced context.
type roundTripper struct{ base http.RoundTripper }

var _ http.RoundTripper = (*roundTripper)(nil)

// RoundTrip sends r through the base transport, in a subsegment when r's
// context is traced. r itself is not modified.
func (t *roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if !traced(r.Context()) {
		return t.base.RoundTrip(r)
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	ctx, seg := xray.BeginSubsegment(r.Context(), host)
	if seg == nil {
		return t.base.RoundTrip(r)
	}
	seg.Lock()
	seg.Namespace = "remote"
	seg.GetHTTP().GetRequest().Method = r.Method
	seg.GetHTTP().GetRequest().URL = redactURL(r.URL)
	downstream := seg.DownstreamHeader().String()
	seg.Unlock()

	r = r.Clone(ctx)
	r.Header.Set(xray.TraceIDHeaderKey, downstream)
	resp, err := t.base.RoundTrip(r)
	if resp != nil {
		xray.HttpCaptureResponse(seg, resp.StatusCode)
	}
	seg.Close(scrub(err))
	return resp, err
}

// redactURL returns u as a string without user info, query or fragment,
// with each path segment holding an '@' (or its escape "%40") replaced by
// "{redacted}".
func redactURL(u *url.URL) string {
	c := url.URL{Scheme: u.Scheme, Host: u.Host}
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		if strings.Contains(s, "@") || strings.Contains(strings.ToLower(s), "%40") {
			segs[i] = "{redacted}"
		}
	}
	return c.String() + strings.Join(segs, "/")
}

// guardID names the middleware InstrumentAWS adds before the X-Ray one.
const guardID = "TracingContextGuard"

// InstrumentAWS makes the AWS SDK v2 clients built from cfg trace their
// calls: each call with a traced context becomes an "aws" subsegment named
// after the service (S3, Secrets Manager) with its operation, region and
// request id. It appends one API option to cfg.APIOptions, so call it
// before creating the clients; instrumenting one config twice is harmless.
// A guard hides an empty or malformed Lambda trace header from the SDK, so
// calls made outside a traced invocation stay untraced and silent.
func InstrumentAWS(cfg *aws.Config) {
	_ = Configure()
	if cfg == nil {
		return
	}
	cfg.APIOptions = append(cfg.APIOptions, instrumentStack)
}

// instrumentStack adds the guard and the X-Ray middlewares to a stack,
// once.
func instrumentStack(stack *middleware.Stack) error {
	if _, ok := stack.Initialize.Get(guardID); ok {
		return nil
	}
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc(guardID, guard), middleware.Before); err != nil {
		return fmt.Errorf("tracing: add context guard: %w", err)
	}
	var opts []func(*middleware.Stack) error
	awsv2.AWSV2Instrumentor(&opts)
	for _, opt := range opts {
		if err := opt(stack); err != nil {
			return fmt.Errorf("tracing: add X-Ray middleware: %w", err)
		}
	}
	return nil
}

// guard shadows the Lambda trace header of an untraced context (empty or
// without a trace id) with nil, so that the X-Ray middleware sees no header
// rather than creating a facade segment with no trace id.
func guard(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (
	middleware.InitializeOutput, middleware.Metadata, error,
) {
	if ctx.Value(xray.LambdaTraceHeaderKey) != nil && !traced(ctx) {
		ctx = context.WithValue(ctx, xray.LambdaTraceHeaderKey, nil) //nolint:staticcheck // the SDK's own key
	}
	return next.HandleInitialize(ctx, in)
}
