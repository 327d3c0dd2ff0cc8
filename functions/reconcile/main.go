// Command reconcile is the ReconcileFunction: on the EventBridge schedule it
// joins all of System A's snapshot with all of System B and writes a report
// under REPORT_URI. This file is configuration and wiring only.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/reconcile"
)

func main() {
	a, err := app.New(context.Background(), app.Options{
		Function: "reconcile", Need: config.Need{Report: true}, Getenv: os.Getenv, Stdout: os.Stdout,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "init failed:", err)
		os.Exit(1)
	}
	h := &Handler{Runner: a.Reconciler()}
	lambda.Start(func(ctx context.Context, payload json.RawMessage) (reconcile.Summary, error) {
		defer a.Flush()
		return h.Handle(ctx, payload)
	})
}
