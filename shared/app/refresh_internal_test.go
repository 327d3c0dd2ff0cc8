package app

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/systema"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

func TestCountRefresh(t *testing.T) {
	older := fmt.Errorf("systema: snapshot s3://b/k etag=x exported at ...: %w", systema.ErrOlderSnapshot)
	for _, tc := range []struct {
		name string
		res  systema.RefreshResult
		want string // the metric counted; "" for none
	}{
		{"older snapshot refused", systema.RefreshResult{Err: older, Kept: true}, emf.SnapshotRejectedOlder},
		{"failed, last good kept", systema.RefreshResult{Err: errors.New("head: 503"), Kept: true}, emf.SnapshotRefreshFailures},
		{"failed with nothing served", systema.RefreshResult{Err: errors.New("head: 503")}, ""},
		{"loaded", systema.RefreshResult{Loaded: true}, ""},
		{"unchanged", systema.RefreshResult{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			m, err := emf.New(&out, "", map[string]string{"Function": "lookup"}, func() time.Time { return time.Unix(0, 0) })
			if err != nil {
				t.Fatal(err)
			}
			countRefresh(m, tc.res)
			if err := m.Flush(); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{emf.SnapshotRejectedOlder, emf.SnapshotRefreshFailures} {
				if got := strings.Contains(out.String(), `"`+name+`"`); got != (name == tc.want) {
					t.Errorf("%s counted = %v, want %v:\n%s", name, got, name == tc.want, out.String())
				}
			}
		})
	}
}
