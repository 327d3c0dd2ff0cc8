package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/acme/unified-customer-service/cmd/local/internal/cli"
	"github.com/acme/unified-customer-service/cmd/local/internal/localtest"
	"github.com/acme/unified-customer-service/cmd/local/internal/s3local"
	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

// The end-to-end test of the real stack: the repository's template and
// functions (built with its Makefile), the embedded S3 server and System B
// simulator with the demo data, start-api and start-lambda, all on free
// ports so it runs beside a `make run`.

const repoRoot = "../.."

// stack is a running `local up`.
type stack struct {
	api, lambda, s3, systemB string
	kafka                    string // the embedded broker's host:port
	banner                   string
	logs                     *localtest.Buffer
	common                   []string // flags that point another command at this stack
}

func (s *stack) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb localtest.Buffer
	app := &cli.App{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := app.Run(context.Background(), append(append([]string{args[0]}, s.common...), args[1:]...))
	return code, out.String(), errb.String()
}

func startStack(t *testing.T) *stack {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not on PATH: the end-to-end test builds the functions with the Makefile")
	}
	tmp := t.TempDir()
	buildDir, dataDir := filepath.Join(tmp, "build"), filepath.Join(tmp, "data")
	tpl := filepath.Join(repoRoot, "template.yaml")
	// The bootstraps `make test` built, or built here once (shared with the
	// other packages through go's build cache): up then skips the build.
	fns := loadFunctions(t, tpl)
	if _, err := localtest.HostBootstraps(context.Background(),
		localtest.BootstrapConfig{Root: repoRoot, Dir: buildDir, Log: t.Output()}, fns); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out localtest.Buffer
	logs := &localtest.Buffer{}
	app := &cli.App{Stdout: &out, Stderr: logs, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- app.Run(ctx, []string{"up", "-t", tpl, "--build-dir", buildDir, "--skip-build", "--data-dir", dataDir,
			"--api-port", "0", "--lambda-port", "0", "--s3-addr", "127.0.0.1:0", "--bsim-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("up exited %d", code)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("up did not stop on cancel")
		}
		if pids := processesUnder(buildDir); len(pids) > 0 {
			t.Errorf("function processes left behind after shutdown: %v", pids)
		}
		if t.Failed() {
			t.Logf("up's log:\n%s", logs.String())
		}
	})
	waitUp(t, &out, logs, done)
	s := &stack{banner: out.String(), logs: logs}
	field := func(label string) string {
		m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(label) + `\s+(http://\S+)`).FindStringSubmatch(s.banner)
		if m == nil {
			t.Fatalf("the banner has no %s URL:\n%s", label, s.banner)
		}
		return m[1]
	}
	s.api, s.lambda = field("HTTP API (API Gateway payload 2.0)"), field("Lambda Invoke API")
	s.s3, s.systemB = field("S3"), field("System B simulator")
	m := regexp.MustCompile(`(?m)^  Kafka \(embedded broker, kfake\)\s+(127\.0\.0\.1:\d+)`).FindStringSubmatch(s.banner)
	if m == nil {
		t.Fatalf("the banner has no Kafka broker address:\n%s", s.banner)
	}
	s.kafka = m[1]
	s.common = []string{"-t", tpl, "--build-dir", buildDir, "--skip-build", "--data-dir", dataDir,
		"--s3-addr", strings.TrimPrefix(s.s3, "http://"), "--bsim-addr", strings.TrimPrefix(s.systemB, "http://"),
		"--kafka-addr", s.kafka}
	return s
}

