//go:build bench

package benchmarks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/build"
	"github.com/acme/unified-customer-service/cmd/local/internal/localtest"
	"github.com/acme/unified-customer-service/cmd/local/internal/s3local"
	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/location"
	"github.com/acme/unified-customer-service/shared/merge"
)

var (
	flagReconcile = flag.String("e2e.reconcile", "100000,1000000", "customers of each reconciliation data set, comma-separated")
	flagCold      = flag.String("e2e.cold", "10000,1000000", "customers of each lookup data set (cold start and warm latency), comma-separated")
	flagLookups   = flag.Int("e2e.lookups", 2000, "measured sequential lookups per data set and repetition")
	flagWarmup    = flag.Int("e2e.warmup", 200, "warm-up lookups before the measured ones")
	flagRepeat    = flag.Int("e2e.repeat", 2, "repetitions of each measurement (a fresh function process each)")
	// The issue asks for 1% to 5% of the customers not in sync; the
	// generator's DefaultMix has 7% (4% conflicting, 3% in one system
	// only), so the default here is the top of the range: 3% conflicting,
	// 2% in one system only, 3% cosmetic-only (in sync), 92% identical.
	flagMix      = flag.String("e2e.mix", "conflictANewer=1.5%,conflictBNewer=1.5%,onlyInSystemA=1%,onlyInSystemB=1%", "situation mix of the generated data sets (demodata.ParseMix syntax)")
	flagProfileN = flag.Int("e2e.profile-n", 1000000, "customers of TestProfileReconcile's data set")
	flagCapture  = flag.String("e2e.capture", "1000000", "customers of each capture data set, comma-separated")
)

// The template's logical ids.
const (
	lookupFn    = "LookupFunction"
	reconcileFn = "ReconcileFunction"
	captureAFn  = "CaptureAFunction"
)

// dataSeed seeds every generated data set.
const dataSeed = 1

// benchMix is -e2e.mix parsed.
func benchMix(t testing.TB) demodata.Mix {
	t.Helper()
	m, err := demodata.ParseMix(*flagMix)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mixString renders m in percent.
func mixString(m demodata.Mix) string {
	return fmt.Sprintf("%.1f%% identical, %.1f%% cosmetic-only, %.1f%%+%.1f%% conflicting (A/B newer), %.1f%%+%.1f%% in one system only (A/B)",
		100*m.InSync, 100*m.CosmeticOnly, 100*m.ConflictANewer, 100*m.ConflictBNewer, 100*m.OnlyInSystemA, 100*m.OnlyInSystemB)
}

// dataSet returns the truth of gen's data set in dir, generating it unless
// dir already holds it (the same seed, size and mix).
func dataSet(t testing.TB, dir string, gen demodata.Config) (_ demodata.Truth, generated bool) {
	t.Helper()
	if raw, err := os.ReadFile(filepath.Join(dir, demodata.TruthFile)); err == nil {
		var tr demodata.Truth
		_, errA := os.Stat(filepath.Join(dir, demodata.SnapshotFile))
		_, errB := os.Stat(filepath.Join(dir, demodata.SystemBFile))
		if json.Unmarshal(raw, &tr) == nil && errA == nil && errB == nil &&
			tr.Seed == gen.Seed && tr.N == gen.N && tr.Mix == gen.Mix && !tr.Showcase {
			return tr, false
		}
	}
	tr, err := demodata.Write(context.Background(), gen, dir)
	if err != nil {
		t.Fatal(err)
	}
	return tr, true
}

// repoRoot returns the repository's root (the directory of go.mod).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
	t.Fatal("no go.mod above the package directory")
	return ""
}

