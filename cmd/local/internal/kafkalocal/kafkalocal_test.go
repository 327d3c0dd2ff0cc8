package kafkalocal_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/unified-customer-service/cmd/local/internal/kafkalocal"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
)

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:9092", "localhost", "127.0.0.1:x"} {
		t.Run(addr, func(t *testing.T) {
			if b, err := kafkalocal.Start(kafkalocal.Config{Addr: addr}); err == nil {
				b.Close()
				t.Fatalf("Start(%q) succeeded, want an error", addr)
			}
		})
	}
}

// TestTopicsSurviveARestart: the broker creates the service's topics, and a
// record written before a restart on the same directory is still there.
func TestTopicsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	b, err := kafkalocal.Start(kafkalocal.Config{Addr: "127.0.0.1:0", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range kafkalocal.Topics() {
		if d, ok := topics[want]; !ok || len(d.Partitions) != kafkalocal.DefaultPartitions {
			t.Errorf("topic %s: present %v, partitions %d; want %d", want, ok, len(d.Partitions), kafkalocal.DefaultPartitions)
		}
	}
	topic := kafkalocal.Topics()[0]
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	addr := b.Addr()
	b.Close()

	b, err = kafkalocal.Start(kafkalocal.Config{Addr: addr, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if recs := kafkatest.Consume(t, []string{b.Addr()}, topic, 1); len(recs) != 1 || string(recs[0].Value) != "v" {
		t.Fatalf("after a restart: %d records, want the one written before", len(recs))
	}
}
