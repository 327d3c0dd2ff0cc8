package emf_test

import (
	"fmt"
	"os"
	"time"

	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

// One invocation of the lookup function: count what happened, record one
// System B latency sample per call, then flush once at the end.
func Example() {
	now := func() time.Time { return time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC) }
	m, err := emf.New(os.Stdout, "UnifiedCustomerService", map[string]string{"Function": "lookup"}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	m.Set("requestId", "c6af9ac6-7b61-11e6-9a41-93e812345678")
	m.Count(emf.SyncConflicts, 2)
	m.Count(emf.SyncPartialResults, 0)
	m.Observe(emf.SyncLag, 5400, emf.Seconds)
	m.ObserveDuration(emf.SystemBLatency, 38*time.Millisecond)
	m.ObserveDuration(emf.SystemBLatency, 41*time.Millisecond)
	if err := m.Flush(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"Function":"lookup","_aws":{"Timestamp":1741942800000,"CloudWatchMetrics":[{"Namespace":"UnifiedCustomerService","Dimensions":[["Function"]],"Metrics":[{"Name":"sync.conflicts.total","Unit":"Count"},{"Name":"sync.lag.seconds","Unit":"Seconds"},{"Name":"sync.partial_results.total","Unit":"Count"},{"Name":"system_b.latency","Unit":"Milliseconds"}]}]},"requestId":"c6af9ac6-7b61-11e6-9a41-93e812345678","sync.conflicts.total":2,"sync.lag.seconds":5400,"sync.partial_results.total":0,"system_b.latency":[38,41]}
}
