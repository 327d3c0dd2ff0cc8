package invokeapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
)

// fakeInvoker records calls and answers with a fixed result.
type fakeInvoker struct {
	mu    sync.Mutex
	calls []call
	res   sandbox.Result
	err   error
	done  chan struct{}
}

type call struct {
	fn      string
	payload string
	opts    sandbox.InvokeOptions
}

func (f *fakeInvoker) Invoke(_ context.Context, fn string, payload []byte, opts sandbox.InvokeOptions) (*sandbox.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{fn, string(payload), opts})
	f.mu.Unlock()
	if f.done != nil {
		defer close(f.done)
	}
	if f.err != nil {
		return nil, f.err
	}
	r := f.res
	r.RequestID = opts.RequestID
	return &r, nil
}

func (f *fakeInvoker) Has(fn string) bool { return fn == "Fn" }

var _ Invoker = (*fakeInvoker)(nil)
var _ Invoker = sandbox.Set(nil)

func TestServeHTTP(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		body       string
		inv        *fakeInvoker
		wantStatus int
		wantHeader map[string]string
		wantBody   string // substring
		wantCall   *call
	}{
		{name: "ok", method: "POST", path: "/2015-03-31/functions/Fn/invocations", body: `{"a":1}`,
			inv: &fakeInvoker{res: sandbox.Result{Payload: []byte(`{"ok":true}`)}}, wantStatus: 200,
			wantHeader: map[string]string{"X-Amz-Executed-Version": "$LATEST", "X-Amz-Function-Error": ""}, wantBody: `{"ok":true}`,
			wantCall: &call{fn: "Fn", payload: `{"a":1}`}},
		{name: "empty payload is {}", method: "POST", path: "/2015-03-31/functions/Fn/invocations",
			inv: &fakeInvoker{}, wantStatus: 200, wantCall: &call{fn: "Fn", payload: `{}`}},
		{name: "function error", method: "POST", path: "/2015-03-31/functions/Fn/invocations", body: `{}`,
			inv: &fakeInvoker{res: sandbox.Result{Payload: []byte(`{"errorMessage":"x"}`), FunctionError: "Unhandled"}}, wantStatus: 200,
			wantHeader: map[string]string{"X-Amz-Function-Error": "Unhandled"}, wantBody: `"errorMessage":"x"`},
		{name: "full ARN with $LATEST", method: "POST", path: "/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:Fn:$LATEST/invocations", body: `{}`,
			inv: &fakeInvoker{}, wantStatus: 200, wantCall: &call{fn: "Fn", payload: `{}`}},
		{name: "partial ARN", method: "POST", path: "/2015-03-31/functions/123456789012:function:Fn/invocations", body: `{}`,
			inv: &fakeInvoker{}, wantStatus: 200, wantCall: &call{fn: "Fn", payload: `{}`}},
		{name: "unknown function", method: "POST", path: "/2015-03-31/functions/Nope/invocations", body: `{}`, inv: &fakeInvoker{},
			wantStatus: 404, wantHeader: map[string]string{"X-Amzn-Errortype": "ResourceNotFoundException"}, wantBody: "Function not found: arn:aws:lambda:us-east-1:123456789012:function:Nope"},
		{name: "unknown qualifier", method: "POST", path: "/2015-03-31/functions/Fn/invocations?Qualifier=prod", body: `{}`, inv: &fakeInvoker{},
			wantStatus: 404, wantHeader: map[string]string{"X-Amzn-Errortype": "ResourceNotFoundException"}, wantBody: "function:Fn:prod"},
		{name: "not JSON", method: "POST", path: "/2015-03-31/functions/Fn/invocations", body: `{nope`, inv: &fakeInvoker{},
			wantStatus: 400, wantHeader: map[string]string{"X-Amzn-Errortype": "InvalidRequestContentException"}},
		{name: "too large", method: "POST", path: "/2015-03-31/functions/Fn/invocations", body: `"` + strings.Repeat("x", MaxSyncPayload) + `"`, inv: &fakeInvoker{},
			wantStatus: 413, wantHeader: map[string]string{"X-Amzn-Errortype": "RequestTooLargeException"}},
		{name: "bad invocation type", method: "POST", path: "/2015-03-31/functions/Fn/invocations", header: map[string]string{"X-Amz-Invocation-Type": "Later"}, inv: &fakeInvoker{},
			wantStatus: 400, wantHeader: map[string]string{"X-Amzn-Errortype": "InvalidParameterValueException"}},
		{name: "dry run", method: "POST", path: "/2015-03-31/functions/Fn/invocations", header: map[string]string{"X-Amz-Invocation-Type": "DryRun"}, inv: &fakeInvoker{},
			wantStatus: 204},
		{name: "client context and tail", method: "POST", path: "/2015-03-31/functions/Fn/invocations", body: `{}`,
			header:     map[string]string{"X-Amz-Client-Context": base64.StdEncoding.EncodeToString([]byte(`{"custom":{"a":"b"}}`)), "X-Amz-Log-Type": "Tail"},
			inv:        &fakeInvoker{res: sandbox.Result{Payload: []byte(`1`), Log: []byte("START x\nEND x\n")}},
			wantStatus: 200, wantHeader: map[string]string{"X-Amz-Log-Result": base64.StdEncoding.EncodeToString([]byte("START x\nEND x\n"))},
			wantCall: &call{fn: "Fn", payload: `{}`, opts: sandbox.InvokeOptions{ClientContext: `{"custom":{"a":"b"}}`, CaptureLog: true}}},
		{name: "bad client context", method: "POST", path: "/2015-03-31/functions/Fn/invocations", body: `{}`,
			header: map[string]string{"X-Amz-Client-Context": "!!"}, inv: &fakeInvoker{}, wantStatus: 400},
		{name: "closed", method: "POST", path: "/2015-03-31/functions/Fn/invocations", body: `{}`, inv: &fakeInvoker{err: sandbox.ErrClosed},
			wantStatus: 503, wantHeader: map[string]string{"X-Amzn-Errortype": "ServiceException"}},
		{name: "other operation", method: "GET", path: "/2015-03-31/functions/Fn", inv: &fakeInvoker{},
			wantStatus: 404, wantHeader: map[string]string{"X-Amzn-Errortype": "UnknownOperationException"}},
		{name: "GET on invocations", method: "GET", path: "/2015-03-31/functions/Fn/invocations", inv: &fakeInvoker{}, wantStatus: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			(&Server{Invoker: tc.inv}).ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %s, want %d %q", rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tc.wantCall != nil {
				if len(tc.inv.calls) != 1 {
					t.Fatalf("calls = %v", tc.inv.calls)
				}
				got := tc.inv.calls[0]
				got.opts.RequestID = ""
				if got != *tc.wantCall {
					t.Errorf("call = %+v, want %+v", got, *tc.wantCall)
				}
				if rec.Header().Get("X-Amzn-Requestid") != tc.inv.calls[0].opts.RequestID {
					t.Errorf("X-Amzn-Requestid %q is not the invocation's %q", rec.Header().Get("X-Amzn-Requestid"), tc.inv.calls[0].opts.RequestID)
				}
			}
		})
	}
}

