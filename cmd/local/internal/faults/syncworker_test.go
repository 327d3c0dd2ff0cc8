package faults

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/syncworker"
)

// workerTopics are the topics of a sync worker rig's broker.
var workerTopics = []string{changes.TopicSystemA, changes.TopicSystemB, syncworker.TopicUnified, syncworker.TopicConflicts, syncworker.TopicDeadLetter}

// workerRig starts a broker with the worker's topics on addr and a rig
// whose functions use it.
func workerRig(t *testing.T, addr string, opts ...rigOption) *rig {
	t.Helper()
	kafkatest.BrokerAt(t, addr, 3, workerTopics...)
	return newRig(t, append(opts, withEnv("KAFKA_BOOTSTRAP_SERVERS", addr))...)
}

// kafkaEvent is the event source mapping's event for records, as MSK
// delivers it: grouped by topic-partition, key and value in base64, headers
// as byte arrays.
func kafkaEvent(t *testing.T, recs ...events.KafkaRecord) []byte {
	t.Helper()
	ev := events.KafkaEvent{EventSource: "aws:kafka", Records: map[string][]events.KafkaRecord{},
		EventSourceARN: "arn:aws:kafka:us-east-1:123456789012:cluster/ucs/0e1f2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7-1"}
	for _, r := range recs {
		k := fmt.Sprintf("%s-%d", r.Topic, r.Partition)
		ev.Records[k] = append(ev.Records[k], r)
	}
	return mustJSON(t, ev)
}

// changeRecord is a System B change of the data set's System A customer i
// (an update of its first name), as delivered at offset off of partition 0.
func changeRecord(t *testing.T, i int, off int64) (events.KafkaRecord, changes.Event) {
	t.Helper()
	before := data.a[i]
	after := *before
	after.Values[merge.FieldFirstName] = "Changed"
	after.LastUpdated = data.truth.ExportedAt.Add(time.Duration(i+1) * time.Minute)
	ev, err := changes.New(merge.SystemB, nil, &after, "poll:faults", time.Time{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := kafka.Record(&ev)
	if err != nil {
		t.Fatal(err)
	}
	kr := events.KafkaRecord{Topic: r.Topic, Partition: 0, Offset: off, Timestamp: events.MilliSecondsEpochTime{Time: time.Now()},
		TimestampType: "CREATE_TIME", Key: base64.StdEncoding.EncodeToString(r.Key), Value: base64.StdEncoding.EncodeToString(r.Value)}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, map[string]events.JSONNumberBytes{h.Key: h.Value})
	}
	return kr, ev
}

// batchResponse decodes the worker's answer.
func batchResponse(t *testing.T, c *call) syncworker.BatchResponse {
	t.Helper()
	c.ok()
	var resp syncworker.BatchResponse
	if err := json.Unmarshal(c.res.Payload, &resp); err != nil {
		t.Fatalf("not a batch response: %v: %s", err, c.res.Payload)
	}
	return resp
}

// sourceIDs reads topic and returns the source-event-id of each record.
func sourceIDs(t *testing.T, brokers []string, topic string) []string {
	t.Helper()
	n := kafkatest.Count(t, brokers, topic)
	var out []string
	for _, r := range kafkatest.Consume(t, brokers, topic, int(n)) {
		for _, h := range r.Headers {
			if h.Key == syncworker.HeaderSourceEventID {
				out = append(out, string(h.Value))
			}
		}
	}
	return out
}

// Row 23: a poison record (bad JSON, an unknown schema version) in a
// batch goes to the dead-letter topic with its reason, is not handed back,
// and the records after it in its partition are processed.
func TestRow23WorkerPoisonRecord(t *testing.T) {
	t.Parallel()
	addr := kafkatest.FreeAddr(t)
	r := workerRig(t, addr)
	bad, _ := changeRecord(t, 1, 10)
	bad.Value = base64.StdEncoding.EncodeToString([]byte(`{"before":null,`))
	unknown, _ := changeRecord(t, 2, 11)
	unknown.Headers[1] = map[string]events.JSONNumberBytes{changes.HeaderSchemaVersion: []byte("9")}
	good, ev := changeRecord(t, 3, 12)
	c := r.invoke(syncWorkerFn, kafkaEvent(t, bad, unknown, good))
	if resp := batchResponse(t, c); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch item failures %+v, want none", resp.BatchItemFailures)
	}
	if got := c.count(syncworker.MetricDeadLettered); got != 2 {
		t.Errorf("%s = %v, want 2", syncworker.MetricDeadLettered, got)
	}
	c.wantLog("WARN", "poison change record: sent to the dead-letter topic", "reason")
	dl := kafkatest.Consume(t, []string{addr}, syncworker.TopicDeadLetter, 2)
	var reasons []string
	for _, rec := range dl {
		for _, h := range rec.Headers {
			if h.Key == syncworker.HeaderDLQReason {
				reasons = append(reasons, string(h.Value))
			}
		}
	}
	if len(reasons) != 2 || !strings.Contains(strings.Join(reasons, "|"), "invalid JSON") || !strings.Contains(strings.Join(reasons, "|"), "unknown schema version") {
		t.Errorf("dead-letter reasons %q", reasons)
	}
	if ids := sourceIDs(t, []string{addr}, syncworker.TopicUnified); len(ids) != 1 || ids[0] != ev.ID {
		t.Errorf("unified answers %v, want the record after the poison ones (%s)", ids, ev.ID)
	}
}

