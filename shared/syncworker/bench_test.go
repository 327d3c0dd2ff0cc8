package syncworker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/syncworker"
)

// BenchmarkProcess measures events per second through the worker in one
// process: batches of 100 change records (both topics, 10 partitions),
// each a distinct customer held by both systems with one conflict, read
// through unified.Reader from in-memory systems, deduplicated in the
// SQLite file store and published (acks=all) to an embedded broker
// (kfake, in the same process) - write-back off. The out=discard variants
// drop the outputs instead, to show the worker's and the store's share.
func BenchmarkProcess(b *testing.B) {
	for _, out := range []string{"kfake", "discard"} {
		for _, conc := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("out=%s/concurrency=%d", out, conc), func(b *testing.B) { benchProcess(b, out, conc) })
		}
	}
}

// discard is a Publisher that drops what it is given.
type discard struct{}

func (discard) Send(context.Context, ...kafka.Message) error { return nil }

func benchProcess(b *testing.B, out string, conc int) {
	e := newEnv(b)
	if out == "discard" {
		e.w.Out = discard{}
	}
	e.w.WriteBack = nil
	e.w.Metrics = nil
	e.w.Concurrency = conc
	const batch = 100
	recs := make([]syncworker.Record, 0, b.N)
	for i := range b.N {
		email := fmt.Sprintf("c%07d@example.com", i)
		e.sys.set(merge.SystemA, customer(email, "Ann", "gold", t0.Add(-time.Hour)))
		r := customer(email, "Anne", "gold", t0)
		e.sys.set(merge.SystemB, r)
		src := merge.SystemB
		if i%2 == 0 {
			src = merge.SystemA
		}
		recs = append(recs, change(b, src, nil, r, int32(i%5), int64(i)))
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(recs); i += batch {
		end := min(i+batch, len(recs))
		if fs := e.w.Process(context.Background(), recs[i:end]); len(fs) > 0 {
			b.Fatalf("failure: %v", fs[0].Err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
