//go:build noxray

package tracing

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestNoop(t *testing.T) {
	ctx := context.Background()
	got, end := Start(ctx, SpanSQLiteQuery)
	end(nil)
	if got != ctx || Configure() != nil {
		t.Errorf("Start or Configure is not a no-op")
	}
	in := &http.Client{Timeout: 5}
	if out := HTTPClient(in); out == in || out.Timeout != 5 || out.Transport != nil {
		t.Errorf("HTTPClient = %+v", out)
	}
	var cfg aws.Config
	InstrumentAWS(&cfg)
	if len(cfg.APIOptions) != 0 {
		t.Errorf("InstrumentAWS added options in a noxray build")
	}
}