// loadTemplate reads the repository's template.yaml with its defaults.
func loadTemplate(t testing.TB) *samtemplate.Template {
	t.Helper()
	tpl, err := samtemplate.Load(filepath.Join(repoRoot(t), "template.yaml"), samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// templateFunction returns the template's function id.
func templateFunction(t testing.TB, tpl *samtemplate.Template, id string) *samtemplate.Function {
	t.Helper()
	f, ok := tpl.Function(id)
	if !ok {
		t.Fatalf("template.yaml has no %s", id)
	}
	return f
}

// buildFunction builds f's bootstrap with the Makefile (make
// build-<LogicalId>) for goos/goarch under dir. For this machine (goos and
// goarch "") it takes the one `make bench-e2e` built (or builds it once,
// sharing go's build cache with the other packages): see
// localtest.HostBootstraps.
func buildFunction(t testing.TB, f *samtemplate.Function, dir, goos, goarch string) string {
	t.Helper()
	if goos == "" && goarch == "" {
		ps, err := localtest.HostBootstraps(context.Background(),
			localtest.BootstrapConfig{Root: repoRoot(t), Dir: dir}, []*samtemplate.Function{f})
		if err != nil {
			t.Fatal(err)
		}
		return ps[f.LogicalID]
	}
	var log bytes.Buffer
	b := &build.Builder{Dir: dir, GOOS: goos, GOARCH: goarch, Log: &log}
	p, err := b.Build(context.Background(), f)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	return p
}

// sizes parses a comma-separated list of customer counts.
func sizes(t testing.TB, s string) []int {
	t.Helper()
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("bad data set size %q", f)
		}
		out = append(out, n)
	}
	return out
}

// snapshotLocation is where the template's functions read System A.
type snapshotLocation struct{ bucket, key string }

// templateS3 returns the snapshot's bucket and key and every bucket the
// template's variables name.
func templateS3(t testing.TB, tpl *samtemplate.Template) (snapshotLocation, []string) {
	t.Helper()
	var snap snapshotLocation
	var buckets []string
	for _, f := range tpl.Functions {
		for k, v := range f.Environment {
			u, err := location.Parse(k, v, location.Prefix)
			if err != nil || u.Scheme != "s3" {
				continue
			}
			if !slices.Contains(buckets, u.Bucket) {
				buckets = append(buckets, u.Bucket)
			}
			if k == "SNAPSHOT_URI" {
				snap = snapshotLocation{u.Bucket, u.Key}
			}
		}
	}
	if snap.bucket == "" {
		t.Fatal("template.yaml gives no s3:// SNAPSHOT_URI")
	}
	slices.Sort(buckets)
	return snap, buckets
}

// rig is one data set served for real: the embedded S3 server holding the
// snapshot and the System B simulator holding the customers, both on free
// 127.0.0.1 ports, in this process.
type rig struct {
	tpl     *samtemplate.Template
	n       int
	dataDir string
	s3      *s3local.Server
	sim     *bsim.Sim
	simURL  string
	token   string
	snap    snapshotLocation
	truth   demodata.Truth
	setup   time.Duration // generating (or reusing) the data, uploading and loading
}

// newRig serves the n-customer data set, generating it into
// .local/bench/<n>/ on first use. Everything stops when the test ends.
func newRig(t testing.TB, tpl *samtemplate.Template, n int) *rig {
	t.Helper()
	start := time.Now()
	snap, buckets := templateS3(t, tpl)
	r := &rig{tpl: tpl, n: n, snap: snap, dataDir: filepath.Join(repoRoot(t), ".local", "bench", strconv.Itoa(n))}
	var err error
	r.s3, err = s3local.Start(context.Background(), s3local.Config{Addr: "127.0.0.1:0", Dir: t.TempDir(), Buckets: buckets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.s3.Close(); err != nil {
			t.Errorf("S3 server: %v", err)
		}
	})
	r.sim = bsim.New(bsim.Config{Seed: 1})
	r.token = r.sim.Token()
	srv, err := r.sim.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.simURL = srv.URL()
	t.Cleanup(func() {
		r.sim.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("System B simulator: %v", err)
		}
	})
	gen := demodata.Config{Seed: dataSeed, N: n, Mix: benchMix(t)}
	truth, generated := dataSet(t, r.dataDir, gen)
	eg := new(errgroup.Group)
	eg.Go(func() error {
		f, err := os.Open(filepath.Join(r.dataDir, demodata.SnapshotFile))
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err = r.s3.Client().PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(snap.bucket), Key: aws.String(snap.key), Body: f,
		}); err != nil {
			return fmt.Errorf("upload the snapshot: %w", err)
		}
		return nil
	})
	eg.Go(func() error {
		f, err := os.Open(filepath.Join(r.dataDir, demodata.SystemBFile))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := r.sim.Load(f); err != nil {
			return fmt.Errorf("load the System B simulator: %w", err)
		}
		return nil
	})
	if err := eg.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := r.sim.Len(); got != truth.SystemB {
		t.Fatalf("the simulator holds %d customers, the data set %d", got, truth.SystemB)
	}
	r.truth = truth
	r.setup = time.Since(start)
	what := "reused"
	if generated {
		what = "generated"
	}
	t.Logf("data set n=%d (mix %s) %s in %s; snapshot uploaded to %s, %d System B customers loaded; %s",
		n, mixString(gen.Mix), what, r.dataDir, r.s3.URL(), r.sim.Len(), r.setup.Round(time.Millisecond))
	return r
}