func TestEventInvocation(t *testing.T) {
	inv := &fakeInvoker{done: make(chan struct{})}
	srv := &Server{Invoker: inv}
	req := httptest.NewRequest("POST", "/2015-03-31/functions/Fn/invocations", strings.NewReader(`{"n":1}`))
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted || rec.Body.Len() != 0 {
		t.Fatalf("got %d %q", rec.Code, rec.Body)
	}
	<-inv.done
	srv.Wait()
	if len(inv.calls) != 1 || inv.calls[0].payload != `{"n":1}` {
		t.Errorf("calls = %+v", inv.calls)
	}
}

func TestTail(t *testing.T) {
	log := []byte(strings.Repeat("line of log\n", 1000))
	got := tail(log, LogTailBytes)
	if len(got) > LogTailBytes || !bytes.HasPrefix(got, []byte("line of log\n")) || !bytes.HasSuffix(log, got) {
		t.Errorf("tail: %d bytes starting %q", len(got), got[:20])
	}
	if string(tail([]byte("short"), 10)) != "short" {
		t.Errorf("short tail")
	}
}

// BenchmarkInvokeAPIWarm measures the tool's overhead for a warm no-op
// invocation through the whole local path: an HTTP request to the Invoke
// API, the Runtime API round trip to the function process (which echoes {})
// and the HTTP response. It reports the p50 and p99 latency.
func BenchmarkInvokeAPIWarm(b *testing.B) {
	dir := b.TempDir()
	bootstrap := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bootstrap, "../../testdata/testfn")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("build testfn: %v", err)
	}
	f, err := sandbox.New(sandbox.Config{Name: "Bench", Bootstrap: bootstrap, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	srv := httptest.NewServer(&Server{Invoker: sandbox.Set{"Bench": f}})
	defer srv.Close()
	url := srv.URL + "/2015-03-31/functions/Bench/invocations"
	client := srv.Client()
	do := func() {
		resp, err := client.Post(url, "application/json", strings.NewReader(`{}`))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != `{}` || resp.Header.Get("X-Amz-Function-Error") != "" {
			b.Fatalf("invoke: %d %s", resp.StatusCode, body)
		}
	}
	do() // cold start
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		do()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Microsecond) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "n=%d p50=%.0fµs p99=%.0fµs\n", len(lat), pct(0.5), pct(0.99))
	}
}
