package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/syncworker"
)

func noEnv(string) string { return "" }

// TestCreateTopics: the topics are created with the partitions and
// replication asked for; a second run leaves them and succeeds; asking for
// more partitions than they have fails without changing them.
func TestCreateTopics(t *testing.T) {
	brokers := kafkatest.Broker(t, 1).ListenAddrs()
	addr := strings.Join(brokers, ",")
	tests := []struct {
		name       string
		args       []string
		code       int
		out        string
		partitions int
	}{
		{"create", []string{"-brokers", addr, "-partitions", "6", "-replication", "1", "-min-insync", "1"}, 0, "created, 6 partitions", 6},
		{"again", []string{"-brokers", addr, "-partitions", "6", "-replication", "1", "-min-insync", "1"}, 0, "exists, 6 partitions", 6},
		{"more partitions", []string{"-brokers", addr, "-partitions", "8", "-replication", "1", "-min-insync", "0"}, 1, "exists, 6 partitions", 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tt.args, noEnv, &out, &errb); code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out.String(), errb.String())
			}
			for _, topic := range []string{changes.TopicSystemA, changes.TopicSystemB, syncworker.TopicUnified, syncworker.TopicConflicts, syncworker.TopicDeadLetter} {
				if !strings.Contains(out.String(), topic+": "+tt.out) {
					t.Errorf("output lacks %q for %s:\n%s", tt.out, topic, out.String())
				}
			}
			if p := cleanupPolicy(t, brokers, syncworker.TopicUnified); p != "compact" {
				t.Errorf("%s has cleanup.policy %q, want compact", syncworker.TopicUnified, p)
			}
			if n := partitions(t, brokers, changes.TopicSystemA); n != tt.partitions {
				t.Errorf("%s has %d partitions, want %d", changes.TopicSystemA, n, tt.partitions)
			}
		})
	}
}

// partitions returns topic's partition count, read with a plain client.
func partitions(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	adm := admin(t, brokers)
	defer adm.Close()
	d, err := adm.ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return len(d[topic].Partitions)
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no brokers", nil, "-brokers is required"},
		{"bad auth", []string{"-brokers", "127.0.0.1:1", "-auth", "kerberos"}, "-auth"},
		{"no partitions", []string{"-brokers", "127.0.0.1:1", "-partitions", "0"}, "-partitions"},
		{"bad replication", []string{"-brokers", "127.0.0.1:1", "-replication", "0"}, "-replication"},
		{"min-insync above replication", []string{"-brokers", "127.0.0.1:1", "-replication", "2", "-min-insync", "3"}, "-min-insync"},
		{"scram without a password", []string{"-brokers", "127.0.0.1:1", "-auth", "scram-sha-512", "-user", "u"}, "KAFKA_SASL_PASSWORD"},
		{"an argument", []string{"-brokers", "127.0.0.1:1", "extra"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tt.args, noEnv, &out, &errb); code != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tt.want)
			}
		})
	}
}

// cleanupPolicy returns topic's cleanup.policy, read with a plain client.
func cleanupPolicy(t *testing.T, brokers []string, topic string) string {
	t.Helper()
	adm := admin(t, brokers)
	defer adm.Close()
	rcs, err := adm.DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

// admin returns a plain admin client.
func admin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	return kadm.NewClient(cl)
}
