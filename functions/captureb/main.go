// Command captureb is System B's change capture, one binary behind two
// Lambda functions that CAPTURE_B_MODE tells apart:
//
//   - "webhook" (CaptureBWebhookFunction): POST /webhooks/system-b on the
//     HTTP API, System B's signed change notifications (Webhook);
//   - "poll" (CaptureBPollFunction): on an EventBridge Scheduler schedule,
//     the changes since the stored watermark (Poller).
//
// Both publish to customer.changes.system-b through the same event
// builder, so one change seen by both has one event id. They are two
// functions because their triggers, timeouts, concurrency, permissions and
// failure handling differ (a synchronous HTTP answer vs. an asynchronous
// invocation with retries and a DLQ); one package keeps the event building
// in one place. This file is configuration and wiring only.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
)

// EnvMode selects the function: ModeWebhook or ModePoll.
const EnvMode = "CAPTURE_B_MODE"

// The modes.
const (
	ModeWebhook = "webhook"
	ModePoll    = "poll"
)

func main() {
	mode := os.Getenv(EnvMode)
	need := config.Need{Kafka: true}
	switch mode {
	case ModeWebhook:
		need.Webhook = true
	case ModePoll:
		need.Report = true
	default:
		fmt.Fprintf(os.Stderr, "init failed: %s must be %q or %q, got %q\n", EnvMode, ModeWebhook, ModePoll, mode)
		os.Exit(1)
	}
	a, err := app.New(context.Background(), app.Options{Function: "captureb-" + mode, Need: need, Getenv: os.Getenv, Stdout: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "init failed:", err)
		os.Exit(1)
	}
	if mode == ModeWebhook {
		h := &Webhook{Publisher: a.Producer, Secret: a.WebhookSecret, Now: time.Now, Log: a.Log, Metrics: a.Metrics, EmailAttr: a.EmailAttr}
		lambda.Start(func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			defer a.Flush()
			return h.Handle(ctx, req)
		})
		return
	}
	p := &Poller{SystemB: a.Client, Publisher: a.Producer, State: a.Reports, Now: time.Now, Log: a.Log, Metrics: a.Metrics}
	lambda.Start(func(ctx context.Context, _ json.RawMessage) (Summary, error) {
		defer a.Flush()
		return p.Poll(ctx)
	})
}
