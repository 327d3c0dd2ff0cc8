// Package kafkalocal runs the local loop's Kafka broker: franz-go's kfake, an
// in-process broker that speaks the real Kafka wire protocol, so the
// functions' franz-go clients and independent clients such as kcat talk to
// it as they would to MSK. It listens on 127.0.0.1 only, creates the
// service's topics, and keeps its log in a directory so topics survive a
// restart of `local up`.
package kafkalocal

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/syncworker"
	"github.com/acme/unified-customer-service/shared/writeback"
)

// DefaultAddr is where `local up` starts the broker.
const DefaultAddr = "127.0.0.1:9092"

// DefaultPartitions is the partition count of the topics it creates.
const DefaultPartitions = 3

// Topics are the topics the broker creates at start.
func Topics() []string {
	return []string{changes.TopicSystemA, changes.TopicSystemB, syncworker.TopicUnified, syncworker.TopicConflicts, syncworker.TopicDeadLetter, writeback.TopicCorrections}
}

// Config configures Start.
type Config struct {
	Addr       string   // host:port on loopback; DefaultAddr when empty, port 0 for a free one
	Dir        string   // the broker's data; in memory when empty
	Topics     []string // created at start; Topics() when nil
	Partitions int      // DefaultPartitions when zero
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	addr string
}

// Start starts a broker.
func Start(cfg Config) (*Broker, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("kafkalocal: address %q: %w", cfg.Addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("kafkalocal: address %q: the embedded broker listens on loopback only", cfg.Addr)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("kafkalocal: address %q: bad port", cfg.Addr)
	}
	if cfg.Topics == nil {
		cfg.Topics = Topics()
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, cfg.Addr) }),
		kfake.SeedTopics(int32(cfg.Partitions), cfg.Topics...),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("kafkalocal: data directory: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.Dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkalocal: start on %s: %w", cfg.Addr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, errors.New("kafkalocal: the broker did not report its address")
	}
	return &Broker{c: c, addr: addrs[0]}, nil
}

// Addr is the bootstrap address (host:port) clients use.
func (b *Broker) Addr() string { return b.addr }

// Cluster is the underlying kfake cluster, for fault injection in tests.
func (b *Broker) Cluster() *kfake.Cluster { return b.c }

// Close stops the broker (its data stays in Dir).
func (b *Broker) Close() { b.c.Close() }
