// Command loadgen is the bounded load run of the Unified Customer Service
// (`make load`): concurrent clients look up existing, missing and
// conflicting customers of the demo data through start-api, first with
// System B healthy (the rule: zero 5xx), then with the System B simulator
// failing 20% of its calls with 503 (the rule: every answer 200, partial
// where needed, or 404 for a missing customer, or 503 naming System B for a
// missing customer whose System B read failed: unknown, not absent; no
// other 5xx). Each phase is
// bounded by -d and -max-requests; the report gives requests, rate, status
// counts, partial answers and p50/p90/p99/max latency per phase, and the
// exit status is non-zero when a phase breaks its rule.
//
//	go run ./cmd/loadgen -stack -c 32 -d 30s   # starts the whole local stack itself
//	go run ./cmd/loadgen                        # against a running `make run`
//
// Only loopback targets are allowed unless -allow-remote is given.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
