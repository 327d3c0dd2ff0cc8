package syncworker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/dedup"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/syncworker"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/unified"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// systems is System A and System B in memory; B can be taken down.
type systems struct {
	mu       sync.Mutex
	a, b     map[string]*merge.Record
	bDown    bool
	exported time.Time
}

func newSystems() *systems {
	return &systems{a: map[string]*merge.Record{}, b: map[string]*merge.Record{}, exported: t0.Add(-time.Hour)}
}

func (s *systems) set(src merge.Source, r *merge.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.a
	if src == merge.SystemB {
		m = s.b
	}
	m[r.Key()] = r
}

func (s *systems) setBDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bDown = down
}

func (s *systems) Acquire(context.Context) (unified.Snapshot, error) { return snap{s}, nil }

type snap struct{ s *systems }

func (p snap) Lookup(_ context.Context, key string) (*merge.Record, error) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if r, ok := p.s.a[key]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("fake A: %w", merge.ErrNotFound)
}
func (p snap) ExportedAt() time.Time { return p.s.exported }
func (p snap) Release()              {}

type sysB struct{ s *systems }

func (b sysB) Get(_ context.Context, email string) (*merge.Record, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.s.bDown {
		return nil, fmt.Errorf("fake B: 503: %w", merge.ErrUnavailable)
	}
	if r, ok := b.s.b[merge.Key(email)]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("fake B: %w", merge.ErrNotFound)
}

// writeBacks counts Apply calls per source event id.
type writeBacks struct {
	mu    sync.Mutex
	calls map[string]int
}

func (w *writeBacks) Apply(_ context.Context, _ string, _ merge.Result, ev changes.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.calls == nil {
		w.calls = map[string]int{}
	}
	w.calls[ev.ID]++
	return nil
}

func (w *writeBacks) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.calls {
		n += c
	}
	return n
}

// metrics records counts in memory.
type metrics struct {
	mu     sync.Mutex
	counts map[string]int64
	obs    map[string][]float64
}

func (m *metrics) Count(name string, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]int64{}
	}
	m.counts[name] += n
}

func (m *metrics) Observe(name string, v float64, _ emf.Unit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.obs == nil {
		m.obs = map[string][]float64{}
	}
	m.obs[name] = append(m.obs[name], v)
}
func (m *metrics) Set(string, any) {}
func (m *metrics) Flush() error    { return nil }

func (m *metrics) count(name string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[name]
}

// env is a worker on a real broker (kfake), the file dedup store and
// in-memory systems.
type env struct {
	brokers []string
	sys     *systems
	wb      *writeBacks
	met     *metrics
	store   dedup.Store
	w       *syncworker.Worker
	now     time.Time
}

var allTopics = []string{changes.TopicSystemA, changes.TopicSystemB, syncworker.TopicUnified, syncworker.TopicConflicts, syncworker.TopicDeadLetter}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := kafkatest.Broker(t, 3, allTopics...)
	brokers := c.ListenAddrs()
	p, err := kafka.NewProducer(kafka.Config{Brokers: brokers})
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(p.Close)
	e := &env{brokers: brokers, sys: newSystems(), wb: &writeBacks{}, met: &metrics{}, now: t0.Add(time.Minute)}
	st, err := dedup.OpenFile(filepath.Join(t.TempDir(), "dedup.db"), func() time.Time { return e.now })
	if err != nil {
		t.Fatalf("dedup: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st
	e.w = &syncworker.Worker{
		Reader:    &unified.Reader{A: e.sys, B: sysB{e.sys}, Now: func() time.Time { return e.now }},
		Rules:     merge.DefaultRules(),
		Out:       p,
		Dedup:     st,
		WriteBack: e.wb,
		Metrics:   e.met,
		Now:       func() time.Time { return e.now },
	}
	return e
}

// customer builds a record.
func customer(email, first, tier string, lastUpdated time.Time) *merge.Record {
	r := &merge.Record{LastUpdated: lastUpdated}
	r.Values[merge.FieldEmail] = email
	r.Values[merge.FieldFirstName] = first
	r.Values[merge.FieldLoyaltyTier] = tier
	return r
}

// change builds the change event of src from before to after as a
// delivered record, on partition p at offset off.
func change(t testing.TB, src merge.Source, before, after *merge.Record, p int32, off int64) syncworker.Record {
	t.Helper()
	ev, err := changes.New(src, before, after, "v1", time.Time{}, t0)
	if err != nil {
		t.Fatalf("changes.New: %v", err)
	}
	r, err := kafka.Record(&ev)
	if err != nil {
		t.Fatalf("kafka.Record: %v", err)
	}
	return syncworker.Record{Topic: r.Topic, Partition: p, Offset: off, Key: r.Key, Value: r.Value, Headers: kafka.Headers(r), Timestamp: t0}
}

func eventID(t *testing.T, rec syncworker.Record) string {
	t.Helper()
	for _, h := range rec.Headers {
		if h.Key == changes.HeaderEventID {
			return string(h.Value)
		}
	}
	t.Fatalf("record has no event id")
	return ""
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func decodeConflicts(t *testing.T, r *kgo.Record) syncworker.ConflictsValue {
	t.Helper()
	var v syncworker.ConflictsValue
	if err := json.Unmarshal(r.Value, &v); err != nil {
		t.Fatalf("conflicts value: %v", err)
	}
	return v
}

func decodeUnified(t *testing.T, r *kgo.Record) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Value, &v); err != nil {
		t.Fatalf("unified value: %v", err)
	}
	return v
}

func mustNoFailures(t *testing.T, fs []syncworker.Failure) {
	t.Helper()
	for _, f := range fs {
		t.Errorf("failure at %s offset %d: %v", f.Record.Lane(), f.Record.Offset, f.Err)
	}
	if len(fs) > 0 {
		t.FailNow()
	}
}
