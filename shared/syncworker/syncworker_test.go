package syncworker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/dedup"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/syncworker"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

func TestProcessPublishes(t *testing.T) {
	tests := []struct {
		name          string
		a, b          *merge.Record
		wantPresence  string
		wantConflicts int
		wantTombstone bool
	}{
		{"conflict", customer("ann@example.com", "Ann", "gold", t0.Add(-time.Hour)), customer("ann@example.com", "Anne", "gold", t0), "inBoth", 1, false},
		{"in sync", customer("ann@example.com", "Ann", "gold", t0.Add(-time.Hour)), customer("ann@example.com", "Ann", "gold", t0), "inBoth", 0, false},
		{"only in System B", nil, customer("ann@example.com", "Ann", "", t0), "onlyInSystemB", 0, false},
		{"in neither", nil, nil, syncworker.PresenceAbsent, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.a != nil {
				e.sys.set(merge.SystemA, tt.a)
			}
			if tt.b != nil {
				e.sys.set(merge.SystemB, tt.b)
			}
			after := customer("ann@example.com", "Anne", "gold", t0)
			rec := change(t, merge.SystemB, nil, after, 0, 7)
			if tt.b == nil {
				rec = change(t, merge.SystemB, after, nil, 0, 7) // the customer was deleted in B
			}
			mustNoFailures(t, e.w.Process(context.Background(), []syncworker.Record{rec}))

			id := eventID(t, rec)
			u := kafkatest.Consume(t, e.brokers, syncworker.TopicUnified, 1)[0]
			c := kafkatest.Consume(t, e.brokers, syncworker.TopicConflicts, 1)[0]
			if string(u.Key) != "ann@example.com" || string(c.Key) != "ann@example.com" {
				t.Errorf("keys %q, %q, want the join key", u.Key, c.Key)
			}
			if got := header(u, syncworker.HeaderSourceEventID); got != id {
				t.Errorf("unified source-event-id = %q, want %q", got, id)
			}
			if got, want := header(u, syncworker.HeaderEventID), syncworker.OutputID(id, "unified"); got != want {
				t.Errorf("unified event-id = %q, want %q", got, want)
			}
			if got, want := header(c, syncworker.HeaderEventID), syncworker.OutputID(id, "conflicts"); got != want {
				t.Errorf("conflicts event-id = %q, want %q", got, want)
			}
			if tt.wantTombstone != (u.Value == nil) {
				t.Errorf("unified value nil = %v, want %v", u.Value == nil, tt.wantTombstone)
			}
			if !tt.wantTombstone {
				uv := decodeUnified(t, u)
				if uv["presence"] != tt.wantPresence || uv["sourceEventId"] != id {
					t.Errorf("unified = %v", uv)
				}
				if srcs, _ := uv["sources"].(map[string]any); srcs["email"] == nil {
					t.Errorf("unified sources = %v, want provenance per field", uv["sources"])
				}
			}
			cv := decodeConflicts(t, c)
			if cv.Presence != tt.wantPresence || len(cv.Conflicts) != tt.wantConflicts || cv.Conflicts == nil {
				t.Errorf("conflicts = %+v, want presence %s and %d conflicts (a list)", cv, tt.wantPresence, tt.wantConflicts)
			}
			if got := e.met.count(emf.SyncConflicts); got != int64(tt.wantConflicts) {
				t.Errorf("%s = %d, want %d", emf.SyncConflicts, got, tt.wantConflicts)
			}
			if got := e.met.count(syncworker.MetricProcessed); got != 1 {
				t.Errorf("processed = %d, want 1", got)
			}
			if lag := e.met.obs[emf.SyncLag]; len(lag) != 1 || lag[0] != 60 {
				t.Errorf("lag = %v, want [60] (publish time minus lastUpdated)", lag)
			}
		})
	}
}

