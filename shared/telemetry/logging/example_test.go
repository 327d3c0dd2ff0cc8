package logging_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/acme/unified-customer-service/shared/telemetry/logging"
)

// ctxKey stands for the Lambda context here; the functions read
// lambdacontext.FromContext(ctx).AwsRequestID instead.
type ctxKey struct{}

func Example() {
	requestID := func(ctx context.Context) string {
		id, _ := ctx.Value(ctxKey{}).(string)
		return id
	}
	clock := func() time.Time { return time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC) } // fixed for the example only
	log, err := logging.New(os.Stdout, "info", logging.WithRequestID(requestID), logging.WithClock(clock))
	if err != nil {
		fmt.Println(err)
		return
	}
	hasher := logging.NewEmailHasher([]byte("the LOG_HASH_KEY setting"))
	ctx := context.WithValue(context.Background(), ctxKey{}, "c6af9ac6-7b61-11e6-9a41-93e812345678")

	// The right way: a keyed hash of the address.
	log.InfoContext(ctx, "customer looked up", hasher.Attr("Ana.Lima@example.com"), "partial", false)
	// Mistakes the guard catches.
	log.WarnContext(ctx, "System B failed", "email", "ana.lima@example.com",
		"err", errors.New("get ana.lima@example.com: timeout"), "token", "abc123")
	// Output:
	// {"time":"2025-03-14T09:00:00Z","level":"INFO","msg":"customer looked up","emailHash":"f826a9e80213ea21","partial":false,"requestId":"c6af9ac6-7b61-11e6-9a41-93e812345678"}
	// {"time":"2025-03-14T09:00:00Z","level":"WARN","msg":"System B failed","email":"[REDACTED]","err":"get [email]: timeout","token":"[REDACTED]","requestId":"c6af9ac6-7b61-11e6-9a41-93e812345678"}
}

func ExampleParseLevel() {
	_, err := logging.ParseLevel("verbose")
	fmt.Println(err)
	// Output: logging: invalid LOG_LEVEL: "verbose", want one of debug, info, warn, error
}
