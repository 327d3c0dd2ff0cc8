// Package stackproc runs the whole local stack (`local up` of cmd/local) as
// a child process for a load run: it builds cmd/local once into a temporary
// directory, starts it in its own process group on free loopback ports with
// its own data and build directories (so it never touches another stack's
// files or ports), waits until start-api answers a lookup, and stops the
// whole group at the end: SIGTERM, then SIGKILL after a grace period. On
// Linux the child also gets SIGTERM from the kernel if this process dies.
package stackproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/acme/unified-customer-service/shared/demodata"
)

// ErrNotReady is returned (wrapped) by Start when the stack did not come up.
var ErrNotReady = errors.New("stackproc: the local stack did not come up")

// Defaults of Config.
const (
	DefaultInstances    = 4
	DefaultGrace        = 10 * time.Second
	DefaultReadyTimeout = 10 * time.Minute // the first build of the functions on a slow machine
	tailBytes           = 64 << 10
)

// Config says how to run the stack.
type Config struct {
	// Root is the repository (go.mod and template.yaml); default: the
	// nearest one at or above the working directory.
	Root string
	// Go is the go command; default "go".
	Go string
	// Instances is `local up --instances`: warm sandboxes per function, so
	// concurrent lookups are not all queued behind one process.
	Instances int
	// Grace is how long the stack gets to stop after SIGTERM before the
	// group is killed.
	Grace time.Duration
	// ReadyTimeout bounds building, seeding and starting.
	ReadyTimeout time.Duration
	// Log receives progress lines; default io.Discard.
	Log io.Writer
	// Output, when set, also receives everything the stack prints (its
	// banner, START/END/REPORT lines, the functions' logs).
	Output io.Writer
}

// Stack is a running local stack.
type Stack struct {
	APIURL    string // start-api
	LambdaURL string // start-lambda
	S3URL     string // the embedded S3 server
	SimURL    string // the System B simulator
	DataDir   string // the stack's data directory (S3 store, demo data)

	tmp     string
	cfg     Config
	proc    *group
	tail    *Tail
	stopped sync.Once
	stopErr error
}

// TruthPath is the demo data set's truth file, which names the generator
// configuration the stack seeded.
func (s *Stack) TruthPath() string {
	return filepath.Join(s.DataDir, "demo", demodata.TruthFile)
}

// Tail returns the last output of the stack (for a failure report).
func (s *Stack) Tail() string { return s.tail.String() }

func (cfg *Config) fill() error {
	if cfg.Root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("stackproc: %w", err)
		}
		root, err := FindRoot(wd)
		if err != nil {
			return err
		}
		cfg.Root = root
	}
	if cfg.Go == "" {
		cfg.Go = "go"
	}
	if cfg.Instances < 1 {
		cfg.Instances = DefaultInstances
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	return nil
}

// FindRoot returns the nearest directory at or above dir holding both
// go.mod and template.yaml.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("stackproc: find the repository: %w", err)
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, "template.yaml")) {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("stackproc: no directory with go.mod and template.yaml at or above the working directory; run from the repository")
		}
		dir = up
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Start builds cmd/local, starts `local up` and waits until it answers.
// On error nothing is left running. Stop must be called on success.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "ucs-loadgen-")
	if err != nil {
		return nil, fmt.Errorf("stackproc: %w", err)
	}
	s := &Stack{tmp: tmp, cfg: cfg, DataDir: filepath.Join(tmp, "data"), tail: NewTail(tailBytes)}
	ok := false
	defer func() {
		if !ok {
			s.Stop() //nolint:errcheck // the start error is the one to report
		}
	}()

	bin := filepath.Join(tmp, "local")
	fmt.Fprintf(cfg.Log, "stack: building cmd/local\n")
	build := exec.CommandContext(ctx, cfg.Go, "build", "-o", bin, "./cmd/local")
	build.Dir, build.Stdout, build.Stderr = cfg.Root, cfg.Log, cfg.Log
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("stackproc: go build ./cmd/local: %w", err)
	}

	ports, err := FreePorts(4)
	if err != nil {
		return nil, err
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	s.APIURL, s.LambdaURL = "http://"+addr(ports[0]), "http://"+addr(ports[1])
	s.S3URL, s.SimURL = "http://"+addr(ports[2]), "http://"+addr(ports[3])
	args := []string{"up",
		"--template", filepath.Join(cfg.Root, "template.yaml"),
		"--host", "127.0.0.1",
		"--api-port", strconv.Itoa(ports[0]), "--lambda-port", strconv.Itoa(ports[1]),
		"--s3-addr", addr(ports[2]), "--bsim-addr", addr(ports[3]),
		"--embedded", "on",
		"--data-dir", s.DataDir, "--build-dir", filepath.Join(tmp, "build"),
		"--instances", strconv.Itoa(cfg.Instances),
	}
	var out io.Writer = s.tail
	if cfg.Output != nil {
		out = io.MultiWriter(s.tail, cfg.Output)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = cfg.Root, out, out
	fmt.Fprintf(cfg.Log, "stack: starting local up (start-api %s, simulator %s, %d instances per function)\n", s.APIURL, s.SimURL, cfg.Instances)
	if s.proc, err = startGroup(cmd); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	probe := s.APIURL + "/customer/" + url.PathEscape(demodata.ShowcaseInSync)
	if err := WaitReady(rctx, probe, s.proc.done); err != nil {
		return nil, fmt.Errorf("%w: %w; its last output:\n%s", ErrNotReady, err, s.tail.String())
	}
	fmt.Fprintf(cfg.Log, "stack: up\n")
	ok = true
	return s, nil
}

// Stop stops the stack's process group (SIGTERM, then SIGKILL after the
// grace period) and removes its temporary directory. It is safe to call
// more than once.
func (s *Stack) Stop() error {
	s.stopped.Do(func() {
		if s.proc != nil {
			s.stopErr = s.proc.stop(s.cfg.Grace)
		}
		if err := os.RemoveAll(s.tmp); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("stackproc: remove %s: %w", s.tmp, err)
		}
	})
	return s.stopErr
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1 (free when
// asked: a port may be taken by someone else before it is used).
func FreePorts(n int) ([]int, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("stackproc: free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WaitReady polls probe until it answers 200, the child exits (exited is
// closed) or ctx ends.
func WaitReady(ctx context.Context, probe string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 3 * time.Second}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := errors.New("no answer yet")
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, probe, nil)
		if err != nil {
			return fmt.Errorf("stackproc: probe: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("a lookup answered %d", resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-exited:
			return errors.New("it exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Tail keeps the last bytes written to it, in a fixed ring. It is safe for
// concurrent use.
type Tail struct {
	mu   sync.Mutex
	ring []byte
	pos  int  // where the next byte goes
	full bool // the ring has wrapped
}

// NewTail returns a Tail keeping up to n bytes (at least 1).
func NewTail(n int) *Tail { return &Tail{ring: make([]byte, max(n, 1))} }

// Write keeps the end of p.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= len(t.ring) {
		p = p[len(p)-len(t.ring):]
		copy(t.ring, p)
		t.pos, t.full = 0, true
		return n, nil
	}
	c := copy(t.ring[t.pos:], p)
	if c < len(p) {
		copy(t.ring, p[c:])
		t.full = true
	}
	t.pos = (t.pos + len(p)) % len(t.ring)
	if t.pos == 0 && len(p) > 0 {
		t.full = true
	}
	return n, nil
}

// String returns what is kept, oldest first.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.full {
		return string(t.ring[:t.pos])
	}
	return string(t.ring[t.pos:]) + string(t.ring[:t.pos])
}