// Row 24: System B is down during a batch: every record is handed back as
// a batch item failure (none lost, none recorded); the retry with System B
// back processes them all.
func TestRow24WorkerSystemBDown(t *testing.T) {
	t.Parallel()
	addr := kafkatest.FreeAddr(t)
	r := workerRig(t, addr)
	var recs []events.KafkaRecord
	var ids []string
	for i := range 3 {
		kr, ev := changeRecord(t, 10+i, int64(100+i))
		recs = append(recs, kr)
		ids = append(ids, ev.ID)
	}
	event := kafkaEvent(t, recs...)
	r.setFaults(bsim.Faults{Down: true})
	c := r.invoke(syncWorkerFn, event)
	resp := batchResponse(t, c)
	if len(resp.BatchItemFailures) != 3 || resp.BatchItemFailures[0].ItemIdentifier != (syncworker.ItemIdentifier{Partition: changes.TopicSystemB + "-0", Offset: 100}) {
		t.Fatalf("batch item failures %+v, want all three from offset 100", resp.BatchItemFailures)
	}
	if got := c.count(syncworker.MetricFailed); got != 3 {
		t.Errorf("%s = %v, want 3", syncworker.MetricFailed, got)
	}
	if n := kafkatest.Count(t, []string{addr}, syncworker.TopicUnified); n != 0 {
		t.Errorf("%d unified records published with System B down", n)
	}
	r.setFaults(bsim.Faults{})
	if resp := batchResponse(t, r.invoke(syncWorkerFn, event)); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry: batch item failures %+v", resp.BatchItemFailures)
	}
	got := strings.Join(sourceIDs(t, []string{addr}, syncworker.TopicUnified), ",")
	for _, id := range ids {
		if !strings.Contains(got, id) {
			t.Errorf("event %s lost", id)
		}
	}
}

// Row 25: a batch delivered again (the worker killed after publishing,
// before the mapping committed): nothing is published again under new ids,
// nothing is processed twice.
func TestRow25WorkerRedeliveredBatch(t *testing.T) {
	t.Parallel()
	addr := kafkatest.FreeAddr(t)
	r := workerRig(t, addr)
	a, _ := changeRecord(t, 20, 5)
	b, _ := changeRecord(t, 21, 6)
	event := kafkaEvent(t, a, b)
	batchResponse(t, r.invoke(syncWorkerFn, event))
	before := kafkatest.Count(t, []string{addr}, syncworker.TopicConflicts)
	c := r.invoke(syncWorkerFn, event)
	if resp := batchResponse(t, c); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch item failures %+v", resp.BatchItemFailures)
	}
	if got := c.count(syncworker.MetricSkipped); got != 2 {
		t.Errorf("%s = %v, want 2", syncworker.MetricSkipped, got)
	}
	if after := kafkatest.Count(t, []string{addr}, syncworker.TopicConflicts); after != before || before != 2 {
		t.Errorf("conflicts records %d -> %d, want 2 and no more", before, after)
	}
}

// Row 26: the broker is down: the records are handed back with an error
// naming the publish; with the broker back, the retry publishes them.
func TestRow26WorkerBrokerDown(t *testing.T) {
	t.Parallel()
	addr := kafkatest.FreeAddr(t)
	r := newRig(t, withEnv("KAFKA_BOOTSTRAP_SERVERS", addr), withTimeout(syncWorkerFn, 10*time.Second))
	kr, ev := changeRecord(t, 30, 9)
	event := kafkaEvent(t, kr)
	c := r.invoke(syncWorkerFn, event)
	if resp := batchResponse(t, c); len(resp.BatchItemFailures) != 1 {
		t.Fatalf("batch item failures %+v, want the record", resp.BatchItemFailures)
	}
	c.wantLog("WARN", "change record to retry, with the rest of its sequence", "err")
	kafkatest.BrokerAt(t, addr, 3, workerTopics...)
	if resp := batchResponse(t, r.invoke(syncWorkerFn, event)); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry: batch item failures %+v", resp.BatchItemFailures)
	}
	if ids := sourceIDs(t, []string{addr}, syncworker.TopicUnified); len(ids) != 1 || ids[0] != ev.ID {
		t.Errorf("unified answers %v, want %s", ids, ev.ID)
	}
}
