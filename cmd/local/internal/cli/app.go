// Package cli implements the subcommands of cmd/local, the Docker-free
// `sam local`: invoke, start-api, start-lambda, schedule, up and build. It
// reads template.yaml, builds the functions with the Makefile for the host,
// runs them on the Lambda Runtime API (package sandbox), and wires the
// embedded S3 server, System B simulator and demo data (package stack).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// App is the tool with its I/O; main fills it in.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer // responses (invoke, schedule) and the up banner
	Stderr io.Writer // logs: the functions', Lambda's lines, the tool's
	Getenv func(string) string
	Now    func() time.Time

	logOnce sync.Once
	log     io.Writer
}

// Exit codes.
const (
	ExitOK            = 0
	ExitFunctionError = 1 // the function returned an error, timed out or crashed
	ExitFailure       = 1 // the tool could not do what was asked
	ExitUsage         = 2
)

// errFunction means the function failed; its error document is already on
// stdout.
var errFunction = errors.New("the function returned an error")

// usageError is a command line mistake.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `local: the Docker-free sam local for this repository.

Usage:
  local invoke <LogicalId> [-e event.json|-] [flags]   run one event; response on stdout, logs on stderr
  local start-api [--port 3000] [flags]                 the template's HttpApi routes (payload 2.0)
  local start-lambda [--port 3001] [flags]              the Lambda Invoke API for the AWS CLI and SDKs
  local schedule <LogicalId> [--print-event] [flags]    fire the Schedule/ScheduleV2 event now (a state machine's: run it)
  local up [flags]                                      S3 + System B simulator + Kafka (+ event source mappings) + demo data + start-api + start-lambda
  local build [<LogicalId>...] [flags]                  build the bootstraps for this machine
  local dlq list [<LogicalId>] [--json] [flags]         the batches the Kafka event source mappings dead-lettered

Run "local <command> -h" for a command's flags. Everything binds to 127.0.0.1.
`

// Run runs one command line and returns the process exit code.
func (a *App) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.Stderr, usage)
		return ExitUsage
	}
	cmds := map[string]func(context.Context, []string) error{
		"invoke":       a.cmdInvoke,
		"start-api":    a.cmdStartAPI,
		"start-lambda": a.cmdStartLambda,
		"schedule":     a.cmdSchedule,
		"up":           a.cmdUp,
		"build":        a.cmdBuild,
		"dlq":          a.cmdDLQ,
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(a.Stdout, usage)
		return ExitOK
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(a.Stderr, "local: unknown command %q\n\n%s", name, usage)
		return ExitUsage
	}
	err := cmd(ctx, args[1:])
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(a.Stderr, "local %s: %s\n", name, ue.msg)
		return ExitUsage
	case errors.Is(err, errFunction):
		return ExitFunctionError
	}
	fmt.Fprintf(a.Stderr, "local %s: %v\n", name, err)
	return ExitFailure
}

// logger returns the shared log writer: stderr, one Write at a time.
func (a *App) logger() io.Writer {
	a.logOnce.Do(func() { a.log = &lockedWriter{w: a.Stderr} })
	return a.log
}

func (a *App) logf(format string, args ...any) {
	fmt.Fprintf(a.logger(), format+"\n", args...)
}

func (a *App) getenv(k string) string {
	if a.Getenv == nil {
		return ""
	}
	return a.Getenv(k)
}

func (a *App) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// readEvent reads -e: a file, "-" for stdin, "" for {}.
func (a *App) readEvent(path string) ([]byte, error) {
	var b []byte
	var err error
	switch path {
	case "":
		return []byte("{}"), nil
	case "-":
		if a.Stdin == nil {
			return nil, fmt.Errorf("no stdin")
		}
		b, err = io.ReadAll(a.Stdin)
	default:
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read the event: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return []byte("{}"), nil
	}
	return b, nil
}

// lockedWriter serializes writes, so log lines from several functions do not
// interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
