// Package syncworker is the sync worker's domain logic: it takes the
// records of both change topics (shared/changes) as a Kafka event source
// mapping hands them over, and for each change re-reads the customer from
// both systems (shared/unified), merges them (MERGE_RULES) and publishes
// the unified record with its provenance to the compacted topic
// customer.unified and the customer's current conflicts to
// customer.conflicts.
//
// Order per event: (1) an event id already processed is skipped; (2) an
// event whose source.lastUpdated is not newer than what was applied for
// the customer and system is skipped; (3) both systems are read and merged;
// (4) both outputs are published (acks=all); (5) the write-back runs, when
// on; (6) the watermark moves and the id is remembered. A crash between 4
// and 6 makes the event run again: the outputs carry the same ids (a hash
// of the input event id and the output kind) and the write-back must be
// idempotent itself (System B's If-Match).
//
// A poison record (one changes.Decode refuses) is written with its reason
// to the dead-letter topic and counts as done, so its partition moves on.
// Any other failure (a system or the broker down) fails the record and
// every later record of its partition: the event source mapping retries
// them from the first, in order.
package syncworker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/dedup"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/unified"
)

// The topics the worker writes.
const (
	TopicUnified    = "customer.unified"             // compacted; key: the join key; a tombstone when in neither system
	TopicConflicts  = "customer.conflicts"           // key: the join key; the customer's current conflicts
	TopicDeadLetter = "customer.changes.dead-letter" // poison change records with their reason
)

// The headers of the records the worker writes.
const (
	HeaderEventID       = changes.HeaderEventID       // the output's own id: Hash(source event id, kind)
	HeaderSchemaVersion = changes.HeaderSchemaVersion // "1"
	HeaderSourceEventID = "source-event-id"           // the change event the output answers
	// The dead-letter headers, beside the poison record's own.
	HeaderDLQReason    = "dlq-reason"
	HeaderDLQTopic     = "dlq-topic"
	HeaderDLQPartition = "dlq-partition"
	HeaderDLQOffset    = "dlq-offset"
)

// Metric names of the worker (besides emf.SyncConflicts and emf.SyncLag).
const (
	MetricProcessed    = "sync.worker.events.processed"    // events merged and published (Count)
	MetricSkipped      = "sync.worker.events.skipped"      // events already seen or stale (Count)
	MetricFailed       = "sync.worker.events.failed"       // records handed back for a retry (Count)
	MetricDeadLettered = "sync.worker.events.deadlettered" // poison records sent to the dead-letter topic (Count)
)

// DefaultSeenTTL is how long a processed event id is remembered: longer
// than the change topics' retention (7 days), so any redelivery is caught.
const DefaultSeenTTL = 8 * 24 * time.Hour

// Record is one Kafka record as the event source mapping delivers it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []changes.Header
	Timestamp time.Time
	// Unreadable says why the delivered record could not be read (its key
	// or value is not base64): it is dead-lettered with this reason.
	Unreadable error
}

// Lane names the record's topic-partition as the event source mapping
// does ("customer.changes.system-a-3").
func (r *Record) Lane() string { return r.Topic + "-" + strconv.Itoa(int(r.Partition)) }

// Failure is a record handed back for a retry, with why.
type Failure struct {
	Record Record
	Err    error
}

// Publisher writes the worker's outputs (kafka.Producer.Send).
type Publisher interface {
	Send(ctx context.Context, msgs ...kafka.Message) error
}

// Reader reads one customer from both systems (unified.Reader).
type Reader interface {
	Read(ctx context.Context, key string) unified.Read
}

// WriteBack writes the merged result back to the systems (shared/writeback);
// nil when WRITE_BACK=off. It must be idempotent: it may be called again for
// the same event after a crash.
type WriteBack interface {
	Apply(ctx context.Context, key string, res merge.Result, ev changes.Event) error
}

// Worker processes batches of change records. Its fields are set once.
type Worker struct {
	Reader    Reader
	Rules     merge.Rules
	Out       Publisher
	Dedup     dedup.Store
	WriteBack WriteBack    // nil: off
	Metrics   emf.Recorder // nil: none
	Log       *slog.Logger // nil: none
	Now       func() time.Time
	// Concurrency bounds the partitions processed at once; 4 when zero.
	Concurrency int
	// SeenTTL is how long processed ids are remembered; DefaultSeenTTL when zero.
	SeenTTL time.Duration

	locks [64]sync.Mutex // one customer at a time (its changes come on two topics)
}