// waitCaptured waits until up's capture of the demo snapshot, fired by
// its upload, has answered.
func waitCaptured(t *testing.T, s *stack) {
	t.Helper()
	for deadline := time.Now().Add(upStall); !strings.Contains(s.logs.String(), "S3: CaptureAFunction answered"); {
		if time.Now().After(deadline) {
			t.Fatalf("up did not capture the demo snapshot's upload:\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// upStall is how long `up` may print nothing before the test gives up on
// it: it logs each step (the services, the demo data, each function), so a
// slow machine only makes the steps slower, while a hang stops the log.
const upStall = 2 * time.Minute

// waitUp waits until up printed its banner ("Try:"), failing at once if up
// exits, and if its log stops growing for upStall.
func waitUp(t *testing.T, out, logs *localtest.Buffer, done chan int) {
	t.Helper()
	size, grew := -1, time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(out.String(), "Try:") {
		select {
		case code := <-done:
			done <- code // for the cleanup
			t.Fatalf("up exited %d before it was up:\n%s", code, logs.String())
		case <-tick.C:
		}
		if n := len(logs.String()) + len(out.String()); n != size {
			size, grew = n, time.Now()
		} else if time.Since(grew) > upStall {
			t.Fatalf("up printed nothing for %s and is not up:\n%s", upStall, logs.String())
		}
	}
}

// loadFunctions returns the template's functions.
func loadFunctions(t *testing.T, path string) []*samtemplate.Function {
	t.Helper()
	tpl, err := samtemplate.Load(path, samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tpl.Functions
}

func TestEndToEnd(t *testing.T) {
	s := startStack(t)
	t.Run("every fixture through invoke", func(t *testing.T) { testFixtures(t, s) })
	t.Run("routes through start-api", func(t *testing.T) { testRoutes(t, s) })
	t.Run("start-lambda", func(t *testing.T) { testStartLambda(t, s) })
	t.Run("schedule writes the report", func(t *testing.T) { testSchedule(t, s) })
	t.Run("a killed function comes back", func(t *testing.T) { testCrashRecovery(t, s) })
	t.Run("a System B change reaches Kafka and customer.unified", func(t *testing.T) { testSystemBChangeOnKafka(t, s) })
	// Last: its commands change System B's data.
	t.Run("banner commands work as printed", func(t *testing.T) { testBanner(t, s) })
}

// testBanner runs every command `up` printed, in order, and checks each
// one's output; `go run ./cmd/local ...` runs in-process.
func testBanner(t *testing.T, s *stack) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not on PATH")
	}
	hasAWS := true
	if _, err := exec.LookPath("aws"); err != nil {
		hasAWS = false
		t.Log("the AWS CLI (aws) is not on PATH: its banner commands are skipped")
	}
	home := t.TempDir()
	state := "initial"
	ran := 0
	for _, line := range strings.Split(s.banner, "\n") {
		cmd := strings.TrimSpace(line)
		var out string
		switch {
		case strings.HasPrefix(cmd, "go run ./cmd/local "):
			args := strings.Fields(strings.TrimPrefix(cmd, "go run ./cmd/local "))
			code, stdout, stderr := s.run(t, "", args...)
			if code != 0 {
				t.Fatalf("%s: exit %d\n%s", cmd, code, stderr)
			}
			out = stdout
		case strings.HasPrefix(cmd, "curl "), strings.HasPrefix(cmd, "aws "):
			if strings.HasPrefix(cmd, "aws ") && !hasAWS {
				continue
			}
			c := exec.Command("sh", "-c", cmd)
			c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
				"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"), "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
			b, err := c.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, b)
			}
			out = string(b)
		default:
			continue
		}
		ran++
		var want string
		switch {
		case strings.Contains(cmd, " dlq list"):
			want = "" // the exit status says it; the store is empty or not
		case strings.Contains(cmd, "/_sim/faults"):
			want, state = `"down":true`, "down"
		case strings.Contains(cmd, "/_sim/reset"):
			state = "up"
		case strings.Contains(cmd, "-X PATCH"):
			want, state = `"loyaltyTier":"platinum"`, "patched"
		case strings.HasPrefix(cmd, "aws lambda invoke"):
			want = `"StatusCode": 200`
		case strings.HasPrefix(cmd, "aws s3 ls"):
			want = "summary.json"
		case strings.Contains(cmd, "schedule "):
			want = `"complete":true`
		case strings.Contains(cmd, "/customer/sync"):
			want = `"inSync":false`
		case state == "initial":
			want = `"newerSource":"systemB"`
		case state == "down":
			want = `"partial":true`
		case state == "patched":
			want = `"field":"loyaltyTier"`
		}
		if !strings.Contains(out, want) {
			t.Errorf("%s\nprinted %s\nwant %s", cmd, out, want)
		}
	}
	if ran < 9 {
		t.Errorf("ran %d banner commands, want at least 9:\n%s", ran, s.banner)
	}
}

