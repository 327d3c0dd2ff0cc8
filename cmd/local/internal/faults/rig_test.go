package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/localtest"
	"github.com/acme/unified-customer-service/cmd/local/internal/s3local"
	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
)

// The template's logical ids.
const (
	lookupFn     = "LookupFunction"
	syncFn       = "SyncFunction"
	reconcileFn  = "ReconcileFunction"
	captureAFn   = "CaptureAFunction"
	webhookBFn   = "CaptureBWebhookFunction"
	pollBFn      = "CaptureBPollFunction"
	syncWorkerFn = "SyncWorkerFunction"
)

// The template's buckets and keys (its parameters' defaults).
const (
	snapshotBucket = "ucs-snapshots"
	snapshotKey    = "customers.db"
	reportBucket   = "ucs-reports"
	reportPrefix   = "reports"
)

// datasetN is the generated customers of the shared data set (showcase ones
// added): three System B list pages of 1000, enough for a reconciliation to
// be stopped mid-way.
const datasetN = 3000

// rigFunctions are the functions every rig runs (each starts a process
// only when first invoked).
var rigFunctions = []string{lookupFn, syncFn, reconcileFn, captureAFn, webhookBFn, pollBFn, syncWorkerFn}

// captureTimeout replaces CaptureAFunction's 900 s Timeout in the rigs, as
// reconcileTimeout does ReconcileFunction's.
const captureTimeout = 30 * time.Second

// reconcileTimeout replaces ReconcileFunction's 900 s Timeout in the rigs,
// so a hung run fails the test in reasonable time.
const reconcileTimeout = 30 * time.Second

// rigEnvKey is set in every function process of a rig (with the rig's id),
// so a test can find its processes in /proc.
const rigEnvKey = "UCS_FAULTS_RIG"

var (
	// tpl is the repository's template.yaml.
	tpl *samtemplate.Template
	// bootstraps maps a logical id to its bootstrap built for this machine.
	bootstraps map[string]string
	// data is the shared data set.
	data *dataset
	// suiteLog receives every line every function logs during the suite.
	suiteLog = &lineLog{}
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "ucs-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := setup(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "faults: setup:", err)
		return 1
	}
	code := m.Run()
	// Row 15 over the whole suite: every rig also scans its own lines when
	// it closes, so this catches lines logged outside any test's rig.
	lines := suiteLog.lines()
	if leaks := data.pii.scan(lines); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "faults: %d function log line(s) of the suite hold personal data or a secret in clear:\n", len(leaks))
		for _, l := range leaks[:min(len(leaks), 20)] {
			fmt.Fprintln(os.Stderr, "  ", l)
		}
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("faults: scanned %d function log lines for %d personal values and secrets: none in clear\n", len(lines), data.pii.size())
	}
	return code
}

// setup loads the template, gets the bootstraps (prebuilt by make
// test, or built with the Makefile: localtest.HostBootstraps) and
// generates the data set, at the same time.
func setup(tmp string) error {
	if _, err := exec.LookPath("make"); err != nil {
		return fmt.Errorf("make is not on PATH: the functions are built with the Makefile: %w", err)
	}
	var err error
	tpl, err = samtemplate.Load(filepath.Join(repoRoot, "template.yaml"), samtemplate.Options{})
	if err != nil {
		return err
	}
	var fns []*samtemplate.Function
	for _, id := range rigFunctions {
		f, ok := tpl.Function(id)
		if !ok {
			return fmt.Errorf("template.yaml has no %s", id)
		}
		fns = append(fns, f)
	}
	eg := new(errgroup.Group)
	eg.Go(func() error {
		var err error
		bootstraps, err = localtest.HostBootstraps(context.Background(),
			localtest.BootstrapConfig{Root: repoRoot, Dir: filepath.Join(tmp, "build"), Log: os.Stderr}, fns)
		return err
	})
	eg.Go(func() error {
		var err error
		data, err = newDataset(filepath.Join(tmp, "data"))
		return err
	})
	return eg.Wait()
}

