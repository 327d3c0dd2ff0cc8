package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/cmd/local/internal/localtest"
)

// testTemplate is cmd/local's test template; every function is testfn.
var testTemplate, _ = filepath.Abs("../../testdata/template.yaml")

// buildDir holds the test functions' bootstraps, built once by TestMain
// through the `build` command (and so through make).
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "local-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = filepath.Join(dir, "build")
	var stdout, stderr bytes.Buffer
	app := &App{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	if code := app.Run(context.Background(), []string{"build", "-t", testTemplate, "--build-dir", buildDir}); code != 0 {
		fmt.Fprintf(os.Stderr, "building the test functions: exit %d\n%s", code, stderr.String())
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the tool in-process with the test template and prebuilt
// bootstraps; the embedded services are off unless args say otherwise.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb localtest.Buffer
	app := &App{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	full := append([]string{args[0], "-t", testTemplate, "--build-dir", buildDir, "--skip-build", "--embedded", "off", "--data-dir", t.TempDir()}, args[1:]...)
	code = app.Run(context.Background(), full)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInvoke(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string // substring
		wantStderr []string
	}{
		{"ok from a file", []string{"invoke", "EchoFunction", "-e", writeFile(t, "ev.json", `{"echo": {"a": 1}}`)}, "", 0, `{"a":1}`,
			[]string{"START RequestId: ", "END RequestId: ", "REPORT RequestId: ", "Init Duration: "}},
		{"ok from stdin, flags first", []string{"invoke", "--event", "-", "EchoFunction"}, `"hi"`, 0, `"hi"`, nil},
		{"no event is {}", []string{"invoke", "EchoFunction"}, "", 0, `{}`, nil},
		{"function error exits 1", []string{"invoke", "EchoFunction", "-e", "-"}, `{"error": "boom"}`, 1, `"errorMessage":"boom"`, []string{"Status: error"}},
		{"timeout", []string{"invoke", "SlowFunction", "-e", "-"}, `{"sleepMs": 30000}`, 1, "Task timed out after 1.00 seconds", []string{"Status: timeout"}},
		{"crash at init", []string{"invoke", "InitCrashFunction"}, "", 1, `"errorType":"Runtime.ExitError"`, []string{"testfn: failing at init as asked"}},
		{"unknown function", []string{"invoke", "Nope"}, "", 2, "", []string{`no function "Nope"`, "EchoFunction"}},
		{"bad event", []string{"invoke", "EchoFunction", "-e", "-"}, `{nope`, 2, "", []string{"not valid JSON"}},
		{"two functions", []string{"invoke", "EchoFunction", "SlowFunction"}, "", 2, "", []string{"one function"}},
		{"unknown flag", []string{"invoke", "--nope"}, "", 2, "", []string{"flag provided but not defined"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tc.stdin, tc.args...)
			if code != tc.wantCode || !strings.Contains(stdout, tc.wantStdout) {
				t.Errorf("exit %d stdout %q, want %d and %q\nstderr:\n%s", code, stdout, tc.wantCode, tc.wantStdout, stderr)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestInvokeEnvironment(t *testing.T) {
	envFile := writeFile(t, "env.json", `{"Parameters": {"FROM_ENV_FILE": "p", "NOBODY": "x"}, "EchoFunction": {"SYSTEM_B_TOKEN": "t0k", "UNDECLARED": "x"}}`)
	code, stdout, stderr := run(t, `{"env": ["GREETING", "SYSTEM_B_TOKEN", "SYSTEM_B_URL", "FROM_ENV_FILE", "AWS_ENDPOINT_URL_S3", "UNDECLARED", "AWS_REGION", "QUEUE_URL"]}`,
		"invoke", "EchoFunction", "-e", "-", "-n", envFile, "--parameter-overrides", "Greeting=hi SystemBUrl=https://b.example", "--region", "eu-west-1",
		"--s3-endpoint", "http://127.0.0.1:9999")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(stdout), &env); err != nil {
		t.Fatalf("%s: %v", stdout, err)
	}
	want := map[string]string{
		"GREETING": "hi from eu-west-1", "SYSTEM_B_TOKEN": "t0k", "SYSTEM_B_URL": "https://b.example", "FROM_ENV_FILE": "p",
		"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9999", "UNDECLARED": "", "AWS_REGION": "eu-west-1", "QUEUE_URL": "",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for _, w := range []string{"EchoFunction.UNDECLARED is not declared", "Parameters.NOBODY is declared by no function", "environment variable QUEUE_URL"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
}

// TestInvokeWithEmbeddedServices starts the embedded S3 server and System B
// simulator on free ports: the functions get their URL and token.
func TestInvokeWithEmbeddedServices(t *testing.T) {
	var out, errb localtest.Buffer
	app := &App{Stdin: strings.NewReader(`{"env": ["SYSTEM_B_URL", "SYSTEM_B_TOKEN", "AWS_ENDPOINT_URL_S3"]}`), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := app.Run(context.Background(), []string{"invoke", "EchoFunction", "-e", "-", "-t", testTemplate, "--build-dir", buildDir, "--skip-build",
		"--embedded", "on", "--no-seed", "--data-dir", t.TempDir(), "--s3-addr", "127.0.0.1:0", "--bsim-addr", "127.0.0.1:0"})
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(out.String()), &env); err != nil {
		t.Fatalf("%s: %v", out.String(), err)
	}
	if !strings.HasPrefix(env["SYSTEM_B_URL"], "http://127.0.0.1:") || env["SYSTEM_B_URL"] == "http://127.0.0.1:8081" || env["SYSTEM_B_TOKEN"] != "local-systemb-token" {
		t.Errorf("System B settings: %v", env)
	}
	if !strings.HasPrefix(env["AWS_ENDPOINT_URL_S3"], "http://127.0.0.1:") || env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9000" {
		t.Errorf("S3 endpoint: %v", env)
	}
	if !strings.Contains(errb.String(), "buckets test-snapshots") {
		t.Errorf("the template's bucket was not created:\n%s", errb.String())
	}
}

func TestSchedule(t *testing.T) {
	code, stdout, stderr := run(t, "", "schedule", "ScheduledFunction", "--event-name", "Nightly", "--time", "2025-01-02T03:30:00Z")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var got struct{ ID, Time string }
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.Time != "2025-01-02T03:30:00Z" || len(got.ID) != 36 {
		t.Errorf("response %s (%v)", stdout, err)
	}
	code, stdout, stderr = run(t, "", "schedule", "ScheduledFunction", "--event-name", "Hourly", "--print-event")
	if code != 0 || !strings.Contains(stdout, `"detail-type":"Scheduled Event"`) || !strings.Contains(stdout, `"source":"aws.events"`) || strings.Contains(stderr, "Building") {
		t.Errorf("print-event: exit %d %s\n%s", code, stdout, stderr)
	}
	code, _, stderr = run(t, "", "schedule", "ScheduledFunction")
	if code != 2 || !strings.Contains(stderr, "--event-name") {
		t.Errorf("ambiguous schedule: exit %d\n%s", code, stderr)
	}
	code, _, stderr = run(t, "", "schedule", "EchoFunction")
	if code != 2 || !strings.Contains(stderr, "no Schedule") {
		t.Errorf("no schedule: exit %d\n%s", code, stderr)
	}
}

// TestScheduleStateMachine: schedule on a state machine runs its
// definition from the template on the local functions, printing each step,
// the execution's output on stdout; a Catch sends its message (printed)
// and the Fail state makes the command fail.
func TestScheduleStateMachine(t *testing.T) {
	code, stdout, stderr := run(t, "", "schedule", "LoopStateMachine", "--event-name", "Nightly", "--time", "2025-01-02T03:30:00Z")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var out struct {
		Event struct {
			Echo struct{ Status, ID string } `json:"echo"`
		} `json:"event"`
		Result struct{ Status string } `json:"result"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Result.Status != "ran" || len(out.Event.Echo.ID) != 36 {
		t.Errorf("output %s (%v)", stdout, err)
	}
	for _, step := range []string{"step 1 Start (Pass)", "step 2 Invoke (Task)", "step 3 Done (Succeed)"} {
		if !strings.Contains(stderr, "LoopStateMachine: "+step) {
			t.Errorf("no %q in\n%s", step, stderr)
		}
	}
	code, _, stderr = run(t, "", "schedule", "LoopStateMachine", "--event-name", "Broken")
	if code != 1 || !strings.Contains(stderr, "message to local:Queue") || !strings.Contains(stderr, "LoopFailed") {
		t.Errorf("the failing execution: exit %d\n%s", code, stderr)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serveInBackground runs a serving command until the test ends; it returns
// the base URL once the port answers.
func serveInBackground(t *testing.T, args ...string) (string, *localtest.Buffer) {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb localtest.Buffer
	app := &App{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	full := append([]string{args[0], "-t", testTemplate, "--build-dir", buildDir, "--skip-build", "--embedded", "off", "--data-dir", t.TempDir(),
		"--port", strconv.Itoa(port)}, args[1:]...)
	done := make(chan int, 1)
	go func() { done <- app.Run(ctx, full) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("%s exited %d\n%s", args[0], code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop", args[0])
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for range 200 {
		select {
		case code := <-done:
			t.Fatalf("%s exited %d\n%s", args[0], code, errb.String())
		default:
		}
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return base, &errb
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s never listened\n%s", args[0], errb.String())
	return "", nil
}

func TestStartAPI(t *testing.T) {
	base, logs := serveInBackground(t, "start-api")
	get := func(method, path, contentType, body string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Add("Cookie", "a=1; b=2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	// testfn returns the event itself: HTTP APIs answer it as a 200 JSON body.
	resp, body := get("GET", "/echo/J%C3%B6rg%40example.com?x=1&x=2", "", "")
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(body, &ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /echo: %d %s (%v)", resp.StatusCode, body, err)
	}
	if ev.RouteKey != "GET /echo/{name}" || ev.PathParameters["name"] != "Jörg@example.com" || ev.QueryStringParameters["x"] != "1,2" ||
		ev.RawQueryString != "x=1&x=2" || len(ev.Cookies) != 2 || ev.RequestContext.HTTP.Method != "GET" || ev.RequestContext.Stage != "$default" ||
		ev.RequestContext.RequestID != resp.Header.Get("Apigw-Requestid") || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("event: %+v\nheaders %v", ev, resp.Header)
	}
	resp, body = get("POST", "/echo", "application/octet-stream", "\x00\x01binary")
	if err := json.Unmarshal(body, &ev); err != nil || !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString([]byte("\x00\x01binary")) {
		t.Errorf("binary POST: %d %s", resp.StatusCode, body)
	}
	// A proxy response is the HTTP response.
	proxy := `{"http": {"statusCode": 201, "headers": {"content-type": "text/plain", "x-a": "1"}, "cookies": ["s=1", "t=2"], "body": "aGk=", "isBase64Encoded": true}}`
	resp, body = get("POST", "/echo", "application/json", proxy)
	if resp.StatusCode != 201 || string(body) != "hi" || resp.Header.Get("X-A") != "1" || len(resp.Header.Values("Set-Cookie")) != 2 {
		t.Errorf("proxy response: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = get("DELETE", "/files/a/b", "", "")
	if err := json.Unmarshal(body, &ev); err != nil || ev.PathParameters["proxy"] != "a/b" || ev.RouteKey != "ANY /files/{proxy+}" {
		t.Errorf("greedy route: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/nowhere", "", 404, `{"message":"Not Found"}`},
		{"POST", "/echo", `{"error": "boom"}`, 500, `{"message":"Internal Server Error"}`},
		{"POST", "/slow", `{"sleepMs": 30000}`, 500, `{"message":"Internal Server Error"}`},
		{"POST", "/echo", `{"echo": "after the failures"}`, 200, "after the failures"},
	} {
		resp, body = get(tc.method, tc.path, "application/json", tc.body)
		if resp.StatusCode != tc.status || string(body) != tc.want {
			t.Errorf("%s %s %s: %d %s, want %d %s", tc.method, tc.path, tc.body, resp.StatusCode, body, tc.status, tc.want)
		}
	}
	if !strings.Contains(logs.String(), "Mounting EchoFunction at "+base+"/echo/{name} [GET]") {
		t.Errorf("no mount lines:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "rg@example.com") || strings.Contains(logs.String(), "%40example") {
		t.Errorf("the access log shows the raw path (PII):\n%s", logs.String())
	}
}

func TestRefusesNonLoopbackHost(t *testing.T) {
	code, _, stderr := run(t, "", "start-api", "--host", "0.0.0.0", "--port", "0")
	if code != 2 || !strings.Contains(stderr, "not a loopback address") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

// awsCLI runs the real AWS CLI against the local endpoint, hermetically.
func awsCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command("aws", args...)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_ACCESS_KEY_ID=fake", "AWS_SECRET_ACCESS_KEY=fake",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("aws: %v", err)
	}
	return out.String(), errb.String(), code
}

func TestStartLambdaWithAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI (aws) is not on PATH: install awscli to run the start-lambda test with the real client")
	}
	base, _ := serveInBackground(t, "start-lambda")
	dir := t.TempDir()
	payload := writeFile(t, "payload.json", `{"echo": {"via": "aws cli"}}`)
	outFile := filepath.Join(dir, "out.json")
	invoke := func(extra ...string) (map[string]any, string, int) {
		t.Helper()
		args := append([]string{"lambda", "invoke", "--endpoint-url", base, "--region", "us-east-1"}, extra...)
		stdout, stderr, code := awsCLI(t, append(args, outFile)...)
		var meta map[string]any
		if code == 0 {
			if err := json.Unmarshal([]byte(stdout), &meta); err != nil {
				t.Fatalf("aws output %q: %v", stdout, err)
			}
		}
		return meta, stderr, code
	}
	meta, stderr, code := invoke("--function-name", "EchoFunction", "--payload", "fileb://"+payload, "--log-type", "Tail")
	out, _ := os.ReadFile(outFile)
	if code != 0 || meta["StatusCode"] != 200.0 || string(out) != `{"via":"aws cli"}` || meta["ExecutedVersion"] != "$LATEST" {
		t.Fatalf("invoke: %d %v %s\n%s", code, meta, out, stderr)
	}
	logs, err := base64.StdEncoding.DecodeString(fmt.Sprint(meta["LogResult"]))
	if err != nil || !strings.Contains(string(logs), "START RequestId: ") || !strings.Contains(string(logs), "REPORT RequestId: ") {
		t.Errorf("LogResult %q (%v)", logs, err)
	}
	meta, _, code = invoke("--function-name", "arn:aws:lambda:us-east-1:123456789012:function:EchoFunction", "--payload", "fileb://"+writeFile(t, "e.json", `{"error": "boom"}`))
	out, _ = os.ReadFile(outFile)
	if code != 0 || meta["FunctionError"] != "Unhandled" || !strings.Contains(string(out), `"errorMessage":"boom"`) {
		t.Errorf("function error: %d %v %s", code, meta, out)
	}
	meta, _, code = invoke("--function-name", "EchoFunction", "--invocation-type", "Event", "--payload", "fileb://"+payload)
	if code != 0 || meta["StatusCode"] != 202.0 {
		t.Errorf("Event: %d %v", code, meta)
	}
	meta, _, code = invoke("--function-name", "EchoFunction", "--invocation-type", "DryRun")
	if code != 0 || meta["StatusCode"] != 204.0 {
		t.Errorf("DryRun: %d %v", code, meta)
	}
	_, stderr, code = invoke("--function-name", "Nope")
	if code == 0 || !strings.Contains(stderr, "ResourceNotFoundException") || !strings.Contains(stderr, "function:Nope") {
		t.Errorf("unknown function: %d %s", code, stderr)
	}
}
