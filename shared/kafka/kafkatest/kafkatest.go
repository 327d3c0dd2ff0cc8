// Package kafkatest gives tests a real Kafka broker and a plain consumer:
// franz-go's kfake (the Kafka wire protocol, in process) on a free
// 127.0.0.1 port, and a reader that uses the client directly, not the
// service's own code path.
package kafkatest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker starts a one-node broker with topics (partitions each) and
// returns it; it stops when the test ends.
func Broker(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }),
		kfake.SeedTopics(partitions, topics...),
	)
	if err != nil {
		t.Fatalf("kafkatest: start broker: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// BrokerAt starts a one-node broker listening on addr (a 127.0.0.1
// address, FreeAddr's), so a test can stop it and start another at the
// same address: the broker down, then back. It stops when the test ends or
// on Close.
func BrokerAt(t testing.TB, addr string, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }),
		kfake.SeedTopics(partitions, topics...),
	)
	if err != nil {
		t.Fatalf("kafkatest: start broker on %s: %v", addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

// FreeAddr returns a 127.0.0.1 address nothing listens on: a broker that
// cannot be reached, until BrokerAt starts one there.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Consume reads at least n records of topic from the start, within 30 s.
func Consume(t testing.TB, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kafkatest: consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kafkatest: after %d of %d records of %s: %v", len(out), n, topic, err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// Count returns how many records topic holds (the sum of its partitions'
// end offsets): a test that must see nothing more published reads it
// before and after.
func Count(t testing.TB, brokers []string, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafkatest: client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("kafkatest: end offsets of %s: %v", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
