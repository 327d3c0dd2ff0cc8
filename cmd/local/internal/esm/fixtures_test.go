package esm

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/merge"
)

// TestEventFixtures checks the repository's Kafka event fixtures
// (events/kafka-*.json) are Kafka events as Lambda sends them and hold what
// the change contract says: a good change decodes, a poison record does
// not, with the kind the worker dead-letters.
func TestEventFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []error // per record in offset order: nil for a change that decodes
	}{
		{"kafka-system-b-change.json", []error{nil}},
		{"kafka-poison.json", []error{nil, changes.ErrSchema, merge.ErrBadData}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "events", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var ev events.KafkaEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatalf("not a KafkaEvent: %v", err)
			}
			if ev.EventSource != "aws:kafka" || ev.EventSourceARN == "" || ev.BootstrapServers == "" {
				t.Fatalf("event header %q %q %q", ev.EventSource, ev.EventSourceARN, ev.BootstrapServers)
			}
			var got []error
			for key, recs := range ev.Records {
				for _, r := range recs {
					if want := fmt.Sprintf("%s-%d", r.Topic, r.Partition); key != want {
						t.Fatalf("record under %q is of %s", key, want)
					}
					k, err1 := base64.StdEncoding.DecodeString(r.Key)
					v, err2 := base64.StdEncoding.DecodeString(r.Value)
					if err := errors.Join(err1, err2); err != nil {
						t.Fatalf("offset %d: %v", r.Offset, err)
					}
					var hs []changes.Header
					for _, h := range r.Headers {
						for name, val := range h {
							hs = append(hs, changes.Header{Key: name, Value: val})
						}
					}
					_, err := changes.Decode(k, v, hs)
					got = append(got, err)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d records, want %d", len(got), len(tt.want))
			}
			for i, want := range tt.want {
				if (want == nil) != (got[i] == nil) || (want != nil && !errors.Is(got[i], want)) {
					t.Errorf("record %d: Decode error %v, want %v", i, got[i], want)
				}
			}
		})
	}
}
