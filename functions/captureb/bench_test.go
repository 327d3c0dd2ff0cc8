package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/report"
)

// BenchmarkPoll: one poll that finds 10,000 changed customers of 20,000
// (API v1.1) and publishes them to the embedded broker, acks=all.
func BenchmarkPoll(b *testing.B) {
	const n, changed = 20000, 10000
	recs := make([]*merge.Record, n)
	for i := range recs {
		lu := t0.Add(-time.Hour)
		if i%2 == 0 {
			lu = t0.Add(-time.Duration(i%60) * time.Second)
		}
		recs[i] = customer(fmt.Sprintf("user%06d@example.com", i), "Leeds", lu)
	}
	r := newRig(b)
	fb := &fakeB{}
	fb.set(recs...)
	client := fb.serve(b)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		state := &report.FileStore{Dir: b.TempDir()}
		writeState(b, state, State{Watermark: t0.Add(-time.Minute)})
		p := r.poller(client, state)
		p.Overlap = time.Minute
		b.StartTimer()
		sum, err := p.Poll(context.Background())
		if err != nil || sum.Published != changed {
			b.Fatalf("%+v, %v", sum, err)
		}
	}
	b.ReportMetric(float64(changed*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkWebhook: one signed delivery verified, decoded and published
// (acknowledged by the broker) per operation.
func BenchmarkWebhook(b *testing.B) {
	r := newRig(b)
	h := r.webhook()
	req := signedDelivery(b, ChangeUpdated, customer("ada@example.com", "Leeds", t0), t0, testSecret)
	b.ResetTimer()
	for range b.N {
		resp, err := h.Handle(context.Background(), req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%d %s %v", resp.StatusCode, resp.Body, err)
		}
	}
}