// function returns a sandbox running bootstrap as the template's function
// id (its Timeout, MemorySize and environment), pointed at the rig's
// servers as the local tool points it. Closed when the test ends.
func (r *rig) function(t testing.TB, id, bootstrap string, log *funcLog) *sandbox.Function {
	t.Helper()
	return r.functionWith(t, id, bootstrap, log, 0, nil)
}

// functionTimeout is function with another Timeout than the template's.
func (r *rig) functionTimeout(t testing.TB, id, bootstrap string, log *funcLog, timeout time.Duration) *sandbox.Function {
	t.Helper()
	return r.functionWith(t, id, bootstrap, log, timeout, nil)
}

// functionEnv is function with env over the template's variables.
func (r *rig) functionEnv(t testing.TB, id, bootstrap string, log *funcLog, env map[string]string) *sandbox.Function {
	t.Helper()
	return r.functionWith(t, id, bootstrap, log, 0, env)
}

// functionWith is function with another Timeout (0: the template's) and env
// over the template's variables.
func (r *rig) functionWith(t testing.TB, id, bootstrap string, log *funcLog, timeout time.Duration, env map[string]string) *sandbox.Function {
	t.Helper()
	f := templateFunction(t, r.tpl, id)
	if timeout == 0 {
		timeout = f.Timeout
	}
	env, _ = f.ComposeEnv(map[string]string{"SYSTEM_B_URL": r.simURL, "SYSTEM_B_TOKEN": r.token}, env)
	fn, err := sandbox.New(sandbox.Config{
		Name:      f.LogicalID,
		Bootstrap: bootstrap,
		Handler:   f.Handler,
		Runtime:   f.Runtime,
		Timeout:   timeout,
		MemoryMB:  f.MemoryMB,
		Region:    r.tpl.Region,
		AccountID: r.tpl.AccountID,
		Env:       env,
		Forced:    map[string]string{"AWS_ENDPOINT_URL_S3": r.s3.URL()},
		Log:       log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fn.Close() }) //nolint:errcheck // never fails
	return fn
}

// closeFunction stops fn and checks that no process of bootstrap is left.
func closeFunction(t testing.TB, fn *sandbox.Function, bootstrap string) {
	t.Helper()
	fn.Close() //nolint:errcheck // never fails
	if pids := processesOf(bootstrap); len(pids) > 0 {
		t.Errorf("function processes left behind: %v", pids)
	}
}

// processesOf returns the pids of the running processes of the executable.
func processesOf(exe string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && p == exe {
			pids = append(pids, pid)
		}
	}
	return pids
}

// funcLog receives a function's log lines (the sandbox writes one line per
// Write) and keeps what the benchmarks read from them: the
// system_b.latency EMF samples, the snapshot load's duration, and the last
// lines for a failure message. It holds no line in full beyond that tail,
// so a long run does not grow it.
type funcLog struct {
	mu           sync.Mutex
	sbLatencyMS  []float64
	snapshotLoad []time.Duration
	snapshotLine string // the last "snapshot loaded" line
	tail         []string
}

const tailLines = 40

