// Command testfn is the local tool's test function: one bootstrap whose
// behaviour each event (and, at init, TESTFN_INIT) chooses.
//
// Event fields (for an API Gateway event, those of its JSON body): "echo" (returned as the response; the default is the whole
// event), "error" (returned as an error), "sleepMs" (sleep first), "panic",
// "exit" (os.Exit with that code), "log" (printed to stdout and stderr),
// "env" (names whose values are returned), "http" (an API Gateway response to
// return as is), "allocMB" (touch that many MB first).
// A Kafka event (eventSource "aws:kafka" or "SelfManagedKafka") is read
// record by record: a record value's "error" fails the invocation, and
// "failItem" reports the record as a batch item failure: "object" with
// the {"partition", "offset"} identifier Lambda reads, "string" with a
// "<topic>-<partition>-<offset>" string it cannot.
// TESTFN_INIT=exit makes the process exit before it asks for an event,
// TESTFN_INIT=sleep makes it sleep 60 s first.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Echo    json.RawMessage `json:"echo"`
	Error   string          `json:"error"`
	SleepMS int             `json:"sleepMs"`
	Panic   bool            `json:"panic"`
	Exit    *int            `json:"exit"`
	Log     string          `json:"log"`
	Env     []string        `json:"env"`
	HTTP    json.RawMessage `json:"http"`
	AllocMB int             `json:"allocMB"`
}

var started = time.Now()

// apiEvent is the part of an API Gateway event testfn looks at: a JSON body
// carries the directives, so HTTP tests can steer the function.
type apiEvent struct {
	RouteKey        string `json:"routeKey"`
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var kafka events.KafkaEvent
	if json.Unmarshal(raw, &kafka) == nil && (kafka.EventSource == "aws:kafka" || kafka.EventSource == "SelfManagedKafka") {
		return handleKafka(kafka)
	}
	var api apiEvent
	if json.Unmarshal(raw, &api) == nil && api.RouteKey != "" && !api.IsBase64Encoded {
		var probe map[string]json.RawMessage
		if json.Unmarshal([]byte(api.Body), &probe) == nil && probe != nil {
			raw = json.RawMessage(api.Body)
		}
	}
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return raw, nil //nolint:nilerr // not an object: echo it
	}
	if ev.Log != "" {
		fmt.Println("stdout:", ev.Log)
		fmt.Fprintln(os.Stderr, "stderr:", ev.Log)
	}
	if ev.AllocMB > 0 {
		b := make([]byte, ev.AllocMB<<20)
		for i := range b {
			b[i] = byte(i)
		}
		defer fmt.Println("touched", len(b))
	}
	if ev.SleepMS > 0 {
		select {
		case <-time.After(time.Duration(ev.SleepMS) * time.Millisecond):
		case <-ctx.Done():
			time.Sleep(time.Hour) // a stuck function, as Lambda's timeout must handle
		}
	}
	if ev.Panic {
		panic("testfn was asked to panic")
	}
	if ev.Exit != nil {
		os.Exit(*ev.Exit)
	}
	if ev.Error != "" {
		return nil, errors.New(ev.Error)
	}
	if len(ev.HTTP) > 0 {
		return ev.HTTP, nil
	}
	if len(ev.Env) > 0 {
		out := map[string]string{}
		for _, k := range ev.Env {
			out[k] = os.Getenv(k)
		}
		lc, _ := lambdacontext.FromContext(ctx)
		if lc != nil {
			out["requestId"] = lc.AwsRequestID
			out["arn"] = lc.InvokedFunctionArn
		}
		if dl, ok := ctx.Deadline(); ok {
			out["deadlineInMs"] = fmt.Sprint(time.Until(dl).Milliseconds())
		}
		out["pid"] = fmt.Sprint(os.Getpid())
		out["uptimeMs"] = fmt.Sprint(time.Since(started).Milliseconds())
		return out, nil
	}
	if len(ev.Echo) > 0 {
		return ev.Echo, nil
	}
	return raw, nil
}

// kafkaDirectives are what a Kafka record's value may ask of testfn.
type kafkaDirectives struct {
	Error    string `json:"error"`
	FailItem string `json:"failItem"`
}

func handleKafka(ev events.KafkaEvent) (any, error) {
	var failures []map[string]any
	for _, key := range slices.Sorted(maps.Keys(ev.Records)) {
		for _, r := range ev.Records[key] {
			value, err := base64.StdEncoding.DecodeString(r.Value)
			if err != nil {
				return nil, fmt.Errorf("record %s-%d: value: %w", key, r.Offset, err)
			}
			var d kafkaDirectives
			if json.Unmarshal(value, &d) != nil {
				continue
			}
			if d.Error != "" {
				return nil, errors.New(d.Error)
			}
			switch d.FailItem {
			case "string":
				failures = append(failures, map[string]any{"itemIdentifier": fmt.Sprintf("%s-%d", key, r.Offset)})
			case "object":
				failures = append(failures, map[string]any{"itemIdentifier": map[string]any{"partition": key, "offset": r.Offset}})
			}
		}
	}
	return map[string]any{"batchItemFailures": failures}, nil
}

func main() {
	switch os.Getenv("TESTFN_INIT") {
	case "exit":
		fmt.Fprintln(os.Stderr, "testfn: failing at init as asked")
		os.Exit(3)
	case "sleep":
		time.Sleep(time.Minute)
	}
	lambda.Start(handle)
}
