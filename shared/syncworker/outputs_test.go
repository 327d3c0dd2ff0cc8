package syncworker_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/syncworker"
)

// TestOutputsShape keeps the values' members as docs/contracts.md
// (section 10) lists them.
func TestOutputsShape(t *testing.T) {
	a := customer("ann@example.com", "Ann", "gold", t0.Add(-time.Hour))
	b := customer("ann@example.com", "Anne", "gold", t0)
	ev, err := changes.New(merge.SystemB, a, b, "poll:x", time.Time{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	res := merge.Merge(a, b, merge.DefaultRules())
	msgs, err := syncworker.Outputs(ev, &res, merge.NewFreshness(t0, t0))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		value []byte
		want  []string
	}{
		{"unified", msgs[0].Value, []string{"conflicts", "customer", "freshness", "id", "key", "lastUpdated", "presence", "sourceEventId", "sources"}},
		{"conflicts", msgs[1].Value, []string{"conflicts", "id", "inSync", "key", "presence", "sourceEventId"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(tt.value, &m); err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, tt.want) {
				t.Errorf("members %v, want %v", got, tt.want)
			}
		})
	}
	gone, err := syncworker.Outputs(ev, nil, merge.Freshness{})
	if err != nil {
		t.Fatal(err)
	}
	if gone[0].Value != nil || gone[0].Topic != syncworker.TopicUnified {
		t.Errorf("in neither system: unified value %s, want a tombstone", gone[0].Value)
	}
}
