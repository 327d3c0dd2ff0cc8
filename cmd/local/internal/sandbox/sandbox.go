// Package sandbox runs a Lambda function's bootstrap as a warm child process
// behind a Lambda Runtime API the package serves on 127.0.0.1, as Lambda's
// execution environment does: it keeps the process warm between invocations,
// enforces the function's timeout (kills the process group, fails the
// invocation with Lambda's timeout error and starts afresh on the next one),
// restarts a crashed process, and logs Lambda's INIT_START, START, END and
// REPORT lines with the function's own output.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// ErrClosed is returned by Invoke once the function is closed.
var ErrClosed = errors.New("sandbox: function closed")

// DefaultInitTimeout is how long a process may take from its start to its
// first request for an event, as Lambda's init phase limit.
const DefaultInitTimeout = 10 * time.Second

// Fake credentials every function gets unless Config.Env overrides them, as
// sam local hands a function credentials.
const (
	FakeAccessKeyID     = "AKIALOCALFAKEKEY0000"
	FakeSecretAccessKey = "local/fake/secret/access/key/0000000000"
	FakeSessionToken    = "local-fake-session-token"
)

// Config describes one function.
type Config struct {
	Name      string // function name (the template's logical id)
	Bootstrap string // path of the executable
	// TaskRoot is LAMBDA_TASK_ROOT and the working directory; default: the
	// bootstrap's directory.
	TaskRoot    string
	Handler     string // _HANDLER; default "bootstrap"
	Runtime     string // for INIT_START and billing; default "provided.al2023"
	Timeout     time.Duration
	InitTimeout time.Duration // default DefaultInitTimeout
	MemoryMB    int
	Region      string
	AccountID   string
	// Env is the function's environment (the template's variables with
	// overrides applied), set over the emulated Lambda variables.
	Env map[string]string
	// Forced is set last, over Env: the tool's own emulation settings such
	// as AWS_ENDPOINT_URL_S3.
	Forced map[string]string
	// MaxInstances bounds the warm processes of the function; invocations
	// beyond it wait. Default 1 (invocations are serialized).
	MaxInstances int
	// Log receives the function's stdout and stderr and the Lambda log lines,
	// one Write per line. Default io.Discard.
	Log io.Writer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// InvokeOptions are the optional parts of an invocation.
type InvokeOptions struct {
	RequestID       string // default: a new UUID
	ClientContext   string // JSON, as Lambda-Runtime-Client-Context
	CognitoIdentity string // JSON, as Lambda-Runtime-Cognito-Identity
	CaptureLog      bool   // fill Result.Log with this invocation's log lines
}

// Result is the outcome of one invocation.
type Result struct {
	RequestID string
	Payload   []byte // the response, or the error document when FunctionError is set
	// FunctionError is "Unhandled" when the function returned an error, timed
	// out or crashed (Lambda's X-Amz-Function-Error); "" on success.
	FunctionError  string
	ErrorType      string // the error document's errorType, e.g. "Sandbox.Timedout"
	Duration       time.Duration
	InitDuration   time.Duration // 0 for a warm invocation
	BilledDuration time.Duration
	MaxMemoryMB    int
	Log            []byte // with InvokeOptions.CaptureLog
}

// Function is a pool of warm sandboxes of one function.
type Function struct {
	cfg     Config
	slots   chan struct{}
	closing chan struct{}

	mu     sync.Mutex
	idle   []*instance
	all    []*instance
	closed bool
	seq    int
}

// New returns a Function; no process starts before the first Invoke.
func New(cfg Config) (*Function, error) {
	if cfg.Name == "" || cfg.Bootstrap == "" {
		return nil, fmt.Errorf("sandbox: a function needs a name and a bootstrap")
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("sandbox: %s: the timeout must be positive", cfg.Name)
	}
	if cfg.TaskRoot == "" {
		cfg.TaskRoot = filepath.Dir(cfg.Bootstrap)
	}
	if cfg.Handler == "" {
		cfg.Handler = "bootstrap"
	}
	if cfg.Runtime == "" {
		cfg.Runtime = "provided.al2023"
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = DefaultInitTimeout
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = 128
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "123456789012"
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = 1
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Function{
		cfg:     cfg,
		slots:   make(chan struct{}, cfg.MaxInstances),
		closing: make(chan struct{}),
	}, nil
}

// Name returns the function's name.
func (f *Function) Name() string { return f.cfg.Name }

// ARN returns the function's ARN as the runtime sees it.
func (f *Function) ARN() string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", f.cfg.Region, f.cfg.AccountID, f.cfg.Name)
}

// Invoke runs one event through a warm (or freshly started) sandbox and
// waits for its outcome. A function error, timeout or crash is a Result with
// FunctionError set, not an error; the error is for ctx ending before a
// sandbox was free, and for ErrClosed.
func (f *Function) Invoke(ctx context.Context, payload []byte, opts InvokeOptions) (*Result, error) {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("sandbox: %s: waiting for a free sandbox: %w", f.cfg.Name, ctx.Err())
	case <-f.closing:
		return nil, ErrClosed
	}
	defer func() { <-f.slots }()
	inst, err := f.acquire()
	if err != nil {
		return nil, err
	}
	defer f.release(inst)
	return inst.invoke(payload, opts)
}