func TestProcessPoisonRecord(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(r *syncworker.Record)
		reason string
	}{
		{"bad JSON", func(r *syncworker.Record) { r.Value = []byte("{not json") }, "invalid JSON"},
		{"unknown schema version", func(r *syncworker.Record) {
			for i := range r.Headers {
				if r.Headers[i].Key == changes.HeaderSchemaVersion {
					r.Headers[i].Value = []byte("99")
				}
			}
		}, "unknown schema version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			b := customer("bob@example.com", "Bob", "", t0)
			e.sys.set(merge.SystemB, b)
			poison := change(t, merge.SystemB, nil, customer("bob@example.com", "Bob", "", t0.Add(-time.Hour)), 1, 10)
			tt.break_(&poison)
			next := change(t, merge.SystemB, nil, b, 1, 11)
			mustNoFailures(t, e.w.Process(context.Background(), []syncworker.Record{poison, next}))

			dl := kafkatest.Consume(t, e.brokers, syncworker.TopicDeadLetter, 1)[0]
			if r := header(dl, syncworker.HeaderDLQReason); !strings.Contains(r, tt.reason) {
				t.Errorf("reason %q, want it to say %q", r, tt.reason)
			}
			if header(dl, syncworker.HeaderDLQTopic) != changes.TopicSystemB || header(dl, syncworker.HeaderDLQPartition) != "1" || header(dl, syncworker.HeaderDLQOffset) != "10" {
				t.Errorf("dead-letter origin headers %v", dl.Headers)
			}
			if string(dl.Value) != string(poison.Value) {
				t.Errorf("dead-letter value is not the poison record's")
			}
			u := kafkatest.Consume(t, e.brokers, syncworker.TopicUnified, 1)[0]
			if got := header(u, syncworker.HeaderSourceEventID); got != eventID(t, next) {
				t.Errorf("the partition did not move on: unified answers %q", got)
			}
			if got := e.met.count(syncworker.MetricDeadLettered); got != 1 {
				t.Errorf("deadlettered = %d, want 1", got)
			}
		})
	}
}

func TestProcessSkips(t *testing.T) {
	e := newEnv(t)
	newer := customer("cy@example.com", "Cy", "", t0)
	older := customer("cy@example.com", "Cyrus", "", t0.Add(-time.Hour))
	e.sys.set(merge.SystemB, newer)
	first := change(t, merge.SystemB, older, newer, 2, 1)
	mustNoFailures(t, e.w.Process(context.Background(), []syncworker.Record{first}))
	before := kafkatest.Count(t, e.brokers, syncworker.TopicUnified)

	stale := change(t, merge.SystemB, nil, older, 2, 2) // an older change of the same system arriving late
	redelivered := first
	mustNoFailures(t, e.w.Process(context.Background(), []syncworker.Record{redelivered, stale}))
	if after := kafkatest.Count(t, e.brokers, syncworker.TopicUnified); after != before {
		t.Errorf("unified records %d -> %d, want nothing published for a redelivered and a stale event", before, after)
	}
	if got := e.met.count(syncworker.MetricSkipped); got != 2 {
		t.Errorf("skipped = %d, want 2", got)
	}
	if got := e.wb.total(); got != 1 {
		t.Errorf("write-backs = %d, want 1", got)
	}

	t.Run("a delete after the update it follows is applied", func(t *testing.T) {
		e.sys.mu.Lock()
		delete(e.sys.b, "cy@example.com")
		e.sys.mu.Unlock()
		del := change(t, merge.SystemB, newer, nil, 2, 3)
		mustNoFailures(t, e.w.Process(context.Background(), []syncworker.Record{del}))
		if after := kafkatest.Count(t, e.brokers, syncworker.TopicUnified); after != before+1 {
			t.Errorf("unified records %d -> %d, want the tombstone", before, after)
		}
	})
}

func TestProcessRedeliveredBatch(t *testing.T) {
	e := newEnv(t)
	var batch []syncworker.Record
	for i, name := range []string{"dee", "eve", "fay", "gus"} {
		r := customer(name+"@example.com", name, "", t0)
		e.sys.set(merge.SystemA, customer(name+"@example.com", name+"x", "", t0.Add(-time.Hour)))
		e.sys.set(merge.SystemB, r)
		batch = append(batch, change(t, merge.SystemB, nil, r, int32(i%3), int64(i)))
	}
	mustNoFailures(t, e.w.Process(context.Background(), batch))
	first := kafkatest.Consume(t, e.brokers, syncworker.TopicConflicts, 4)
	mustNoFailures(t, e.w.Process(context.Background(), batch))
	if n := kafkatest.Count(t, e.brokers, syncworker.TopicConflicts); n != 4 {
		t.Errorf("conflicts records = %d after a redelivery, want 4", n)
	}
	if got := e.wb.total(); got != 4 {
		t.Errorf("write-backs = %d, want 4 (one per event)", got)
	}
	for _, r := range first {
		if want := syncworker.OutputID(header(r, syncworker.HeaderSourceEventID), "conflicts"); header(r, syncworker.HeaderEventID) != want {
			t.Errorf("conflicts id %q, want %q", header(r, syncworker.HeaderEventID), want)
		}
	}
}

// crashStore fails the first Record: a crash after the outputs were
// published and before the events were recorded.
type crashStore struct {
	dedup.Store
	crashed bool
}

func (c *crashStore) Record(ctx context.Context, ttl time.Duration, entries ...dedup.Entry) error {
	if !c.crashed {
		c.crashed = true
		return errors.New("killed")
	}
	return c.Store.Record(ctx, ttl, entries...)
}

