package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/localtest"
)

// testBootstrap is cmd/local/testdata/testfn, built once by TestMain.
var testBootstrap string

func TestMain(m *testing.M) {
	os.Exit(localtest.RunWithTestFn(m, "../../testdata/testfn", &testBootstrap))
}

func newFunction(t *testing.T, mod func(*Config)) (*Function, *localtest.Buffer) {
	t.Helper()
	log := &localtest.Buffer{}
	cfg := Config{
		Name:      "TestFunction",
		Bootstrap: testBootstrap,
		Timeout:   5 * time.Second,
		MemoryMB:  256,
		Log:       log,
		Env:       map[string]string{"CUSTOM": "from-template", "SHADOWED": "template"},
		Forced:    map[string]string{"SHADOWED": "forced"},
	}
	if mod != nil {
		mod(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f, log
}

func invoke(t *testing.T, f *Function, event string) *Result {
	t.Helper()
	res, err := f.Invoke(context.Background(), []byte(event), InvokeOptions{CaptureLog: true})
	if err != nil {
		t.Fatalf("Invoke(%s): %v", event, err)
	}
	return res
}

func envOf(t *testing.T, res *Result) map[string]string {
	t.Helper()
	if res.FunctionError != "" {
		t.Fatalf("function error %s: %s", res.ErrorType, res.Payload)
	}
	var m map[string]string
	if err := json.Unmarshal(res.Payload, &m); err != nil {
		t.Fatalf("payload %s: %v", res.Payload, err)
	}
	return m
}

func errorDoc(t *testing.T, res *Result) (msg, typ string) {
	t.Helper()
	if res.FunctionError != "Unhandled" {
		t.Fatalf("FunctionError = %q, want Unhandled; payload %s", res.FunctionError, res.Payload)
	}
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if err := json.Unmarshal(res.Payload, &doc); err != nil {
		t.Fatalf("error payload %s: %v", res.Payload, err)
	}
	return doc.ErrorMessage, doc.ErrorType
}

var reportRE = regexp.MustCompile(`REPORT RequestId: ([0-9a-f-]+)\tDuration: (\d+\.\d\d) ms\tBilled Duration: (\d+) ms\tMemory Size: 256 MB\tMax Memory Used: (\d+) MB`)

func TestInvokeOK(t *testing.T) {
	f, _ := newFunction(t, nil)
	res := invoke(t, f, `{"echo": {"hello": "world"}}`)
	if res.FunctionError != "" || string(res.Payload) != `{"hello":"world"}` {
		t.Fatalf("result = %q %s", res.FunctionError, res.Payload)
	}
	log := string(res.Log)
	m := reportRE.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no REPORT line in:\n%s", log)
	}
	if m[1] != res.RequestID {
		t.Errorf("REPORT request id %s, want %s", m[1], res.RequestID)
	}
	if m[4] == "0" {
		t.Errorf("Max Memory Used is 0 in %q", m[0])
	}
	if res.InitDuration <= 0 || !strings.Contains(log, "\tInit Duration: ") {
		t.Errorf("a cold start has no Init Duration: %v\n%s", res.InitDuration, log)
	}
	for _, want := range []string{"INIT_START ", "START RequestId: " + res.RequestID + " Version: $LATEST", "END RequestId: " + res.RequestID} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if res.BilledDuration < res.Duration+res.InitDuration {
		t.Errorf("billed %v < duration %v + init %v", res.BilledDuration, res.Duration, res.InitDuration)
	}

	warm := invoke(t, f, `{"echo": 1}`)
	if string(warm.Payload) != "1" || warm.InitDuration != 0 || strings.Contains(string(warm.Log), "Init Duration") || strings.Contains(string(warm.Log), "INIT_START") {
		t.Errorf("warm invoke: payload %s init %v log:\n%s", warm.Payload, warm.InitDuration, warm.Log)
	}
}

func TestEnvironmentAndHeaders(t *testing.T) {
	f, _ := newFunction(t, nil)
	res, err := f.Invoke(context.Background(), []byte(`{"env": ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
		"AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "_HANDLER", "LAMBDA_TASK_ROOT", "TZ", "CUSTOM", "SHADOWED", "_X_AMZN_TRACE_ID"]}`),
		InvokeOptions{RequestID: "11111111-2222-3333-4444-555555555555"})
	if err != nil {
		t.Fatal(err)
	}
	env := envOf(t, res)
	want := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "TestFunction",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/TestFunction",
		"AWS_REGION":                      "us-east-1",
		"AWS_DEFAULT_REGION":              "us-east-1",
		"AWS_ACCESS_KEY_ID":               FakeAccessKeyID,
		"_HANDLER":                        "bootstrap",
		"LAMBDA_TASK_ROOT":                filepath.Dir(testBootstrap),
		"TZ":                              ":UTC",
		"CUSTOM":                          "from-template",
		"SHADOWED":                        "forced",
		"requestId":                       "11111111-2222-3333-4444-555555555555",
		"arn":                             "arn:aws:lambda:us-east-1:123456789012:function:TestFunction",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if !strings.HasPrefix(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q", env["AWS_LAMBDA_RUNTIME_API"])
	}
	if !regexp.MustCompile(`^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$`).MatchString(env["AWS_LAMBDA_LOG_STREAM_NAME"]) {
		t.Errorf("AWS_LAMBDA_LOG_STREAM_NAME = %q", env["AWS_LAMBDA_LOG_STREAM_NAME"])
	}
	if !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`).MatchString(env["_X_AMZN_TRACE_ID"]) {
		t.Errorf("_X_AMZN_TRACE_ID = %q", env["_X_AMZN_TRACE_ID"])
	}
	var left int
	fmt.Sscan(env["deadlineInMs"], &left)
	if left <= 0 || left > 5000 {
		t.Errorf("the deadline is %d ms away, want within the 5 s timeout", left)
	}
}

func TestFunctionError(t *testing.T) {
	f, _ := newFunction(t, nil)
	res := invoke(t, f, `{"error": "no such customer"}`)
	msg, typ := errorDoc(t, res)
	if msg != "no such customer" || typ != "errorString" || res.ErrorType != "errorString" {
		t.Errorf("error = %q (%q), ErrorType %q", msg, typ, res.ErrorType)
	}
	if !strings.Contains(string(res.Log), "Status: error\tError Type: errorString") {
		t.Errorf("REPORT lacks the error status:\n%s", res.Log)
	}
	// The process stays warm after a handled error.
	before := envOf(t, invoke(t, f, `{"env": ["X"]}`))["pid"]
	invoke(t, f, `{"error": "again"}`)
	if after := envOf(t, invoke(t, f, `{"env": ["X"]}`))["pid"]; after != before {
		t.Errorf("pid changed from %s to %s after a handled error", before, after)
	}
}

func TestTimeoutKillsAndRestarts(t *testing.T) {
	f, _ := newFunction(t, func(c *Config) { c.Timeout = 300 * time.Millisecond })
	first := envOf(t, invoke(t, f, `{"env": ["X"]}`))["pid"]
	res := invoke(t, f, `{"sleepMs": 60000}`)
	msg, typ := errorDoc(t, res)
	if typ != "Sandbox.Timedout" || !strings.HasSuffix(msg, "Task timed out after 0.30 seconds") {
		t.Errorf("error = %q (%q)", msg, typ)
	}
	if !strings.Contains(string(res.Log), "Task timed out after 0.30 seconds") || !strings.Contains(string(res.Log), "Status: timeout") {
		t.Errorf("log lacks the timeout:\n%s", res.Log)
	}
	if processAlive(t, first) {
		t.Errorf("process %s still runs after the timeout", first)
	}
	next := invoke(t, f, `{"env": ["X"]}`)
	if pid := envOf(t, next)["pid"]; pid == first {
		t.Errorf("the next invoke ran in the killed process %s", pid)
	}
	if next.InitDuration <= 0 {
		t.Errorf("the restart is not a cold start")
	}
}

func processAlive(t *testing.T, pid string) bool {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(pid, &n); err != nil {
		t.Fatalf("pid %q", pid)
	}
	// Zombies count as gone: the sandbox reaps its children.
	return syscall.Kill(n, 0) == nil
}

func TestCrashes(t *testing.T) {
	tests := []struct {
		name, event, wantType, wantMsg string
	}{
		{"exit", `{"exit": 2}`, "Runtime.ExitError", "Runtime exited with error: exit status 2"},
		{"exit 0", `{"exit": 0}`, "Runtime.ExitError", "Runtime exited without providing a reason"},
		{"panic", `{"panic": true}`, "string", "testfn was asked to panic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newFunction(t, nil)
			first := envOf(t, invoke(t, f, `{"env": ["X"]}`))["pid"]
			res := invoke(t, f, tc.event)
			msg, typ := errorDoc(t, res)
			if typ != tc.wantType || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("error = %q (%q), want %q (%q)", msg, typ, tc.wantMsg, tc.wantType)
			}
			if !strings.Contains(string(res.Log), "END RequestId: "+res.RequestID) {
				t.Errorf("no END line:\n%s", res.Log)
			}
			next := invoke(t, f, `{"env": ["X"]}`)
			if pid := envOf(t, next)["pid"]; pid == first {
				t.Errorf("the next invoke ran in the dead process %s", pid)
			}
		})
	}
}

// TestDeathBetweenInvocations: a warm process killed while idle costs the
// next invocation nothing but a cold start, even when the kill races with
// the invocation's delivery.
func TestDeathBetweenInvocations(t *testing.T) {
	f, _ := newFunction(t, nil)
	for i := range 5 {
		pid := envOf(t, invoke(t, f, `{"env": ["X"]}`))["pid"]
		var n int
		fmt.Sscan(pid, &n)
		if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		res := invoke(t, f, `{"env": ["X"]}`)
		if got := envOf(t, res)["pid"]; got == pid {
			t.Fatalf("round %d: ran in the dead process %s", i, pid)
		}
	}
}

func TestInitFailures(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*Config)
		wantType string
		wantMsg  string
	}{
		{"exit at init", func(c *Config) { c.Env = map[string]string{"TESTFN_INIT": "exit"} }, "Runtime.ExitError", "exit status 3"},
		{"init too slow", func(c *Config) {
			c.Env = map[string]string{"TESTFN_INIT": "sleep"}
			c.InitTimeout = 200 * time.Millisecond
		}, "Sandbox.Timedout", "within 0.20 seconds"},
		{"no bootstrap", func(c *Config) { c.Bootstrap = filepath.Join(t.TempDir(), "missing") }, "Runtime.InvalidEntrypoint", "cannot start the bootstrap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newFunction(t, tc.mod)
			for i := range 2 { // and again: each invoke tries afresh
				res := invoke(t, f, `{}`)
				msg, typ := errorDoc(t, res)
				if typ != tc.wantType || !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("invoke %d: error = %q (%q), want %q (%q)", i, msg, typ, tc.wantMsg, tc.wantType)
				}
				if !reportRE.MatchString(string(res.Log)) {
					t.Errorf("invoke %d: no REPORT line:\n%s", i, res.Log)
				}
			}
		})
	}
}

func TestLogOrderAndCapture(t *testing.T) {
	f, all := newFunction(t, nil)
	res := invoke(t, f, `{"log": "hello log"}`)
	log := string(res.Log)
	start := strings.Index(log, "START RequestId")
	out := strings.Index(log, "stdout: hello log")
	errl := strings.Index(log, "stderr: hello log")
	end := strings.Index(log, "END RequestId")
	if start < 0 || out < start || errl < out || end < errl {
		t.Errorf("want START, stdout, stderr, END in order; got:\n%s", log)
	}
	if !strings.Contains(all.String(), log) {
		t.Errorf("the captured log is not what the log writer got:\n%s\n---\n%s", log, all.String())
	}
}

func TestResponseTooLarge(t *testing.T) {
	f, _ := newFunction(t, nil)
	big := `{"echo": "` + strings.Repeat("x", MaxResponseSize) + `"}`
	res := invoke(t, f, big)
	if _, typ := errorDoc(t, res); typ != "Function.ResponseSizeTooLarge" {
		t.Errorf("errorType = %q", typ)
	}
	if got := invoke(t, f, `{"echo": "small"}`); string(got.Payload) != `"small"` {
		t.Errorf("after a too large response: %s %s", got.FunctionError, got.Payload)
	}
}

func TestConcurrentInstances(t *testing.T) {
	f, _ := newFunction(t, func(c *Config) { c.MaxInstances = 2 })
	// Two invocations that each wait for the other to have started can only
	// finish if they run in two processes at once; a barrier-free check is
	// that they report different pids while overlapping in time.
	var wg sync.WaitGroup
	pids := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.Invoke(context.Background(), []byte(`{"sleepMs": 400, "env": ["X"]}`), InvokeOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			var m map[string]string
			json.Unmarshal(res.Payload, &m)
			pids[i] = m["pid"]
		}()
	}
	wg.Wait()
	if pids[0] == "" || pids[0] == pids[1] {
		t.Errorf("pids = %v, want two processes", pids)
	}
}

func TestClose(t *testing.T) {
	f, _ := newFunction(t, nil)
	pid := envOf(t, invoke(t, f, `{"env": ["X"]}`))["pid"]
	errc := make(chan error, 1)
	go func() {
		_, err := f.Invoke(context.Background(), []byte(`{"sleepMs": 60000}`), InvokeOptions{})
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // not an assertion: gives the invoke a chance to be in flight
	f.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("in-flight invoke: %v, want ErrClosed", err)
	}
	if _, err := f.Invoke(context.Background(), []byte(`{}`), InvokeOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("invoke after Close: %v, want ErrClosed", err)
	}
	if processAlive(t, pid) {
		t.Errorf("process %s survives Close", pid)
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{{}, {Name: "x"}, {Name: "x", Bootstrap: "/b"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// BenchmarkWarmInvoke measures the tool's overhead for one warm no-op round
// trip through the Runtime API (the function echoes "{}"); it reports the
// p50 and p99 latency.
func BenchmarkWarmInvoke(b *testing.B) {
	f, err := New(Config{Name: "Bench", Bootstrap: testBootstrap, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	if _, err := f.Invoke(ctx, []byte(`{}`), InvokeOptions{}); err != nil { // cold start
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		res, err := f.Invoke(ctx, []byte(`{}`), InvokeOptions{})
		if err != nil || res.FunctionError != "" {
			b.Fatalf("invoke: %v %v", err, res)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	b.Helper()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
