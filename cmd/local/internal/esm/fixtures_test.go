package esm

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/changes"
)

// TestEventFixtures checks the repository's Kafka event fixtures
// (events/kafka-*.json) are Kafka events as Lambda sends them: records
// under their "<topic>-<partition>", base64 keys and values, headers as
// byte lists; every record of a fixture not named poison is a change the
// contract decodes, and a poison fixture holds at least one it does not.
func TestEventFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "events", "kafka-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events/kafka-*.json: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev events.KafkaEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatalf("not a KafkaEvent: %v", err)
			}
			switch {
			case ev.EventSource == "aws:kafka" && ev.EventSourceARN == "":
				t.Fatal("an aws:kafka event without eventSourceArn")
			case ev.EventSource != "aws:kafka" && ev.EventSource != "SelfManagedKafka":
				t.Fatalf("eventSource %q", ev.EventSource)
			case ev.BootstrapServers == "" || len(ev.Records) == 0:
				t.Fatal("no bootstrapServers or no records")
			}
			bad := 0
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
					if _, err := changes.Decode(k, v, hs); err != nil {
						bad++
					}
				}
			}
			if poison := strings.Contains(file, "poison"); (bad > 0) != poison {
				t.Fatalf("%d records the contract does not decode; a poison fixture needs some, another none", bad)
			}
		})
	}
}
