//go:build noxray

package tracing

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Configure does nothing in a noxray build.
func Configure() error { return nil }

// Start returns ctx and an end that does nothing in a noxray build.
func Start(ctx context.Context, name string) (_ context.Context, end func(err error)) {
	return ctx, func(error) {}
}

// HTTPClient returns a copy of c (http.DefaultClient's settings when nil)
// in a noxray build.
func HTTPClient(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	out := *c
	return &out
}

// InstrumentAWS does nothing in a noxray build.
func InstrumentAWS(cfg *aws.Config) {}