// Close kills every process of the function and makes later Invokes fail
// with ErrClosed. In-flight invocations end with ErrClosed.
func (f *Function) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.closing)
	all := slices.Clone(f.all)
	f.mu.Unlock()
	for _, inst := range all {
		inst.shutdown()
	}
	return nil
}

func (f *Function) acquire() (*instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	if n := len(f.idle); n > 0 {
		inst := f.idle[n-1]
		f.idle = f.idle[:n-1]
		return inst, nil
	}
	f.seq++
	tmp, err := os.MkdirTemp("", "ucs-local-"+f.cfg.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %s: temporary directory: %w", f.cfg.Name, err)
	}
	inst := &instance{
		f:         f,
		tmpDir:    tmp,
		logStream: fmt.Sprintf("%s/[$LATEST]%s", f.cfg.Now().UTC().Format("2006/01/02"), randomHex(16)),
		sink:      &logSink{out: f.cfg.Log},
	}
	f.all = append(f.all, inst)
	return inst, nil
}

func (f *Function) release(inst *instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.idle = append(f.idle, inst)
	}
}

// instance is one execution environment: a temporary directory, a log
// stream and, while warm, a process.
type instance struct {
	f         *Function
	tmpDir    string
	logStream string
	sink      *logSink

	mu   sync.Mutex // guards proc against shutdown
	proc *process
	dead bool
}

// process is one run of the bootstrap with its Runtime API.
type process struct {
	cmd      *exec.Cmd
	api      *runtimeAPI
	pipe     *logPipe
	started  time.Time
	exited   chan struct{}
	exitErr  error
	exitedAt time.Time
	served   int // invocations completed
	initRep  bool
}

func (inst *instance) start() (*process, error) {
	cfg := &inst.f.cfg
	api, err := newRuntimeAPI(cfg.Now)
	if err != nil {
		return nil, err
	}
	pipe, err := newLogPipe(inst.sink)
	if err != nil {
		api.close()
		return nil, err
	}
	cmd := exec.Command(cfg.Bootstrap)
	cmd.Dir = cfg.TaskRoot
	cmd.Env = inst.environ(api.addr())
	cmd.Stdout = pipe.w
	cmd.Stderr = pipe.w
	cmd.SysProcAttr = sysProcAttr()
	p := &process{cmd: cmd, api: api, pipe: pipe, exited: make(chan struct{})}
	inst.sink.printf("INIT_START Runtime Version: %s.local\tFunction: %s", strings.ReplaceAll(cfg.Runtime, ".", ":"), cfg.Name)
	p.started = cfg.Now()
	if err := cmd.Start(); err != nil {
		pipe.closeWriter()
		api.close()
		return nil, err
	}
	go func() {
		p.exitErr = cmd.Wait()
		p.exitedAt = cfg.Now()
		close(p.exited)
		pipe.closeWriter()
		api.close()
	}()
	return p, nil
}

