// Command gendata writes a deterministic demo/test data set: a System A
// snapshot (schema v1), a System B dataset (JSON Lines, for the System B
// simulator) and the ground truth a reconciliation must find.
//
//	go run ./cmd/gendata -n 1000 -seed 1 -out DIR [-showcase] [-mix conflictBNewer=0.05,...]
//
// See shared/demodata for what is generated.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
