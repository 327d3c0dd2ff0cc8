// Command local is the Docker-free `sam local` of this repository: it reads
// template.yaml, builds the functions for this machine with the Makefile,
// runs them on a Lambda Runtime API it serves, and offers invoke, start-api,
// start-lambda, schedule and up (the whole stack: an embedded S3 server, a
// System B simulator and demo data). See `go run ./cmd/local help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/acme/unified-customer-service/cmd/local/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second Ctrl-C during shutdown kills at once
	app := &cli.App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	code := app.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
