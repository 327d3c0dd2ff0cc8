// Command lookup is the LookupFunction: GET /customer/{email} on an API
// Gateway HTTP API (payload format 2.0). It reads System A and System B
// concurrently and answers with the unified customer, its provenance and
// its conflicts. This file is configuration and wiring only.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/acme/unified-customer-service/shared/app"
)

func main() {
	a, err := app.New(context.Background(), app.Options{Function: "lookup", Getenv: os.Getenv, Stdout: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "init failed:", err)
		os.Exit(1)
	}
	h := &Handler{Reader: a.Reader(), Rules: a.Config.Rules, Log: a.Log, Metrics: a.Metrics, EmailAttr: a.EmailAttr}
	lambda.Start(func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		defer a.Flush()
		return h.Handle(ctx, req)
	})
}
