package app_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
)

// TestKafkaWiring: a function that needs Kafka gets a producer for the
// configured brokers, and one that does not, none.
func TestKafkaWiring(t *testing.T) {
	c := kafkatest.Broker(t, 1, changes.TopicSystemB)
	snap, _ := writeSnapshot(t, 10)
	env := map[string]string{
		config.EnvSnapshotURI: "file://" + snap, config.EnvSystemBURL: "http://127.0.0.1:1", config.EnvSystemBToken: "tok",
		config.EnvKafkaBootstrapServers: strings.Join(c.ListenAddrs(), ","),
	}
	newApp := func(need config.Need) *app.App {
		t.Helper()
		a, err := app.New(context.Background(), app.Options{Function: "capture", Need: need, Getenv: func(k string) string { return env[k] }, Stdout: &bytes.Buffer{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Store.Close() })
		return a
	}
	if a := newApp(config.Need{}); a.Producer != nil {
		t.Errorf("a function that does not need Kafka got a producer")
	}
	a := newApp(config.Need{Kafka: true})
	defer a.Producer.Close()
	r := &merge.Record{LastUpdated: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	r.Values[merge.FieldEmail] = "ada@example.com"
	ev, err := changes.New(merge.SystemB, nil, r, "webhook:1", time.Time{}, r.LastUpdated)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Producer.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.Consume(t, c.ListenAddrs(), changes.TopicSystemB, 1)
	if len(recs) != 1 || string(recs[0].Key) != "ada@example.com" {
		t.Fatalf("got %d records, want the one event keyed by its join key", len(recs))
	}
}

// TestWebhookSecretWiring: a function that needs the webhook secret reads
// the setting; one that does not gets no reader.
func TestWebhookSecretWiring(t *testing.T) {
	snap, _ := writeSnapshot(t, 10)
	env := map[string]string{
		config.EnvSnapshotURI: "file://" + snap, config.EnvSystemBURL: "http://127.0.0.1:1", config.EnvSystemBToken: "tok",
		config.EnvSystemBWebhookSecret: "whsec-current,whsec-previous",
	}
	for _, need := range []bool{false, true} {
		a, err := app.New(context.Background(), app.Options{Function: "captureb-webhook", Need: config.Need{Webhook: need},
			Getenv: func(k string) string { return env[k] }, Stdout: &bytes.Buffer{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Store.Close() })
		if !need {
			if a.WebhookSecret != nil {
				t.Error("a function that does not need the webhook secret got a reader")
			}
			continue
		}
		if got, err := a.WebhookSecret(context.Background()); err != nil || got != "whsec-current,whsec-previous" {
			t.Errorf("WebhookSecret = %q, %v", got, err)
		}
	}
}