// repoRoot is the module's root, from this package's directory.
const repoRoot = "../../../.."

// statSources stats every file the bootstraps are built from
// (localtest.NewestSource): they are built (or copied) in TestMain, before
// m.Run, where go test's result cache does not watch; the files the test
// process stats while tests run, it does: a change to one of them then
// invalidates a cached PASS. newRig calls it once.
var statSources = sync.OnceValue(func() error {
	_, _, err := localtest.NewestSource(repoRoot)
	return err
})

// dataset is the generated data: System A's snapshot and System B's
// customers as files, the ground truth, and every personal value.
type dataset struct {
	snapshot []byte // the good schema v1 snapshot
	systemB  []byte // System B customers, JSON Lines
	truth    demodata.Truth
	a        []*merge.Record // System A, in join order
	pii      *piiSet
}

func newDataset(dir string) (*dataset, error) {
	cfg := demodata.Config{Seed: 1, N: datasetN, Showcase: true}
	truth, err := demodata.Write(context.Background(), cfg, dir)
	if err != nil {
		return nil, err
	}
	d := &dataset{truth: truth, pii: newPIISet()}
	if d.snapshot, err = os.ReadFile(filepath.Join(dir, demodata.SnapshotFile)); err != nil {
		return nil, err
	}
	if d.systemB, err = os.ReadFile(filepath.Join(dir, demodata.SystemBFile)); err != nil {
		return nil, err
	}
	g, err := demodata.New(cfg)
	if err != nil {
		return nil, err
	}
	for p := range g.Pairs() {
		for _, r := range []*merge.Record{p.A, p.B} {
			if r != nil {
				d.pii.addRecord(r)
			}
		}
		if p.A != nil {
			d.a = append(d.a, p.A)
		}
	}
	return d, nil
}

// record returns the showcase customer's record in System A or B.
func (d *dataset) recordA(email string) *merge.Record {
	for _, r := range d.a {
		if r.Key() == merge.Key(email) {
			return r
		}
	}
	return nil
}

// lineLog keeps the lines written to it (the sandbox writes one line per
// Write) and copies them to the suite's log.
type lineLog struct {
	mu   sync.Mutex
	all  []string
	next *lineLog
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		l.all = append(l.all, line)
	}
	l.mu.Unlock()
	if l.next != nil {
		l.next.Write(p) //nolint:errcheck // never fails
	}
	return len(p), nil
}