// apiResult is what a function's HTTP API response carries.
type apiResult struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func testFixtures(t *testing.T, s *stack) {
	// The expected HTTP status (0: not an HTTP response) and a body substring,
	// or a function error.
	want := map[string]struct {
		status  int
		body    string
		failure bool
	}{
		"lookup-conflict.json":         {200, `"newerSource":"systemB"`, false},
		"lookup-found.json":            {200, `"partial":false`, false},
		"lookup-invalid-email.json":    {400, `"status":400`, false},
		"lookup-non-ascii.json":        {200, `"lastName":"Müller"`, false},
		"lookup-not-found.json":        {404, "", false},
		"lookup-only-in-system-b.json": {200, `"systemA":null`, false},
		"sync-bad-body.json":           {400, "", false},
		"sync-batch.json":              {200, `"inSync":true`, false},
		"sync-conflicts.json":          {200, `"inSync":false`, false},
		"sync-in-sync.json":            {200, `"inSync":true`, false},
		"sync-not-found.json":          {200, `"status":"notFound"`, false},
		"sync-unknown-field.json":      {400, "", false},
		"reconcile-scheduled.json":     {0, `"complete":true`, false},
		"reconcile-scheduler.json":     {0, `"complete":true`, false},
		"reconcile-dead-lettered.json": {0, `"complete":true`, false},
		"reconcile-not-scheduled.json": {0, "", true},
		// up captured the demo snapshot when it uploaded it: the current
		// version again is a duplicate. The AWS-shaped fixture names a
		// version this S3 never had.
		"capturea-current-version.json": {0, `"status":"duplicate"`, false},
		"capturea-object-created.json":  {0, "", true},
		"capturea-not-s3.json":          {0, "", true},
		// Signed on 2026-12-01 09:00 UTC: a replay now (functions/captureb
		// runs them at their time).
		"captureb-webhook-updated.json":       {401, "tolerance", false},
		"captureb-webhook-deleted.json":       {401, "tolerance", false},
		"captureb-webhook-bad-signature.json": {401, "", false},
		"captureb-poll-scheduler.json":        {0, `"published":`, false},
		// The sync worker's Kafka events: every record done (the poison
		// ones dead-lettered), none handed back.
		"kafka-system-a.json": {0, `{"batchItemFailures":[]}`, false},
		"kafka-system-b.json": {0, `{"batchItemFailures":[]}`, false},
		"kafka-poison.json":   {0, `{"batchItemFailures":[]}`, false},
		"kafka-batch.json":    {0, `{"batchItemFailures":[]}`, false},
	}
	files, err := filepath.Glob(filepath.Join(repoRoot, "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in events/: %v", err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		w, ok := want[name]
		if !ok {
			t.Errorf("events/%s has no expectation in this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			prefix, rest, _ := strings.Cut(name, "-")
			id := prefix + "Function"
			if prefix == "kafka" {
				id = "SyncWorkerFunction"
			}
			if prefix == "captureb" { // two functions: CaptureBWebhookFunction, CaptureBPollFunction
				mode, _, _ := strings.Cut(rest, "-")
				id = "CaptureB" + mode + "Function"
			}
			fn := ""
			for _, f := range loadFunctions(t, filepath.Join(repoRoot, "template.yaml")) {
				if strings.EqualFold(f.LogicalID, id) {
					fn = f.LogicalID
				}
			}
			if fn == "CaptureAFunction" {
				waitCaptured(t, s)
			}
			code, stdout, stderr := s.run(t, "", "invoke", fn, "-e", path)
			if w.failure {
				if code != 1 || !strings.Contains(stdout, "errorMessage") || strings.Contains(stdout, "Runtime.") {
					t.Errorf("exit %d, stdout %s; want a function error\n%s", code, stdout, stderr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d, stdout %s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, "REPORT RequestId: ") {
				t.Errorf("no REPORT line in the log")
			}
			if w.status == 0 {
				if !strings.Contains(stdout, w.body) {
					t.Errorf("response %s lacks %s", stdout, w.body)
				}
				return
			}
			var r apiResult
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("response %s: %v", stdout, err)
			}
			if r.StatusCode != w.status || !strings.Contains(r.Body, w.body) {
				t.Errorf("status %d body %s; want %d and %s", r.StatusCode, r.Body, w.status, w.body)
			}
		})
	}
}

func httpDo(t *testing.T, method, url, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func testRoutes(t *testing.T, s *stack) {
	faults := func(body string) {
		t.Helper()
		if code, _, out := httpDo(t, "PUT", s.systemB+"/_sim/faults", "application/json", body); code != 200 {
			t.Fatalf("set faults %s: %d %s", body, code, out)
		}
	}
	tests := []struct {
		name, faults, method, path, contentType, body string
		status                                        int
		want                                          string
	}{
		{"found", "", "GET", "/customer/ada.lovelace@example.com", "", "", 200, `"partial":false`},
		{"found, non-ASCII and mixed case", "", "GET", "/customer/J%C3%96RG.M%C3%9CLLER@Example.com", "", "", 200, `"lastName":"Müller"`},
		{"not found", "", "GET", "/customer/nobody.here@example.com", "", "", 404, `"status":404`},
		{"conflict", "", "GET", "/customer/grace.hopper@example.com", "", "", 200, `"field":"phone"`},
		{"invalid email", "", "GET", "/customer/not-an-email", "", "", 400, `"status":400`},
		{"partial with System B down", `{"down":true}`, "GET", "/customer/ada.lovelace@example.com", "", "", 200, `"degraded":["systemB"]`},
		{"unknown, not absent, with System B down", `{"down":true}`, "GET", "/customer/nobody.here@example.com", "", "", 503, `"degraded":["systemB"]`},
		{"sync needs both systems", `{"down":true}`, "POST", "/customer/sync", "application/json", `{"email":"ada.lovelace@example.com"}`, 503, "systemB"},
		{"sync conflicts", "", "POST", "/customer/sync", "application/json", `{"email":"grace.hopper@example.com"}`, 200, `"inSync":false`},
		{"sync bad body", "", "POST", "/customer/sync", "application/json", `{"emails":"x"}`, 400, `"status":400`},
		{"unknown route", "", "GET", "/nowhere", "", "", 404, `{"message":"Not Found"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.faults != "" {
				faults(tc.faults)
				defer faults(`{}`)
			}
			code, _, body := httpDo(t, tc.method, s.api+tc.path, tc.contentType, tc.body)
			if code != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s; want %d and %s", code, body, tc.status, tc.want)
			}
		})
	}
}

func testStartLambda(t *testing.T, s *stack) {
	ev, err := os.ReadFile(filepath.Join(repoRoot, "events", "lookup-found.json"))
	if err != nil {
		t.Fatal(err)
	}
	code, h, body := httpDo(t, "POST", s.lambda+"/2015-03-31/functions/LookupFunction/invocations", "", string(ev))
	var r apiResult
	if code != 200 || h.Get("X-Amz-Function-Error") != "" || json.Unmarshal([]byte(body), &r) != nil || r.StatusCode != 200 {
		t.Errorf("invoke: %d %v %s", code, h, body)
	}
	code, h, _ = httpDo(t, "POST", s.lambda+"/2015-03-31/functions/NoSuchFunction/invocations", "", "{}")
	if code != 404 || h.Get("X-Amzn-Errortype") != "ResourceNotFoundException" {
		t.Errorf("unknown function: %d %v", code, h)
	}
}

func testSchedule(t *testing.T, s *stack) {
	code, stdout, stderr := s.run(t, "", "schedule", "ReconcileFunction", "--time", "2026-11-24T03:30:00Z")
	if code != 0 {
		t.Fatalf("exit %d %s\n%s", code, stdout, stderr)
	}
	// The schedule starts ReconcileStateMachine: its output is the event and
	// the last invocation's result.
	var out struct {
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
		Result struct {
			Status   string `json:"status"`
			Complete bool   `json:"complete"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Event.ID == "" || !out.Result.Complete || out.Result.Status != "ran" {
		t.Fatalf("state machine output %s (%v)", stdout, err)
	}
	if !strings.Contains(stderr, "ReconcileStateMachine: step") {
		t.Errorf("no steps printed:\n%s", stderr)
	}
	sum := struct {
		EventID  string `json:"eventId"`
		Complete bool   `json:"complete"`
	}{out.Event.ID, true}
	client := s3local.NewClient(s.s3)
	ctx := context.Background()
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("ucs-reports"), Prefix: aws.String("reports/2026-11-24/" + sum.EventID + "/")})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	details := false // the attempt's details: attempts/<token>/details-0001.jsonl.gz
	prefix := "reports/2026-11-24/" + sum.EventID + "/"
	for _, o := range list.Contents {
		k := aws.ToString(o.Key)
		keys[k] = true
		details = details || (strings.HasPrefix(k, prefix+"attempts/") && strings.HasSuffix(k, "/details-0001.jsonl.gz"))
	}
	if !keys[prefix+"summary.json"] || !details {
		t.Fatalf("report objects %v", keys)
	}
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ucs-reports"), Key: aws.String(prefix + "summary.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	stored, _ := io.ReadAll(obj.Body)
	var got struct {
		EventID  string `json:"eventId"`
		Complete bool   `json:"complete"`
	}
	if err := json.Unmarshal(stored, &got); err != nil || got != sum {
		t.Errorf("summary.json %s (%v), want %+v", stored, err, sum)
	}
}

// testCrashRecovery kills the warm LookupFunction process behind start-api's
// back: the next request starts a new one.
func testCrashRecovery(t *testing.T, s *stack) {
	if runtime.GOOS != "linux" {
		t.Skip("finds the function's process through /proc")
	}
	if code, _, body := httpDo(t, "GET", s.api+"/customer/ada.lovelace@example.com", "", ""); code != 200 {
		t.Fatalf("warm-up: %d %s", code, body)
	}
	var killed []int
	for _, pid := range processesUnder(filepath.Dir(filepath.Dir(strings.TrimPrefix(commonValue(s.common, "--build-dir"), "")))) {
		if strings.Contains(cmdline(pid), "LookupFunction") {
			syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // checked below through the next request
			killed = append(killed, pid)
		}
	}
	if len(killed) == 0 {
		t.Fatal("found no LookupFunction process to kill")
	}
	code, _, body := httpDo(t, "GET", s.api+"/customer/ada.lovelace@example.com", "", "")
	if code != 200 || !strings.Contains(body, `"email":"ada.lovelace@example.com"`) {
		t.Errorf("after the kill: %d %s", code, body)
	}
}

func commonValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// processesUnder lists the processes whose command line starts with dir.
func processesUnder(dir string) []int {
	abs, err := filepath.Abs(dir)
	if err != nil || runtime.GOOS != "linux" {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if strings.HasPrefix(cmdline(pid), abs+string(filepath.Separator)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}
