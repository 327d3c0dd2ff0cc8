// Command capturea is the CaptureAFunction: when a new version of System
// A's snapshot lands in S3 (an "Object Created" event through EventBridge)
// it publishes the customers created, updated and deleted since the version
// it captured last to Kafka (customer.changes.system-a). This file is
// configuration and wiring only.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/capturea"
	"github.com/acme/unified-customer-service/shared/config"
)

func main() {
	a, err := app.New(context.Background(), app.Options{
		Function: "capturea", Need: config.Need{Report: true, Kafka: true}, Getenv: os.Getenv, Stdout: os.Stdout,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "init failed:", err)
		os.Exit(1)
	}
	c, err := a.CaptureA()
	if err != nil {
		fmt.Fprintln(os.Stderr, "init failed:", err)
		os.Exit(1)
	}
	h := &Handler{Capturer: c}
	lambda.Start(func(ctx context.Context, payload json.RawMessage) (capturea.Result, error) {
		defer a.Flush()
		return h.Handle(ctx, payload)
	})
}