func (l *lineLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// rigConfig is what a test changes in its rig.
type rigConfig struct {
	snapshot   []byte // the first snapshot version; nil: the data set's
	noSnapshot bool   // upload no snapshot at all
	env        map[string]string
	timeouts   map[string]time.Duration
	instances  map[string]int
	s3Front    func(s3URL string) string // the endpoint the functions use, in front of the server
	forced     map[string]string         // set in every function process, over the template's
}

type rigOption func(*rigConfig)

// withEnv sets a template variable for every function that declares it.
func withEnv(k, v string) rigOption { return func(c *rigConfig) { c.env[k] = v } }

// withForced sets k in every function process, whether the template
// declares it or not (an AWS_ENDPOINT_URL_* of a fake service).
func withForced(k, v string) rigOption { return func(c *rigConfig) { c.forced[k] = v } }

// withTimeout sets a function's Timeout.
func withTimeout(fn string, d time.Duration) rigOption {
	return func(c *rigConfig) { c.timeouts[fn] = d }
}

// withInstances lets fn run n invocations at the same time.
func withInstances(fn string, n int) rigOption { return func(c *rigConfig) { c.instances[fn] = n } }

// withSnapshot uploads b as the first snapshot version instead of the data
// set's.
func withSnapshot(b []byte) rigOption { return func(c *rigConfig) { c.snapshot = b } }

// withoutSnapshot uploads no snapshot.
func withoutSnapshot() rigOption { return func(c *rigConfig) { c.noSnapshot = true } }

// withS3Front points the functions at front(s3URL) instead of the S3 server.
func withS3Front(front func(s3URL string) string) rigOption {
	return func(c *rigConfig) { c.s3Front = front }
}

// rig is one test's world: an S3 server with the snapshot, a System B
// simulator with the customers, and the functions in sandboxes.
type rig struct {
	t      *testing.T
	id     string
	s3     *s3local.Server
	s3c    *s3.Client
	sim    *bsim.Sim
	simURL string
	token  string
	// webhookSecret signs System B's webhook deliveries (the functions'
	// SYSTEM_B_WEBHOOK_SECRET).
	webhookSecret string
	fns           sandbox.Set
	log           *lineLog
	versions      []string // snapshot version ids, in upload order
}

// newRig starts a rig; everything stops when the test ends, after checking
// that no function process is left and that the rig's logs hold no
// personal data.
func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	if err := statSources(); err != nil {
		t.Fatal(err)
	}
	cfg := rigConfig{env: map[string]string{}, timeouts: map[string]time.Duration{}, instances: map[string]int{}, forced: map[string]string{}}
	for _, o := range opts {
		o(&cfg)
	}
	r := &rig{t: t, id: randomHex(8), token: "faults-token-" + randomHex(12), log: &lineLog{next: suiteLog},
		webhookSecret: "faults-whsec-" + randomHex(12)}
	data.pii.addSecret(r.token)
	data.pii.addSecret(r.webhookSecret)
	ctx := context.Background()

	var err error
	r.s3, err = s3local.Start(ctx, s3local.Config{Addr: "127.0.0.1:0", Dir: t.TempDir(), Buckets: []string{snapshotBucket, reportBucket}})
	if err != nil {
		t.Fatal(err)
	}
	r.s3c = r.s3.Client()
	r.sim = bsim.New(bsim.Config{Token: r.token, Seed: 1})
	if err := r.sim.Load(bytes.NewReader(data.systemB)); err != nil {
		t.Fatal(err)
	}
	simSrv, err := r.sim.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.simURL = simSrv.URL()
	t.Cleanup(func() {
		r.fns.Close() //nolint:errcheck // never fails
		r.sim.Close()
		simSrv.Close() //nolint:errcheck // test teardown
		r.s3.Close()   //nolint:errcheck // test teardown
		if pids := rigProcesses(r.id, ""); len(pids) > 0 {
			t.Errorf("function processes left behind: %v", pids)
		}
		if leaks := data.pii.scan(r.log.lines()); len(leaks) > 0 {
			t.Errorf("row 15: %d function log line(s) hold personal data or a secret in clear, e.g.\n%s", len(leaks), leaks[0])
		}
		if t.Failed() {
			t.Logf("function logs:\n%s", strings.Join(r.log.lines(), "\n"))
		}
	})
	if !cfg.noSnapshot {
		snap := cfg.snapshot
		if snap == nil {
			snap = data.snapshot
		}
		r.putSnapshot(snap)
	}

	endpoint := r.s3.URL()
	if cfg.s3Front != nil {
		endpoint = cfg.s3Front(endpoint)
	}
	tool := map[string]string{"SYSTEM_B_URL": r.simURL, "SYSTEM_B_TOKEN": r.token, "SYSTEM_B_WEBHOOK_SECRET": r.webhookSecret,
		// the sync worker's dedup store: the embedded one, a file of this rig
		"DEDUP_STORE": "file://" + filepath.Join(t.TempDir(), "dedup.db")}
	forced := map[string]string{"AWS_ENDPOINT_URL_S3": endpoint, rigEnvKey: r.id}
	maps.Copy(forced, cfg.forced)
	r.fns = sandbox.Set{}
	declared := map[string]bool{}
	for _, id := range rigFunctions {
		f, _ := tpl.Function(id)
		for k := range f.Environment {
			declared[k] = true
		}
		env, _ := f.ComposeEnv(tool, cfg.env)
		timeout := f.Timeout
		switch id {
		case reconcileFn:
			timeout = reconcileTimeout
		case captureAFn:
			timeout = captureTimeout
		}
		if d, ok := cfg.timeouts[id]; ok {
			timeout = d
		}
		fn, err := sandbox.New(sandbox.Config{
			Name:         id,
			Bootstrap:    bootstraps[id],
			Runtime:      f.Runtime,
			Timeout:      timeout,
			MemoryMB:     f.MemoryMB,
			Env:          env,
			Forced:       forced,
			MaxInstances: cfg.instances[id],
			Log:          r.log,
		})
		if err != nil {
			t.Fatal(err)
		}
		r.fns[id] = fn
	}
	for k := range cfg.env {
		if !declared[k] {
			t.Fatalf("withEnv(%q): no function of the template declares it", k)
		}
	}
	return r
}