func TestProcessCrashAfterPublish(t *testing.T) {
	e := newEnv(t)
	r := customer("hal@example.com", "Hal", "", t0)
	e.sys.set(merge.SystemB, r)
	rec := change(t, merge.SystemB, nil, r, 0, 0)
	crashing := &crashStore{Store: e.store}
	e.w.Dedup = crashing
	fs := e.w.Process(context.Background(), []syncworker.Record{rec})
	if len(fs) != 1 {
		t.Fatalf("failures = %d, want 1", len(fs))
	}
	mustNoFailures(t, e.w.Process(context.Background(), []syncworker.Record{rec}))
	got := kafkatest.Consume(t, e.brokers, syncworker.TopicUnified, 2)
	if header(got[0], syncworker.HeaderEventID) != header(got[1], syncworker.HeaderEventID) {
		t.Errorf("the retry republished under a new id: %q, %q", header(got[0], syncworker.HeaderEventID), header(got[1], syncworker.HeaderEventID))
	}
}

func TestProcessSystemBDown(t *testing.T) {
	e := newEnv(t)
	var batch []syncworker.Record
	for i, name := range []string{"ida", "jon", "kim"} {
		r := customer(name+"@example.com", name, "", t0)
		e.sys.set(merge.SystemB, r)
		batch = append(batch, change(t, merge.SystemB, nil, r, 0, int64(i)))
	}
	e.sys.setBDown(true)
	fs := e.w.Process(context.Background(), batch)
	if len(fs) != 3 {
		t.Fatalf("failures = %d, want all 3 of the partition", len(fs))
	}
	if !errors.Is(fs[0].Err, merge.ErrUnavailable) || errors.Is(fs[0].Err, syncworker.ErrAfterFailure) {
		t.Errorf("first failure %v, want ErrUnavailable", fs[0].Err)
	}
	if !errors.Is(fs[1].Err, syncworker.ErrAfterFailure) || !errors.Is(fs[2].Err, syncworker.ErrAfterFailure) {
		t.Errorf("later failures %v, %v; want ErrAfterFailure", fs[1].Err, fs[2].Err)
	}
	if got := e.met.count(syncworker.MetricFailed); got != 3 {
		t.Errorf("failed = %d, want 3", got)
	}
	e.sys.setBDown(false)
	var retry []syncworker.Record
	for _, f := range fs {
		retry = append(retry, f.Record)
	}
	mustNoFailures(t, e.w.Process(context.Background(), retry))
	got := map[string]bool{}
	for _, r := range kafkatest.Consume(t, e.brokers, syncworker.TopicUnified, 3) {
		got[header(r, syncworker.HeaderSourceEventID)] = true
	}
	for _, rec := range batch {
		if !got[eventID(t, rec)] {
			t.Errorf("event %s lost: no unified record answers it", eventID(t, rec))
		}
	}
}

