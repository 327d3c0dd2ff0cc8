package kafka_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
)

func event(t *testing.T, src merge.Source, email, city string, at time.Time) changes.Event {
	t.Helper()
	r := &merge.Record{LastUpdated: at}
	r.Values[merge.FieldEmail] = email
	r.Values[merge.FieldCity] = city
	ev, err := changes.New(src, nil, r, "v1", time.Time{}, at)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestPublishKeyedAndOrdered: every change of one customer lands in one
// partition, in the order published, with the contract's headers, and
// decodes back to the same event.
func TestPublishKeyedAndOrdered(t *testing.T) {
	brokers := kafkatest.Broker(t, 3, changes.TopicSystemA, changes.TopicSystemB).ListenAddrs()
	p, err := kafka.NewProducer(kafka.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var evs []changes.Event
	for i, city := range []string{"Leeds", "York", "Bath", "Ely"} {
		evs = append(evs, event(t, merge.SystemB, "ada@example.com", city, t0.Add(time.Duration(i)*time.Second)),
			event(t, merge.SystemB, "grace@example.com", city, t0.Add(time.Duration(i)*time.Second)))
	}
	if err := p.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.Consume(t, brokers, changes.TopicSystemB, len(evs))
	partition := map[string]int32{}
	var order = map[string][]string{}
	for _, r := range recs {
		k := string(r.Key)
		if p, ok := partition[k]; ok && p != r.Partition {
			t.Errorf("%s in partitions %d and %d", k, p, r.Partition)
		}
		partition[k] = r.Partition
		ev, err := changes.Decode(r.Key, r.Value, kafka.Headers(r))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		order[k] = append(order[k], ev.After.Values[merge.FieldCity])
	}
	for _, k := range []string{"ada@example.com", "grace@example.com"} {
		if got := order[k]; len(got) != 4 || got[0] != "Leeds" || got[3] != "Ely" {
			t.Errorf("%s: cities in order %v, want Leeds York Bath Ely", k, got)
		}
	}
}

// TestPublishBrokerDown: a broker that cannot be reached is an error of
// kind unavailable when the context ends, not a hang.
func TestPublishBrokerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	p, err := kafka.NewProducer(kafka.Config{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = p.Publish(ctx, event(t, merge.SystemA, "ada@example.com", "Leeds", time.Now()))
	if !errors.Is(err, merge.ErrUnavailable) {
		t.Fatalf("err = %v, want kind unavailable", err)
	}
}

func TestConfigRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  kafka.Config
	}{
		{"no brokers", kafka.Config{}},
		{"iam without credentials", kafka.Config{Brokers: []string{"b:9098"}, Auth: kafka.AuthIAM}},
		{"scram without credentials", kafka.Config{Brokers: []string{"b:9096"}, Auth: kafka.AuthSCRAMSHA512}},
		{"unknown auth", kafka.Config{Brokers: []string{"b:9092"}, Auth: "kerberos"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := kafka.NewProducer(tt.cfg); !errors.Is(err, merge.ErrInvalid) {
				t.Errorf("err = %v, want kind invalid", err)
			}
		})
	}
}

func TestParseAuth(t *testing.T) {
	tests := []struct {
		in      string
		want    kafka.Auth
		wantErr bool
	}{
		{"", kafka.AuthNone, false}, {"none", kafka.AuthNone, false}, {"iam", kafka.AuthIAM, false},
		{" scram-sha-512 ", kafka.AuthSCRAMSHA512, false}, {"IAM", "", true}, {"plain", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := kafka.ParseAuth(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseAuth(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
