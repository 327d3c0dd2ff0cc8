package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/cmd/loadgen/internal/load"
	"github.com/acme/unified-customer-service/cmd/loadgen/internal/stackproc"
	"github.com/acme/unified-customer-service/shared/demodata"
)

// Exit codes.
const (
	exitPass  = 0
	exitFail  = 1 // a phase broke its rule, or the run could not be made
	exitUsage = 2
)

// errUsage marks a command-line mistake.
var errUsage = errors.New("usage")

// options are the command's flags.
type options struct {
	url, simURL string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	maxRequests int64
	timeout     time.Duration
	mix         string
	phases      string
	faultRate   float64
	faultStatus int
	pool        int
	truth       string
	stack       bool
	instances   int
	grace       time.Duration
	stackLog    string
	jsonOut     bool
	allowRemote bool
	urlSet      bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:3000", "start-api's base URL (set by -stack)")
	fs.StringVar(&o.simURL, "sim-url", "http://127.0.0.1:8081", "the System B simulator's base URL, for fault injection (set by -stack)")
	fs.IntVar(&o.concurrency, "c", 32, "concurrent clients")
	fs.DurationVar(&o.duration, "d", 30*time.Second, "duration of each phase")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unjudged warm-up before the phases (warm sandboxes, connections); 0 for none")
	fs.Int64Var(&o.maxRequests, "max-requests", 0, "at most this many requests per phase (0: bounded by -d only)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "per-request timeout")
	fs.StringVar(&o.mix, "mix", load.DefaultMix.String(), "weights of existing/missing/conflicting customers")
	fs.StringVar(&o.phases, "phases", "healthy,faults", "phases to run, in order: healthy, faults")
	fs.Float64Var(&o.faultRate, "fault-rate", 0.2, "System B error rate in the faults phase")
	fs.IntVar(&o.faultStatus, "fault-status", 503, "status of System B's injected errors")
	fs.IntVar(&o.pool, "pool", 5000, "emails kept per kind of customer")
	fs.StringVar(&o.truth, "truth", "", "the demo data's truth.json (default: the stack's, else .local/demo/truth.json, else cmd/local's defaults: seed 1, 2000 customers)")
	fs.BoolVar(&o.stack, "stack", false, "build and start the whole local stack (`local up`) on free loopback ports, and stop it at the end")
	fs.IntVar(&o.instances, "stack-instances", stackproc.DefaultInstances, "with -stack: warm sandboxes per function")
	fs.DurationVar(&o.grace, "stack-grace", stackproc.DefaultGrace, "with -stack: time between SIGTERM and SIGKILL when stopping it")
	fs.StringVar(&o.stackLog, "stack-log", "", "with -stack: also write everything the stack prints to this file")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a -url or -sim-url that is not a loopback address")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		o.urlSet = o.urlSet || f.Name == "url" || f.Name == "sim-url"
	})
	switch {
	case o.stack && o.urlSet:
		return nil, fmt.Errorf("%w: -stack chooses the URLs itself; drop -url and -sim-url", errUsage)
	case o.concurrency < 1 || o.concurrency > 10000:
		return nil, fmt.Errorf("%w: -c %d, want 1..10000", errUsage, o.concurrency)
	case o.duration <= 0:
		return nil, fmt.Errorf("%w: -d %s, want more than 0", errUsage, o.duration)
	case o.warmup < 0:
		return nil, fmt.Errorf("%w: -warmup %s, want 0 or more", errUsage, o.warmup)
	case o.maxRequests < 0:
		return nil, fmt.Errorf("%w: -max-requests %d, want 0 or more", errUsage, o.maxRequests)
	case o.timeout <= 0:
		return nil, fmt.Errorf("%w: -timeout %s, want more than 0", errUsage, o.timeout)
	case !(o.faultRate > 0 && o.faultRate <= 1):
		return nil, fmt.Errorf("%w: -fault-rate %v, want more than 0 and at most 1", errUsage, o.faultRate)
	case o.faultStatus < 400 || o.faultStatus > 599:
		return nil, fmt.Errorf("%w: -fault-status %d, want 400..599", errUsage, o.faultStatus)
	case o.pool < 1:
		return nil, fmt.Errorf("%w: -pool %d, want at least 1", errUsage, o.pool)
	}
	if !o.stack {
		for _, u := range []string{o.url, o.simURL} {
			if err := checkTarget(u, o.allowRemote); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

// checkTarget refuses a URL that is not http(s) on a loopback address
// unless remote targets are allowed.
func checkTarget(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %q is not an http(s) URL", errUsage, raw)
	}
	if allowRemote {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("%w: %s is not a loopback address; a load run only targets this machine (pass -allow-remote to insist)", errUsage, host)
}

// phases returns the phases -phases names, a warm-up first when asked for.
func (o *options) phaseList() ([]load.Phase, error) {
	var out []load.Phase
	if o.warmup > 0 {
		out = append(out, load.Phase{Name: "warmup", Unjudged: true})
	}
	faults, err := json.Marshal(map[string]any{"errorRate": o.faultRate, "status": o.faultStatus})
	if err != nil {
		return nil, fmt.Errorf("loadgen: faults: %w", err)
	}
	for name := range strings.SplitSeq(o.phases, ",") {
		switch strings.TrimSpace(name) {
		case "healthy":
			out = append(out, load.Phase{Name: "healthy"})
		case "faults":
			out = append(out, load.Phase{Name: "faults", Faults: faults, Degraded: true})
		default:
			return nil, fmt.Errorf("%w: -phases: unknown phase %q (healthy, faults)", errUsage, name)
		}
	}
	return out, nil
}

// run is the command: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitPass
		}
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return exitUsage
	}
	phases, err := o.phaseList()
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return exitUsage
	}
	rep, err := runPhases(ctx, o, phases, args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return exitFail
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: write the report: %v\n", err)
		return exitFail
	}
	if !rep.OK {
		return exitFail
	}
	return exitPass
}