// environ builds the process environment: Lambda's variables, then the
// function's, then the forced ones.
func (inst *instance) environ(runtimeAPI string) []string {
	cfg := &inst.f.cfg
	env := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME":        cfg.Name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(cfg.MemoryMB),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      inst.logStream,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      cfg.Region,
		"AWS_DEFAULT_REGION":              cfg.Region,
		"AWS_ACCESS_KEY_ID":               FakeAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":           FakeSecretAccessKey,
		"AWS_SESSION_TOKEN":               FakeSessionToken,
		"AWS_XRAY_CONTEXT_MISSING":        "LOG_ERROR",
		"AWS_XRAY_DAEMON_ADDRESS":         "127.0.0.1:2000",
		"_HANDLER":                        cfg.Handler,
		"LAMBDA_TASK_ROOT":                cfg.TaskRoot,
		"LAMBDA_RUNTIME_DIR":              cfg.TaskRoot,
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"PATH":                            os.Getenv("PATH"),
		"TMPDIR":                          inst.tmpDir,
	}
	maps.Copy(env, cfg.Env)
	maps.Copy(env, cfg.Forced)
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// invoke runs one invocation on this instance; the caller holds it alone.
func (inst *instance) invoke(payload []byte, opts InvokeOptions) (*Result, error) {
	cfg := &inst.f.cfg
	inv := &invocation{
		id:            opts.RequestID,
		payload:       payload,
		arn:           inst.f.ARN(),
		traceID:       newTraceID(cfg.Now()),
		clientContext: opts.ClientContext,
		cognito:       opts.CognitoIdentity,
		timeout:       cfg.Timeout,
		delivered:     make(chan struct{}),
		done:          make(chan outcome, 1),
	}
	if inv.id == "" {
		inv.id = uuid.NewString()
	}
	if opts.CaptureLog {
		inst.sink.startCapture()
	}
	res, err := inst.run(inv)
	if res != nil && opts.CaptureLog {
		res.Log = inst.sink.stopCapture()
	} else if opts.CaptureLog {
		inst.sink.stopCapture()
	}
	return res, err
}

func (inst *instance) run(inv *invocation) (*Result, error) {
	cfg := &inst.f.cfg
	res := &Result{RequestID: inv.id}
	for attempt := 0; ; attempt++ {
		p, cold, err := inst.ensureProcess()
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		if err != nil {
			inst.fail(res, nil, errorOutcome("Runtime.InvalidEntrypoint",
				fmt.Sprintf("RequestId: %s Error: cannot start the bootstrap: %v", inv.id, err)), "error")
			return res, nil
		}
		var initTimer <-chan time.Time
		if cold {
			t := time.NewTimer(cfg.InitTimeout)
			defer t.Stop()
			initTimer = t.C
		}
		select {
		case p.api.next <- inv:
			<-inv.delivered
		case <-p.exited:
			if ie := p.api.initError(); ie != nil {
				inst.fail(res, p, *ie, "error")
				return res, nil
			}
			if !cold && attempt == 0 {
				continue // it died between invocations: start afresh, as Lambda would
			}
			inst.fail(res, p, exitOutcome(inv.id, p), "error")
			return res, nil
		case <-initTimer:
			inst.kill(p)
			inst.fail(res, p, errorOutcome("Sandbox.Timedout",
				fmt.Sprintf("RequestId: %s Error: the runtime did not ask for an event within %.2f seconds of starting (init)", inv.id, cfg.InitTimeout.Seconds())), "timeout")
			return res, nil
		case <-inst.f.closing:
			inst.kill(p)
			return nil, ErrClosed
		}
		if cold && !p.initRep {
			p.initRep = true
			if at := p.api.initDoneAt(); !at.IsZero() {
				res.InitDuration = at.Sub(p.started)
			}
		}
		res, err, retry := inst.await(res, p, inv, !cold && attempt == 0)
		if !retry {
			return res, err
		}
		inst.sink.printf("RequestId: %s the warm runtime had exited (%v) before it took the event; starting a new one", inv.id, p.exitErr)
		inv = inv.again()
	}
}

