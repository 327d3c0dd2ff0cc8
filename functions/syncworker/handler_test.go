package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/dedup"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/syncworker"
	"github.com/acme/unified-customer-service/shared/testkit"
	"github.com/acme/unified-customer-service/shared/unified"
)

// fakeA and fakeB hold every customer of the fixtures' changes, as their
// "after" says; fakeB can be down.
type fakeA struct{ recs map[string]*merge.Record }

func (a fakeA) Acquire(context.Context) (unified.Snapshot, error) { return a, nil }
func (a fakeA) Lookup(_ context.Context, key string) (*merge.Record, error) {
	if r, ok := a.recs[key]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("fake A: %w", merge.ErrNotFound)
}
func (a fakeA) ExportedAt() time.Time { return time.Time{} }
func (a fakeA) Release()              {}

type fakeB struct {
	recs map[string]*merge.Record
	down *bool
}

func (b fakeB) Get(_ context.Context, email string) (*merge.Record, error) {
	if *b.down {
		return nil, fmt.Errorf("fake B: 503: %w", merge.ErrUnavailable)
	}
	if r, ok := b.recs[merge.Key(email)]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("fake B: %w", merge.ErrNotFound)
}

// setup returns a handler on a real broker, whose systems hold what the
// records' changes say.
func setup(t *testing.T, recs []syncworker.Record) (*Handler, []string, *bool) {
	t.Helper()
	c := kafkatest.Broker(t, 3, changes.TopicSystemA, changes.TopicSystemB, syncworker.TopicUnified, syncworker.TopicConflicts, syncworker.TopicDeadLetter)
	p, err := kafka.NewProducer(kafka.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	st, err := dedup.OpenFile(filepath.Join(t.TempDir(), "dedup.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, b := map[string]*merge.Record{}, map[string]*merge.Record{}
	for _, r := range recs {
		ev, err := changes.Decode(r.Key, r.Value, r.Headers)
		if err != nil || ev.After == nil {
			continue
		}
		if ev.Source.System == merge.SystemA {
			a[ev.Key] = ev.After
		} else {
			b[ev.Key] = ev.After
		}
	}
	down := new(bool)
	w := &syncworker.Worker{
		Reader: &unified.Reader{A: fakeA{a}, B: fakeB{b, down}},
		Rules:  merge.DefaultRules(), Out: p, Dedup: st,
	}
	return &Handler{Worker: w, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, c.ListenAddrs(), down
}

func TestFixtures(t *testing.T) {
	tests := []struct {
		file         string
		records      int
		deadLettered int64
		unified      int64
	}{
		{"kafka-system-a.json", 1, 0, 1},
		{"kafka-system-b.json", 1, 0, 1},
		{"kafka-poison.json", 3, 2, 1},
		{"kafka-batch.json", 5, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var ev events.KafkaEvent
			testkit.Event(t, tt.file, &ev)
			recs := Records(ev)
			if len(recs) != tt.records {
				t.Fatalf("%d records, want %d", len(recs), tt.records)
			}
			h, brokers, _ := setup(t, recs)
			resp, err := h.Handle(context.Background(), ev)
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("Handle = %+v, %v; want no failures", resp, err)
			}
			if n := kafkatest.Count(t, brokers, syncworker.TopicDeadLetter); n != tt.deadLettered {
				t.Errorf("dead-lettered %d, want %d", n, tt.deadLettered)
			}
			if n := kafkatest.Count(t, brokers, syncworker.TopicUnified); n != tt.unified {
				t.Errorf("unified records %d, want %d", n, tt.unified)
			}
		})
	}
}

func TestHandleReportsBatchItemFailures(t *testing.T) {
	var ev events.KafkaEvent
	testkit.Event(t, "kafka-batch.json", &ev)
	h, _, down := setup(t, Records(ev))
	*down = true
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	if len(resp.BatchItemFailures) != 5 || !strings.Contains(string(b), `{"itemIdentifier":{"partition":"customer.changes.system-a-0","offset":4190}}`) {
		t.Errorf("response %s, want every record as {partition: topic-partition, offset}", b)
	}
	*down = false
	resp, err = h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Errorf("retry: %+v, %v; want no failures", resp, err)
	}
}

func TestRecordsUnreadable(t *testing.T) {
	ev := events.KafkaEvent{Records: map[string][]events.KafkaRecord{"t-0": {
		{Topic: "t", Partition: 0, Offset: 1, Key: "not base64!", Value: "e30="},
		{Topic: "t", Partition: 0, Offset: 2, Key: "a2V5", Value: "%%%"},
	}}}
	recs := Records(ev)
	if len(recs) != 2 || recs[0].Unreadable == nil || recs[1].Unreadable == nil {
		t.Fatalf("records %+v, want both unreadable", recs)
	}
}

func TestHandleAnswersBeforeTheDeadline(t *testing.T) {
	var ev events.KafkaEvent
	testkit.Event(t, "kafka-system-b.json", &ev)
	h, _, _ := setup(t, Records(ev))
	p, err := kafka.NewProducer(kafka.Config{Brokers: []string{kafkatest.FreeAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h.Worker.Out = p                                                        // a broker that cannot be reached: the publish waits for the deadline
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // the invocation's deadline
	defer cancel()
	resp, err := h.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("Handle = %+v, %v; want the record handed back", resp, err)
	}
	if ctx.Err() != nil {
		t.Errorf("Handle answered after the invocation's deadline")
	}
}
