// Command syncworker is the SyncWorkerFunction: the consumer of
// customer.changes.system-a and customer.changes.system-b (an MSK or
// self-managed Kafka event source mapping) that keeps customer.unified and
// customer.conflicts current (shared/syncworker). This file is
// configuration and wiring only.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/syncworker"
)

func main() {
	a, err := app.New(context.Background(), app.Options{
		Function: "syncworker", Need: config.Need{Kafka: true, SyncWorker: true}, Getenv: os.Getenv, Stdout: os.Stdout,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "init failed:", err)
		os.Exit(1)
	}
	// The write-back WRITE_BACK asks for (none by default).
	w, err := a.SyncWorker(a.WriteBack())
	if err != nil {
		fmt.Fprintln(os.Stderr, "init failed:", err)
		os.Exit(1)
	}
	h := &Handler{Worker: w, Log: a.Log}
	lambda.Start(func(ctx context.Context, ev events.KafkaEvent) (syncworker.BatchResponse, error) {
		defer a.Flush()
		return h.Handle(ctx, ev)
	})
}