func TestProcessBrokerDown(t *testing.T) {
	e := newEnv(t)
	p, err := kafka.NewProducer(kafka.Config{Brokers: []string{kafkatest.FreeAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	e.w.Out = p
	r := customer("lia@example.com", "Lia", "", t0)
	e.sys.set(merge.SystemB, r)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // the invocation's deadline
	defer cancel()
	fs := e.w.Process(ctx, []syncworker.Record{change(t, merge.SystemB, nil, r, 0, 0)})
	if len(fs) != 1 || !errors.Is(fs[0].Err, merge.ErrUnavailable) || !strings.Contains(fs[0].Err.Error(), "publish") {
		t.Fatalf("failures %v, want one publish failure of kind ErrUnavailable", fs)
	}
	if seen, _ := e.store.Seen(context.Background(), eventID(t, fs[0].Record)); seen {
		t.Errorf("an unpublished event was marked processed")
	}
}

func TestProcessOrderAcrossTopics(t *testing.T) {
	e := newEnv(t)
	email := "mia@example.com"
	a1 := customer(email, "Mia", "gold", t0.Add(-3*time.Hour))
	b1 := customer(email, "Mya", "", t0.Add(-2*time.Hour))
	a2 := customer(email, "Mia", "platinum", t0.Add(-time.Hour))
	e.sys.set(merge.SystemA, a2)
	e.sys.set(merge.SystemB, b1)
	recs := []syncworker.Record{
		change(t, merge.SystemA, a1, a2, 1, 41), // the later System A change, delivered first in the batch
		change(t, merge.SystemB, nil, b1, 1, 7),
		change(t, merge.SystemA, nil, a1, 1, 40),
	}
	recs[0].Timestamp, recs[1].Timestamp, recs[2].Timestamp = t0.Add(3*time.Second), t0.Add(2*time.Second), t0.Add(time.Second)
	mustNoFailures(t, e.w.Process(context.Background(), recs))
	got := kafkatest.Consume(t, e.brokers, syncworker.TopicUnified, 3)
	want := []string{eventID(t, recs[2]), eventID(t, recs[1]), eventID(t, recs[0])} // offsets within a topic, timestamps across
	for i, r := range got {
		if header(r, syncworker.HeaderSourceEventID) != want[i] {
			t.Errorf("unified[%d] answers %s, want %s", i, header(r, syncworker.HeaderSourceEventID), want[i])
		}
	}
}

// TestProcessSameTickChanges: two different changes of one customer that
// System B stamped with the same lastUpdated (its resolution is a second)
// are both processed, so the merged view ends on the later one; only a
// repeat of the same change (the same event id) is skipped.
func TestProcessSameTickChanges(t *testing.T) {
	e := newEnv(t)
	email := "tick@example.com"
	first := customer(email, "Tim", "", t0)
	second := customer(email, "Timothy", "", t0) // the same second, another value
	e.sys.set(merge.SystemB, first)
	mustNoFailures(t, e.w.Process(context.Background(), []syncworker.Record{change(t, merge.SystemB, nil, first, 0, 1)}))
	e.sys.set(merge.SystemB, second)
	again := change(t, merge.SystemB, first, second, 0, 2)
	mustNoFailures(t, e.w.Process(context.Background(), []syncworker.Record{again}))
	got := kafkatest.Consume(t, e.brokers, syncworker.TopicUnified, 2)
	if len(got) != 2 || !strings.Contains(string(got[1].Value), `"Timothy"`) {
		t.Fatalf("unified records %d, the last %s; want 2, the last with the second change", len(got), got[len(got)-1].Value)
	}
	mustNoFailures(t, e.w.Process(context.Background(), []syncworker.Record{again}))
	if n := kafkatest.Count(t, e.brokers, syncworker.TopicUnified); n != 2 {
		t.Errorf("unified records %d after redelivering the second change, want still 2", n)
	}
}

func TestProcessStaleWithinOneBatch(t *testing.T) {
	e := newEnv(t)
	email := "ned@example.com"
	newer := customer(email, "Ned", "", t0)
	older := customer(email, "Ed", "", t0.Add(-time.Hour))
	e.sys.set(merge.SystemB, newer)
	recs := []syncworker.Record{change(t, merge.SystemB, older, newer, 0, 1), change(t, merge.SystemB, nil, older, 0, 2)}
	mustNoFailures(t, e.w.Process(context.Background(), recs))
	if n := kafkatest.Count(t, e.brokers, syncworker.TopicUnified); n != 1 {
		t.Errorf("unified records %d, want 1 (the older change in the same batch is stale)", n)
	}
	if got := e.met.count(syncworker.MetricSkipped); got != 1 {
		t.Errorf("skipped = %d, want 1", got)
	}
}

// failingWriteBack fails for one event id.
type failingWriteBack struct {
	writeBacks
	failID string
}

func (f *failingWriteBack) Apply(ctx context.Context, key string, res merge.Result, ev changes.Event) error {
	if ev.ID == f.failID {
		return fmt.Errorf("system B: 503: %w", merge.ErrUnavailable)
	}
	return f.writeBacks.Apply(ctx, key, res, ev)
}

func TestProcessWriteBackFails(t *testing.T) {
	e := newEnv(t)
	var recs []syncworker.Record
	for i, name := range []string{"ola", "pia", "quin"} {
		r := customer(name+"@example.com", name, "", t0)
		e.sys.set(merge.SystemA, customer(name+"@example.com", name+"x", "", t0.Add(-time.Hour)))
		e.sys.set(merge.SystemB, r)
		recs = append(recs, change(t, merge.SystemB, nil, r, 2, int64(i)))
	}
	wb := &failingWriteBack{failID: eventID(t, recs[1])}
	e.w.WriteBack = wb
	fs := e.w.Process(context.Background(), recs)
	if len(fs) != 2 || fs[0].Record.Offset != 1 || !strings.Contains(fs[0].Err.Error(), "write-back") {
		t.Fatalf("failures %v, want offsets 1 and 2, the first a write-back failure", fs)
	}
	if seen, _ := e.store.Seen(context.Background(), eventID(t, recs[0])); !seen {
		t.Errorf("the event before the failure was not recorded")
	}
	if seen, _ := e.store.Seen(context.Background(), eventID(t, recs[1])); seen {
		t.Errorf("the failed event was recorded")
	}
	wb.failID = ""
	mustNoFailures(t, e.w.Process(context.Background(), recs[1:]))
	if got := wb.total(); got != 3 {
		t.Errorf("write-backs = %d, want 3 (one per event)", got)
	}
}