// idleExitGrace is how soon after a warm process was handed an event its
// exit still counts as a death while idle (between invocations): it cannot
// have taken the event, which then goes to a new process, as Lambda gives the
// next invocation a new sandbox when one died. An exit later than that (or of
// a process started for this invocation) fails the invocation with
// Runtime.ExitError. The price of the race: a handler that crashes within
// this time of a warm start runs twice, and fails the second time.
const idleExitGrace = 100 * time.Millisecond

// await waits for the delivered invocation's outcome, the process's end,
// the deadline or Close. retry says the process died before it could have
// taken the event (see idleExitGrace); it is only set when mayRetry.
func (inst *instance) await(res *Result, p *process, inv *invocation, mayRetry bool) (_ *Result, _ error, retry bool) {
	cfg := &inst.f.cfg
	inst.sink.printf("START RequestId: %s Version: $LATEST", inv.id)
	timer := time.NewTimer(inv.deadline.Sub(cfg.Now()))
	defer timer.Stop()
	var o outcome
	status := ""
	select {
	case o = <-inv.done:
		p.served++
	case <-p.exited:
		select {
		case o = <-inv.done: // it answered, then exited (a panic does that)
			p.served++
		default:
			inst.kill(p)
			if mayRetry && p.exitedAt.Sub(inv.deliveredAt) < idleExitGrace {
				return nil, nil, true
			}
			o, status = exitOutcome(inv.id, p), "error"
			inv.finish(o)
		}
	case <-timer.C:
		if !inv.finish(outcome{}) { // the response won the race
			o = <-inv.done
			p.served++
			break
		}
		inst.kill(p)
		o, status = errorOutcome("Sandbox.Timedout",
			fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, cfg.Timeout.Seconds())), "timeout"
		inst.sink.printf("%s %s Task timed out after %.2f seconds", cfg.Now().UTC().Format("2006-01-02T15:04:05.000Z"), inv.id, cfg.Timeout.Seconds())
	case <-inst.f.closing:
		inst.kill(p)
		return nil, ErrClosed, false
	}
	res.Duration = cfg.Now().Sub(inv.deliveredAt)
	select {
	case <-p.exited:
		inst.waitLogs(p)
		res.MaxMemoryMB = rusageMaxMemoryMB(p.cmd.ProcessState)
	default:
		p.pipe.drain(time.Second)
		res.MaxMemoryMB = maxMemoryMB(p.cmd.Process.Pid)
	}
	res.Payload = o.payload
	if o.isError {
		res.FunctionError, res.ErrorType = "Unhandled", o.errorType
		if status == "" {
			status = "error"
		}
	}
	inst.report(res, status)
	return res, nil, false
}

// fail records an invocation that never reached the function's handler.
func (inst *instance) fail(res *Result, p *process, o outcome, status string) {
	res.Payload, res.FunctionError, res.ErrorType = o.payload, "Unhandled", o.errorType
	if p != nil {
		inst.kill(p)
		inst.waitLogs(p)
		if !p.started.IsZero() {
			res.InitDuration = inst.f.cfg.Now().Sub(p.started)
		}
	}
	inst.sink.printf("START RequestId: %s Version: $LATEST", res.RequestID)
	inst.report(res, status)
}