func (l *funcLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		l.parse(line)
		if len(l.tail) == tailLines {
			l.tail = slices.Delete(l.tail, 0, 1)
		}
		l.tail = append(l.tail, line)
	}
	return len(p), nil
}

func (l *funcLog) parse(line string) {
	switch {
	case strings.Contains(line, `"system_b.latency"`):
		var doc map[string]json.RawMessage
		if json.Unmarshal([]byte(line), &doc) != nil {
			return
		}
		raw := doc["system_b.latency"]
		var one float64
		var many []float64
		if json.Unmarshal(raw, &one) == nil {
			l.sbLatencyMS = append(l.sbLatencyMS, one)
		} else if json.Unmarshal(raw, &many) == nil {
			l.sbLatencyMS = append(l.sbLatencyMS, many...)
		}
	case strings.Contains(line, "snapshot loaded"):
		var doc struct {
			Took json.RawMessage `json:"took"`
		}
		if json.Unmarshal([]byte(line), &doc) != nil {
			return
		}
		if d, ok := parseDuration(doc.Took); ok {
			l.snapshotLoad = append(l.snapshotLoad, d)
			l.snapshotLine = line
		}
	}
}

// parseDuration reads a log/slog duration: JSON nanoseconds or a
// time.Duration string.
func parseDuration(raw json.RawMessage) (time.Duration, bool) {
	var ns int64
	if json.Unmarshal(raw, &ns) == nil {
		return time.Duration(ns), true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if d, err := time.ParseDuration(s); err == nil {
			return d, true
		}
	}
	return 0, false
}

// takeLatencies returns the System B latency samples logged since the last
// call and forgets them.
func (l *funcLog) takeLatencies() []float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.sbLatencyMS
	l.sbLatencyMS = nil
	return out
}

// lastSnapshotLoad returns the duration of the last snapshot load logged.
func (l *funcLog) lastSnapshotLoad() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.snapshotLoad) == 0 {
		return 0, false
	}
	return l.snapshotLoad[len(l.snapshotLoad)-1], true
}

// String returns the last lines.
func (l *funcLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.tail, "\n")
}

// checkInvocation fails the test unless res is a success.
func checkInvocation(t testing.TB, res *sandbox.Result, err error, log *funcLog) {
	t.Helper()
	if err != nil {
		t.Fatalf("invoke: %v\nlast function log lines:\n%s", err, log)
	}
	if res.FunctionError != "" {
		t.Fatalf("the function failed (%s): %s\nlast function log lines:\n%s", res.ErrorType, res.Payload, log)
	}
}

// loadAverage returns the 1-minute load average, or NaN.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return math.NaN()
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// loadSpan is the load average at the start and the end of a measurement.
type loadSpan struct{ start, end float64 }

func startLoad() loadSpan { return loadSpan{start: loadAverage()} }

func (l *loadSpan) stop() { l.end = loadAverage() }

func (l loadSpan) String() string { return fmt.Sprintf("%.2f→%.2f", l.start, l.end) }

// percentile returns the p-th percentile (0..100, nearest rank) of
// sorted values.
func percentile[T int64 | float64 | time.Duration](sorted []T, p float64) T {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// table prints rows under a header as a Markdown table, columns aligned.
type table struct {
	header []string
	rows   [][]string
}

func (tb *table) add(cells ...string) { tb.rows = append(tb.rows, cells) }

func (tb *table) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	line := func(cells []string) {
		fmt.Fprintf(w, "| %s\t|\n", strings.Join(cells, "\t| "))
	}
	line(tb.header)
	sep := make([]string, len(tb.header))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range tb.rows {
		line(r)
	}
	w.Flush() //nolint:errcheck // a strings.Builder
	return b.String()
}

// machine describes this machine for the tables' captions.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s/%s, %s", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// newerTally turns a summary's newerSource into the generator's tally.
func newerTally(m map[merge.Source]int) demodata.NewerTally {
	return demodata.NewerTally{SystemA: m[merge.SystemA], SystemB: m[merge.SystemB], Equal: m[merge.Equal]}
}

// errNotEqual says what differs between a run and the ground truth.
var errNotEqual = errors.New("the run disagrees with the generator's ground truth")