// putSnapshot uploads b as a new version of the snapshot object and
// returns its version id.
func (r *rig) putSnapshot(b []byte) string {
	r.t.Helper()
	out, err := r.s3c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(snapshotBucket), Key: aws.String(snapshotKey), Body: bytes.NewReader(b),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	v := aws.ToString(out.VersionId)
	if v == "" {
		r.t.Fatal("the snapshot bucket is not versioned")
	}
	r.versions = append(r.versions, v)
	return v
}

// setFaults switches the simulator's faults.
func (r *rig) setFaults(f bsim.Faults) {
	r.t.Helper()
	if err := r.sim.SetFaults(f); err != nil {
		r.t.Fatal(err)
	}
}

// invoke runs one event through fn and returns the call with its log.
func (r *rig) invoke(fn string, event []byte) *call {
	r.t.Helper()
	res, err := r.fns.Invoke(context.Background(), fn, event, sandbox.InvokeOptions{CaptureLog: true})
	if err != nil {
		r.t.Fatalf("invoke %s: %v", fn, err)
	}
	return newCall(r.t, fn, res)
}

// pid returns the process id of fn's (single) running process.
func (r *rig) pid(fn string) int {
	r.t.Helper()
	pids := rigProcesses(r.id, fn)
	if len(pids) != 1 {
		r.t.Fatalf("want one %s process, found %v", fn, pids)
	}
	return pids[0]
}

// signal sends sig to fn's process.
func (r *rig) signal(fn string, sig syscall.Signal) {
	r.t.Helper()
	if err := syscall.Kill(r.pid(fn), sig); err != nil {
		r.t.Fatal(err)
	}
}

// rigProcesses lists the processes started for rig id (for function fn, or
// any when fn is ""), by their environment.
func rigProcesses(id, fn string) []int {
	if runtime.GOOS != "linux" {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		if !slices.Contains(vars, rigEnvKey+"="+id) {
			continue
		}
		if fn != "" && !slices.Contains(vars, "AWS_LAMBDA_FUNCTION_NAME="+fn) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && isZombie(st) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// isZombie reads the state field of /proc/<pid>/stat.
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// waitFor polls cond (bounded) and fails the test if it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getObject reads an object of the rig's S3 server.
func (r *rig) getObject(bucket, key string) []byte {
	r.t.Helper()
	out, err := r.s3c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		r.t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// objectVersions counts the versions of every object under prefix (delete
// markers included): a write-once object has exactly one.
func (r *rig) objectVersions(bucket, prefix string) map[string]int {
	r.t.Helper()
	out, err := r.s3c.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		r.t.Fatal(err)
	}
	n := map[string]int{}
	for _, v := range out.Versions {
		n[strings.TrimPrefix(aws.ToString(v.Key), prefix)]++
	}
	for _, m := range out.DeleteMarkers {
		n[strings.TrimPrefix(aws.ToString(m.Key), prefix)]++
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // never fails
	return hex.EncodeToString(b)
}

// mustJSON marshals v or fails the test.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
