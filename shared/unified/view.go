package unified

import (
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// FreshnessView is merge.Freshness as the functions write it in JSON: null
// where a system was not read.
type FreshnessView struct {
	SystemA *time.Time `json:"systemA"`
	SystemB *time.Time `json:"systemB"`
	AsOf    *time.Time `json:"asOf"`
}

// ViewFreshness renders f for JSON.
func ViewFreshness(f merge.Freshness) FreshnessView {
	return FreshnessView{SystemA: TimePtr(f.SystemA), SystemB: TimePtr(f.SystemB), AsOf: TimePtr(f.AsOf)}
}

// TimePtr returns nil for the zero time and a UTC copy otherwise, so JSON
// shows null for "unknown".
func TimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