// runPhases starts the stack when asked, builds the workload and runs the
// phases; the stack is stopped before it returns.
func runPhases(ctx context.Context, o *options, phases []load.Phase, args []string, log io.Writer) (rep *load.Report, err error) {
	machine := load.ThisMachine()
	truth := o.truth
	if o.stack {
		cfg := stackproc.Config{Instances: o.instances, Grace: o.grace, Log: log}
		if o.stackLog != "" {
			f, err := os.Create(o.stackLog)
			if err != nil {
				return nil, fmt.Errorf("loadgen: -stack-log: %w", err)
			}
			defer f.Close()
			cfg.Output = f
		}
		st, err := stackproc.Start(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		defer func() {
			if serr := st.Stop(); serr != nil {
				fmt.Fprintf(log, "loadgen: %v\n", serr)
			}
			fmt.Fprintf(log, "stack: stopped\n")
		}()
		o.url, o.simURL = st.APIURL, st.SimURL
		if truth == "" {
			truth = st.TruthPath()
		}
	}
	gen, data, err := demoConfig(truth)
	if err != nil {
		return nil, err
	}
	pools, err := load.DemoPools(gen, o.pool)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	mix, err := load.ParseMix(o.mix)
	if err != nil {
		return nil, fmt.Errorf("loadgen: -mix: %w", err)
	}
	wl, err := load.NewWorkload(mix, pools)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	sim, err := findSim(ctx, o.simURL, phases, log)
	if err != nil {
		return nil, err
	}
	cfg := load.Config{
		URL: o.url, Concurrency: o.concurrency, Duration: o.duration, MaxRequests: o.maxRequests,
		Workload: wl, Client: load.NewClient(o.concurrency, o.timeout), Sim: sim,
	}
	rep = &load.Report{
		Command: "loadgen " + strings.Join(args, " "), URL: o.url, Concurrency: o.concurrency,
		Duration: o.duration.String(), MaxRequests: o.maxRequests, Mix: mix.String(), Data: data, Machine: machine,
	}
	for _, ph := range phases {
		pc := cfg
		if ph.Unjudged {
			pc.Duration = o.warmup
		}
		fmt.Fprintf(log, "phase %s: %d clients for %s (rule: %s)\n", ph.Name, pc.Concurrency, pc.Duration, ph.Rule())
		res, err := load.Run(ctx, pc, ph)
		if err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		rep.Phases = append(rep.Phases, res)
		fmt.Fprintln(log, res.Line())
		if ctx.Err() != nil {
			break
		}
	}
	rep.Machine.LoadEnd = load.LoadAverage()
	rep.Judge()
	return rep, nil
}

// findSim returns the simulator at simURL, or nil when it does not answer
// and no phase injects faults.
func findSim(ctx context.Context, simURL string, phases []load.Phase, log io.Writer) (*load.Sim, error) {
	sim := &load.Sim{URL: simURL, Client: load.NewClient(1, 10*time.Second)}
	_, err := sim.Stats(ctx)
	if err == nil {
		return sim, nil
	}
	for _, ph := range phases {
		if ph.Faults != nil {
			return nil, fmt.Errorf("loadgen: phase %s needs the System B simulator: %w", ph.Name, err)
		}
	}
	fmt.Fprintf(log, "loadgen: no System B simulator at %s; running without its counters\n", simURL)
	return nil, nil
}

// demoConfig returns the generator configuration of the data the target
// serves: from a truth file when there is one, else cmd/local's defaults.
func demoConfig(truth string) (demodata.Config, string, error) {
	if truth == "" {
		if def := filepath.Join(".local", "demo", demodata.TruthFile); fileExists(def) {
			truth = def
		}
	}
	if truth == "" {
		cfg := load.DemoConfig()
		return cfg, fmt.Sprintf("seed %d, %d customers + showcase (cmd/local's defaults)", cfg.Seed, cfg.N), nil
	}
	cfg, err := load.ReadTruth(truth)
	if err != nil {
		return demodata.Config{}, "", fmt.Errorf("loadgen: %w", err)
	}
	return cfg, fmt.Sprintf("seed %d, %d customers, showcase %t (from %s)", cfg.Seed, cfg.N, cfg.Showcase, filepath.Base(filepath.Dir(truth))+"/"+filepath.Base(truth)), nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