func (inst *instance) report(res *Result, status string) {
	cfg := &inst.f.cfg
	billed := res.Duration
	if strings.HasPrefix(cfg.Runtime, "provided") {
		billed += res.InitDuration // custom runtimes are billed for init
	}
	res.BilledDuration = billed.Truncate(time.Millisecond)
	if res.BilledDuration < billed || res.BilledDuration == 0 {
		res.BilledDuration += time.Millisecond
	}
	if res.FunctionError != "" {
		inst.sink.printf("RequestId: %s Error: %s", res.RequestID, errorMessage(res.Payload))
	}
	inst.sink.printf("END RequestId: %s", res.RequestID)
	var b strings.Builder
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
		res.RequestID, ms(res.Duration), res.BilledDuration.Milliseconds(), cfg.MemoryMB, res.MaxMemoryMB)
	if res.InitDuration > 0 {
		fmt.Fprintf(&b, "\tInit Duration: %.2f ms", ms(res.InitDuration))
	}
	if status != "" {
		fmt.Fprintf(&b, "\tStatus: %s", status)
		if res.ErrorType != "" && status != "timeout" {
			fmt.Fprintf(&b, "\tError Type: %s", res.ErrorType)
		}
	}
	inst.sink.printf("%s", b.String())
	if res.MaxMemoryMB > cfg.MemoryMB {
		inst.sink.printf("WARNING: %s used %d MB, more than its MemorySize of %d MB; Lambda would fail it with Runtime.OutOfMemory",
			cfg.Name, res.MaxMemoryMB, cfg.MemoryMB)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ensureProcess returns the warm process, or starts one (cold).
func (inst *instance) ensureProcess() (p *process, cold bool, err error) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.dead {
		return nil, false, ErrClosed
	}
	if inst.proc != nil {
		select {
		case <-inst.proc.exited:
			inst.proc = nil // it died between invocations
		default:
			return inst.proc, false, nil
		}
	}
	p, err = inst.start()
	if err != nil {
		return nil, false, err
	}
	inst.proc = p
	return p, true, nil
}

// kill ends p's process group and forgets p, so the next invocation starts
// afresh.
func (inst *instance) kill(p *process) {
	inst.mu.Lock()
	if inst.proc == p {
		inst.proc = nil
	}
	inst.mu.Unlock()
	if p.cmd.Process != nil {
		killGroup(p.cmd.Process.Pid)
	}
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
	}
}

// waitLogs gives the output of a dead process a moment to reach the log.
func (inst *instance) waitLogs(p *process) {
	select {
	case <-p.pipe.done:
	case <-time.After(200 * time.Millisecond):
	}
}

func (inst *instance) shutdown() {
	inst.mu.Lock()
	inst.dead = true
	p := inst.proc
	inst.proc = nil
	inst.mu.Unlock()
	if p != nil {
		inst.kill(p)
	}
	os.RemoveAll(inst.tmpDir) //nolint:errcheck // best effort
}

// exitOutcome is Lambda's error for a runtime that exited.
func exitOutcome(id string, p *process) outcome {
	<-p.exited
	reason := "Runtime exited without providing a reason"
	if p.exitErr != nil {
		reason = "Runtime exited with error: " + p.exitErr.Error()
	}
	return errorOutcome("Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: %s", id, reason))
}

func errorMessage(payload []byte) string {
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if err := json.Unmarshal(payload, &doc); err != nil || doc.ErrorMessage == "" {
		s := string(payload)
		if len(s) > 512 {
			s = s[:512] + "..."
		}
		return s
	}
	if doc.ErrorType != "" {
		return doc.ErrorMessage + " (" + doc.ErrorType + ")"
	}
	return doc.ErrorMessage
}

// newTraceID returns an X-Ray trace header that is not sampled, so the X-Ray
// SDK in a function stays silent without a daemon.
func newTraceID(now time.Time) string {
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", now.Unix(), randomHex(12), randomHex(8))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