// Process handles one batch: the records of each partition in offset
// order, partitions concurrently. It returns the records to retry, the
// first failed record of each failing partition and every later one of
// that partition, in the batch's order; none when all were done.
func (w *Worker) Process(ctx context.Context, recs []Record) []Failure {
	lanes := map[string][]int{}
	var order []string
	for i := range recs {
		l := recs[i].Lane()
		if _, ok := lanes[l]; !ok {
			order = append(order, l)
		}
		lanes[l] = append(lanes[l], i)
	}
	failed := make([]error, len(recs))
	conc := w.Concurrency
	if conc <= 0 {
		conc = 4
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for _, l := range order {
		idx := lanes[l]
		sort.SliceStable(idx, func(a, b int) bool { return recs[idx[a]].Offset < recs[idx[b]].Offset })
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for n, i := range idx {
				if err := w.handle(ctx, &recs[i]); err != nil {
					failed[i] = err
					for _, j := range idx[n+1:] {
						failed[j] = fmt.Errorf("syncworker: after an earlier failure in %s at offset %d: %w", l, recs[i].Offset, errRetryLater)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	var out []Failure
	for i, err := range failed {
		if err != nil {
			out = append(out, Failure{Record: recs[i], Err: err})
		}
	}
	w.count(MetricFailed, int64(len(out)))
	return out
}

// BatchResponse is the answer to the event source mapping with
// ReportBatchItemFailures: the records to retry. An empty list is success.
type BatchResponse struct {
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
}

// BatchItemFailure names one failed record.
type BatchItemFailure struct {
	ItemIdentifier ItemIdentifier `json:"itemIdentifier"`
}

// ItemIdentifier is a Kafka record's identity in a partial batch response:
// its topic-partition (the key of the event's records map) and offset.
type ItemIdentifier struct {
	Partition string `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Response renders failures for the event source mapping.
func Response(failures []Failure) BatchResponse {
	out := BatchResponse{BatchItemFailures: make([]BatchItemFailure, 0, len(failures))}
	for _, f := range failures {
		out.BatchItemFailures = append(out.BatchItemFailures, BatchItemFailure{ItemIdentifier{Partition: f.Record.Lane(), Offset: f.Record.Offset}})
	}
	return out
}

// errRetryLater marks a record not tried because an earlier one of its
// partition failed.
var errRetryLater = errors.New("not tried, retried in order")

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Worker) count(name string, n int64) {
	if w.Metrics != nil && n > 0 {
		w.Metrics.Count(name, n)
	}
}

func (w *Worker) lock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &w.locks[h.Sum32()%uint32(len(w.locks))]
}

// handle processes one record; an error means retry it.
func (w *Worker) handle(ctx context.Context, rec *Record) error {
	if rec.Unreadable != nil {
		return w.deadLetter(ctx, rec, rec.Unreadable)
	}
	ev, err := changes.Decode(rec.Key, rec.Value, rec.Headers)
	if err != nil {
		return w.deadLetter(ctx, rec, err)
	}
	mu := w.lock(ev.Key)
	mu.Lock()
	defer mu.Unlock()

	seen, err := w.Dedup.Seen(ctx, ev.ID)
	if err != nil {
		return fmt.Errorf("syncworker: event %s: %w", ev.ID, err)
	}
	if seen {
		w.count(MetricSkipped, 1)
		return nil
	}
	applied, err := w.Dedup.Applied(ctx, ev.Key, ev.Source.System)
	if err != nil {
		return fmt.Errorf("syncworker: event %s: %w", ev.ID, err)
	}
	if stale(ev, applied) {
		w.count(MetricSkipped, 1)
		if err := w.Dedup.Mark(ctx, ev.ID, w.ttl()); err != nil {
			return fmt.Errorf("syncworker: event %s: %w", ev.ID, err)
		}
		return nil
	}

	read := w.Reader.Read(ctx, ev.Key)
	if fs := read.Failures(); len(fs) > 0 {
		errs := make([]error, len(fs))
		for i, f := range fs {
			errs[i] = f.Err
		}
		return fmt.Errorf("syncworker: event %s: read: %w", ev.ID, errors.Join(errs...))
	}
	var res *merge.Result
	if read.A != nil || read.B != nil {
		r := merge.Merge(read.A, read.B, w.Rules)
		res = &r
	}
	msgs, err := Outputs(ev, res, read.Freshness)
	if err != nil {
		return fmt.Errorf("syncworker: event %s: %w", ev.ID, err)
	}
	if err := w.Out.Send(ctx, msgs...); err != nil {
		return fmt.Errorf("syncworker: event %s: publish: %w", ev.ID, err)
	}
	published := w.now()
	if res != nil && w.WriteBack != nil {
		if err := w.WriteBack.Apply(ctx, ev.Key, *res, ev); err != nil {
			return fmt.Errorf("syncworker: event %s: write-back: %w", ev.ID, err)
		}
	}
	if err := w.Dedup.SetApplied(ctx, ev.Key, ev.Source.System, ev.Source.LastUpdated); err != nil {
		return fmt.Errorf("syncworker: event %s: %w", ev.ID, err)
	}
	if err := w.Dedup.Mark(ctx, ev.ID, w.ttl()); err != nil {
		return fmt.Errorf("syncworker: event %s: %w", ev.ID, err)
	}
	w.count(MetricProcessed, 1)
	if res != nil {
		w.count(emf.SyncConflicts, int64(len(res.Conflicts)))
	}
	if w.Metrics != nil {
		w.Metrics.Observe(emf.SyncLag, published.Sub(SourceTime(ev)).Seconds(), emf.Seconds)
	}
	return nil
}

func (w *Worker) ttl() time.Duration {
	if w.SeenTTL > 0 {
		return w.SeenTTL
	}
	return DefaultSeenTTL
}

// stale reports whether ev is older than the watermark applied for its
// customer and system. A create or update must be newer; a delete carries
// the deleted record's lastUpdated, the very one its last update applied,
// so it is stale only when something newer was applied since.
func stale(ev changes.Event, applied time.Time) bool {
	if applied.IsZero() {
		return false
	}
	if ev.Op == changes.OpDelete {
		return applied.After(ev.Source.LastUpdated)
	}
	return !ev.Source.LastUpdated.After(applied)
}

// SourceTime is when the change happened at its source, the start of
// sync.lag.seconds: System A's snapshot export time (the change became
// visible then), else the changed record's lastUpdated.
func SourceTime(ev changes.Event) time.Time {
	if ev.Source.ExportedAt != nil {
		return *ev.Source.ExportedAt
	}
	return ev.Source.LastUpdated
}

// deadLetter writes a poison record, its reason and where it came from to
// the dead-letter topic; the record then counts as done.
func (w *Worker) deadLetter(ctx context.Context, rec *Record, reason error) error {
	m := kafka.Message{Topic: TopicDeadLetter, Key: rec.Key, Value: rec.Value}
	for _, h := range rec.Headers {
		m.Headers = append(m.Headers, [2]string{h.Key, string(h.Value)})
	}
	m.Headers = append(m.Headers,
		[2]string{HeaderDLQReason, reason.Error()},
		[2]string{HeaderDLQTopic, rec.Topic},
		[2]string{HeaderDLQPartition, strconv.Itoa(int(rec.Partition))},
		[2]string{HeaderDLQOffset, strconv.FormatInt(rec.Offset, 10)},
	)
	if err := w.Out.Send(ctx, m); err != nil {
		return fmt.Errorf("syncworker: dead-letter %s at offset %d: %w", rec.Lane(), rec.Offset, err)
	}
	w.count(MetricDeadLettered, 1)
	if w.Log != nil {
		w.Log.WarnContext(ctx, "poison change record sent to the dead-letter topic",
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "reason", reason.Error())
	}
	return nil
}

// OutputID is the id of the output of kind ("unified", "conflicts") for the
// change event sourceID: 32 hex digits of a SHA-256, the same on every
// redelivery.
func OutputID(sourceID, kind string) string {
	h := sha256.Sum256([]byte("ucs-sync-v1\x00" + sourceID + "\x00" + kind))
	return hex.EncodeToString(h[:16])
}
