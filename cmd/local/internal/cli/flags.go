package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/s3local"
)

// errHelp is returned when -h was asked for; the usage is printed.
var errHelp = errors.New("help")

// options are every command's flags; each command registers the ones it
// uses.
type options struct {
	template    string
	overrides   stringList
	envVars     string
	region      string
	buildDir    string
	dataDir     string
	skipBuild   bool
	s3Endpoint  string
	systemBURL  string
	embedded    string
	s3Addr      string
	bsimAddr    string
	bsimLatency time.Duration
	kafkaAddr   string
	// kafka starts (or finds) the Kafka broker even when no function's
	// KAFKA_BOOTSTRAP_SERVERS points at this machine (up does).
	kafka bool
	// mappings runs the functions' Kafka event source mappings (and so
	// starts or finds the broker when a function has one): up, start-lambda.
	mappings    bool
	instances   int
	noSeed      bool
	event       string
	host        string
	port        int
	allowRemote bool
	eventName   string
	at          string
	printEvent  bool
	apiPort     int
	lambdaPort  int
	// onObjectCreated is told of the object versions written to the
	// embedded S3 (up fires the functions whose rules match).
	onObjectCreated func(s3local.ObjectCreated)
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newFlags returns a flag set with the flags every command shares.
func (a *App) newFlags(name, synopsis string) (*flag.FlagSet, *options) {
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	both := func(short, long, def, help string, p *string) {
		fs.StringVar(p, long, def, help)
		if short != "" {
			fs.StringVar(p, short, def, "same as --"+long)
		}
	}
	both("t", "template", "template.yaml", "the SAM template", &o.template)
	fs.Var(&o.overrides, "parameter-overrides", `template parameters, "Key=Value Key2=Value2" (repeatable)`)
	both("n", "env-vars", "", `JSON file of environment overrides: {"Parameters": {...}, "<LogicalId>": {...}}`, &o.envVars)
	region := a.getenv("AWS_REGION")
	if region == "" {
		region = a.getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	fs.StringVar(&o.region, "region", region, "AWS_REGION of the functions and AWS::Region")
	fs.StringVar(&o.buildDir, "build-dir", "", "where bootstraps are built (default <template dir>/.local/build)")
	fs.StringVar(&o.dataDir, "data-dir", "", "the embedded S3 store and demo data (default <template dir>/.local)")
	fs.BoolVar(&o.skipBuild, "skip-build", false, "use the bootstraps already built")
	fs.StringVar(&o.s3Endpoint, "s3-endpoint", "", `S3 endpoint for the functions (AWS_ENDPOINT_URL_S3) instead of the embedded server; "aws" for real S3 with this shell's credentials`)
	fs.StringVar(&o.systemBURL, "system-b-url", "", "System B for the functions instead of the simulator (set SYSTEM_B_TOKEN with --env-vars)")
	fs.StringVar(&o.embedded, "embedded", "auto", "embedded S3 and System B simulator: auto (start unless already listening), on, off")
	fs.StringVar(&o.s3Addr, "s3-addr", "127.0.0.1:9000", "address of the embedded S3 server")
	fs.StringVar(&o.bsimAddr, "bsim-addr", "127.0.0.1:8081", "address of the System B simulator")
	fs.StringVar(&o.kafkaAddr, "kafka-addr", "127.0.0.1:9092", "address of the embedded Kafka broker")
	fs.DurationVar(&o.bsimLatency, "bsim-latency", 0, "latency the System B simulator adds to every API request (e.g. 30ms: a remote System B)")
	fs.IntVar(&o.instances, "instances", 1, "warm sandboxes per function (concurrent invocations)")
	fs.BoolVar(&o.noSeed, "no-seed", false, "do not load demo data into the embedded services")
	fs.Usage = func() {
		fmt.Fprintf(a.Stderr, "%s\n\nFlags:\n", synopsis)
		fs.SetOutput(a.Stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs, o
}

// serverFlags adds --host, --port and --allow-non-loopback.
func serverFlags(fs *flag.FlagSet, o *options, port int) {
	fs.StringVar(&o.host, "host", "127.0.0.1", "address to bind")
	fs.IntVar(&o.port, "port", port, "port to bind")
	fs.BoolVar(&o.allowRemote, "allow-non-loopback", false, "allow --host to be reachable from other machines (no authentication!)")
}

// parseArgs parses flags and positional arguments in any order, as sam does
// (`invoke Fn -e ev.json` and `invoke -e ev.json Fn`).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.Usage()
				return nil, errHelp
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// checkHost refuses a bind address off the loopback interface unless allowed.
func checkHost(host string, allow bool) error {
	if allow {
		return nil
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return usageError{fmt.Sprintf("--host %s is not a loopback address; the local endpoints have no authentication (pass --allow-non-loopback to insist)", host)}
}
