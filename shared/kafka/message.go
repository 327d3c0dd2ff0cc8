package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/unified-customer-service/shared/merge"
)

// Message is one record of any topic the service writes besides the change
// topics (the sync worker's customer.unified, customer.conflicts and its
// dead-letter topic). A nil Value is a tombstone.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers [][2]string
}

// Send writes msgs, in order for any one key and topic, and waits for
// every acknowledgement (acks=all, idempotent). A message the broker did
// not take is an error of kind merge.ErrUnavailable.
func (p *Producer) Send(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		r := &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value}
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		recs[i] = r
	}
	return p.produce(ctx, "send", "messages", recs)
}

// produce writes recs and waits for every acknowledgement; op and what
// name the call and the records in its error.
func (p *Producer) produce(ctx context.Context, op, what string, recs []*kgo.Record) error {
	var failed int
	var first error
	for _, res := range p.cl.ProduceSync(ctx, recs...) {
		if res.Err != nil {
			failed++
			if first == nil {
				first = res.Err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("kafka: %s: %w: %d of %d %s not acknowledged: %w", op, merge.ErrUnavailable, failed, len(recs), what, first)
	}
	return nil
}
