package load_test

import (
	"fmt"
	"time"

	"github.com/acme/unified-customer-service/cmd/loadgen/internal/load"
)

// A Histogram keeps latencies in fixed memory and answers percentiles
// within 1% (the exact p50 and p99 here are 500ms and 990ms; the max is
// exact).
func ExampleHistogram() {
	var h load.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	fmt.Println(h.Count(), h.Quantile(0.5).Round(time.Millisecond), h.Quantile(0.99).Round(time.Millisecond), h.Max())
	// Output: 1000 501ms 994ms 1s
}

// A Workload spreads lookups over the kinds of customer by the mix, the
// same way on every run.
func ExampleNewWorkload() {
	pools := load.Pools{
		load.Existing:    {"ada.lovelace@example.com"},
		load.Missing:     {"nobody@example.net"},
		load.Conflicting: {"grace.hopper@example.com"},
	}
	w, err := load.NewWorkload(load.Mix{3, 1, 1}, pools)
	if err != nil {
		fmt.Println(err)
		return
	}
	for n := range uint64(5) {
		fmt.Println(w.Pick(n).Kind)
	}
	// Output:
	// existing
	// missing
	// existing
	// conflicting
	// existing
}
