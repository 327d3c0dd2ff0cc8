package deadline_test

import (
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/deadline"
)

func TestStop(t *testing.T) {
	now := time.Date(2026, 12, 2, 3, 30, 0, 0, time.UTC)
	tests := []struct {
		name    string
		left    time.Duration
		reserve time.Duration
		want    time.Duration // stop, after now
	}{
		{"a 900 s function keeps 30 s", 900 * time.Second, 0, 870 * time.Second},
		{"a tenth of 100 s", 100 * time.Second, 0, 90 * time.Second},
		{"at least a second", 3 * time.Second, 0, 2 * time.Second},
		{"a set reserve wins", 900 * time.Second, 5 * time.Second, 895 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deadline.Stop(now.Add(tt.left), now, tt.reserve).Sub(now); got != tt.want {
				t.Errorf("Stop = now+%s, want now+%s", got, tt.want)
			}
		})
	}
}
