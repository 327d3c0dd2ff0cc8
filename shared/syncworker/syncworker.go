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
// on; (6) the watermark moves and the id is recorded. Steps 4 and 6 are
// done for a whole sequence of records at once (one produce call, one
// store call), in that order. A crash between 4 and 6 makes the events run
// again: the outputs carry the same ids (a hash of the input event id and
// the output kind) and the write-back must be idempotent itself (System
// B's If-Match).
//
// A poison record (one changes.Decode refuses) is written with its reason
// to the dead-letter topic and counts as done, so its partition moves on.
// Any other failure (a system, the store or the broker down) fails the
// record and every later record of its sequence: the event source mapping
// retries them from the first, in order.
package syncworker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
	Reader    Reader           // both systems at one logical time
	Rules     merge.Rules      // MERGE_RULES
	Out       Publisher        // customer.unified, customer.conflicts, the dead-letter topic
	Dedup     dedup.Store      // processed ids and applied watermarks
	WriteBack WriteBack        // nil: off
	Metrics   emf.Recorder     // nil: none
	Log       *slog.Logger     // nil: none
	Now       func() time.Time // the clock of sync.lag.seconds; time.Now when nil
	// Concurrency bounds the sequences (partition numbers) processed at
	// once; 4 when zero.
	Concurrency int
	// SeenTTL is how long processed ids are remembered; DefaultSeenTTL when zero.
	SeenTTL time.Duration
}

// Process handles one batch and returns the records to retry; none when
// all were done. Records are processed in sequences, one per partition
// number: a partition's records in offset order, those of the same
// partition number on the other topic merged in by timestamp (the topics
// are keyed alike, so with equal partition counts a customer's changes of
// both systems are in one sequence). Sequences run concurrently (at most
// Concurrency); within one, every record is decoded, checked and merged in
// order, the outputs of all are published in one call, then the
// write-backs run in order and the outcomes are recorded in one call. A
// failure fails its record and every later one of its sequence.
func (w *Worker) Process(ctx context.Context, recs []Record) []Failure {
	seqs := sequences(recs)
	failed := make([]error, len(recs))
	conc := w.Concurrency
	if conc <= 0 {
		conc = 4
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for _, seq := range seqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if n, err := w.processSeq(ctx, recs, seq); err != nil {
				failed[seq[n]] = err
				for _, j := range seq[n+1:] {
					failed[j] = fmt.Errorf("syncworker: after an earlier failure at %s offset %d: %w", recs[seq[n]].Lane(), recs[seq[n]].Offset, ErrAfterFailure)
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

// sequences groups the records' indexes by partition number (in order of
// first appearance), each partition's in offset order, and merges the
// partitions of one number by timestamp (ties: the first lane seen).
func sequences(recs []Record) [][]int {
	type group struct {
		lanes map[string][]int
		order []string
	}
	groups := map[int32]*group{}
	var nums []int32
	for i := range recs {
		g := groups[recs[i].Partition]
		if g == nil {
			g = &group{lanes: map[string][]int{}}
			groups[recs[i].Partition] = g
			nums = append(nums, recs[i].Partition)
		}
		l := recs[i].Lane()
		if _, ok := g.lanes[l]; !ok {
			g.order = append(g.order, l)
		}
		g.lanes[l] = append(g.lanes[l], i)
	}
	out := make([][]int, 0, len(nums))
	for _, num := range nums {
		g := groups[num]
		heads := make([][]int, len(g.order))
		n := 0
		for k, l := range g.order {
			idx := g.lanes[l]
			sort.SliceStable(idx, func(a, b int) bool { return recs[idx[a]].Offset < recs[idx[b]].Offset })
			heads[k] = idx
			n += len(idx)
		}
		seq := make([]int, 0, n)
		for len(seq) < n {
			best := -1
			for k, h := range heads {
				if len(h) > 0 && (best < 0 || recs[h[0]].Timestamp.Before(recs[heads[best][0]].Timestamp)) {
					best = k
				}
			}
			seq = append(seq, heads[best][0])
			heads[best] = heads[best][1:]
		}
		out = append(out, seq)
	}
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

// ErrAfterFailure is wrapped by the failure of a record not tried because
// an earlier one of its sequence failed.
var ErrAfterFailure = errors.New("not tried, retried in order")

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

// step is what one record of a sequence came to before publishing.
type step struct {
	n      int           // its position in the sequence
	ev     changes.Event // decoded (not for a poison record)
	skip   bool          // seen or stale: its id is recorded, nothing published
	poison bool          // dead-lettered: done once its dead-letter record is published
	res    *merge.Result // the merge; nil when neither system holds the customer
}

// processSeq processes one sequence. On an error it returns the position
// of the first record not done.
func (w *Worker) processSeq(ctx context.Context, recs []Record, seq []int) (int, error) {
	var steps []step
	var msgs []kafka.Message
	applied := map[string]time.Time{} // key NUL system -> the watermark after the steps so far
	ids := map[string]bool{}          // event ids of the steps so far
	stop, stopErr := len(seq), error(nil)
	for n, i := range seq {
		st, out, err := w.prepare(ctx, &recs[i], applied, ids)
		if err != nil {
			stop, stopErr = n, err
			break
		}
		st.n = n
		steps = append(steps, st)
		msgs = append(msgs, out...)
	}
	if len(msgs) > 0 {
		if err := w.Out.Send(ctx, msgs...); err != nil {
			return 0, fmt.Errorf("syncworker: publish: %w", err)
		}
	}
	published := w.now()
	var entries []dedup.Entry
	var processed []step
	for k, st := range steps {
		if st.poison {
			continue
		}
		if !st.skip && st.res != nil && w.WriteBack != nil {
			if err := w.WriteBack.Apply(ctx, st.ev.Key, *st.res, st.ev); err != nil {
				stop, stopErr = st.n, fmt.Errorf("syncworker: event %s: write-back: %w", st.ev.ID, err)
				steps = steps[:k]
				break
			}
		}
		e := dedup.Entry{ID: st.ev.ID}
		if !st.skip {
			e.Key, e.System, e.LastUpdated = st.ev.Key, st.ev.Source.System, st.ev.Source.LastUpdated
			processed = append(processed, st)
		}
		entries = append(entries, e)
	}
	if err := w.Dedup.Record(ctx, w.ttl(), entries...); err != nil {
		first := stop
		for _, st := range steps {
			if !st.poison {
				first = st.n
				break
			}
		}
		return first, fmt.Errorf("syncworker: record processed events: %w", err)
	}
	for _, st := range steps {
		switch {
		case st.poison:
			w.count(MetricDeadLettered, 1)
		case st.skip:
			w.count(MetricSkipped, 1)
		}
	}
	w.count(MetricProcessed, int64(len(processed)))
	for _, st := range processed {
		if st.res != nil {
			w.count(emf.SyncConflicts, int64(len(st.res.Conflicts)))
		}
		if w.Metrics != nil {
			w.Metrics.Observe(emf.SyncLag, published.Sub(SourceTime(st.ev)).Seconds(), emf.Seconds)
		}
	}
	return stop, stopErr
}

// prepare decodes, checks and merges one record and returns its outputs.
// applied and ids carry the watermarks and event ids of the sequence's
// earlier records, not yet recorded in the store.
func (w *Worker) prepare(ctx context.Context, rec *Record, applied map[string]time.Time, ids map[string]bool) (step, []kafka.Message, error) {
	reason := rec.Unreadable
	var ev changes.Event
	if reason == nil {
		var err error
		if ev, err = changes.Decode(rec.Key, rec.Value, rec.Headers); err != nil {
			reason = err
		}
	}
	if reason != nil {
		w.logPoison(ctx, rec, reason)
		return step{poison: true}, []kafka.Message{deadLetter(rec, reason)}, nil
	}
	st := step{ev: ev}
	seen := ids[ev.ID]
	if !seen {
		var err error
		if seen, err = w.Dedup.Seen(ctx, ev.ID); err != nil {
			return step{}, nil, fmt.Errorf("syncworker: event %s: %w", ev.ID, err)
		}
	}
	ids[ev.ID] = true
	if seen {
		st.skip = true
		return st, nil, nil
	}
	wk := ev.Key + "\x00" + string(ev.Source.System)
	last, ok := applied[wk]
	if !ok {
		var err error
		if last, err = w.Dedup.Applied(ctx, ev.Key, ev.Source.System); err != nil {
			return step{}, nil, fmt.Errorf("syncworker: event %s: %w", ev.ID, err)
		}
	}
	if stale(ev, last) {
		applied[wk] = last
		st.skip = true
		return st, nil, nil
	}
	if ev.Source.LastUpdated.After(last) {
		last = ev.Source.LastUpdated
	}
	applied[wk] = last

	read := w.Reader.Read(ctx, ev.Key)
	if fs := read.Failures(); len(fs) > 0 {
		errs := make([]error, len(fs))
		for i, f := range fs {
			errs[i] = f.Err
		}
		return step{}, nil, fmt.Errorf("syncworker: event %s: read: %w", ev.ID, errors.Join(errs...))
	}
	if read.A != nil || read.B != nil {
		r := merge.Merge(read.A, read.B, w.Rules)
		st.res = &r
	}
	msgs, err := Outputs(ev, st.res, read.Freshness)
	if err != nil {
		return step{}, nil, fmt.Errorf("syncworker: event %s: %w", ev.ID, err)
	}
	return st, msgs, nil
}

func (w *Worker) ttl() time.Duration {
	if w.SeenTTL > 0 {
		return w.SeenTTL
	}
	return DefaultSeenTTL
}

// stale reports whether ev is older than the watermark applied for its
// customer and system: something newer was applied since. An event with
// the same lastUpdated as the watermark is not stale: sources stamp
// lastUpdated at their own resolution (System B to the second), so two
// different changes within one tick share it, and skipping the second
// would leave the merged view on the first. A repeat of the same change is
// caught by its event id instead; the worker re-reads both systems, so
// processing an equal one again only republishes the current merge.
func stale(ev changes.Event, applied time.Time) bool {
	return !applied.IsZero() && applied.After(ev.Source.LastUpdated)
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

// deadLetter is the dead-letter record of a poison record: its key,
// value and headers as they were, its reason and where it came from.
func deadLetter(rec *Record, reason error) kafka.Message {
	m := kafka.Message{Topic: TopicDeadLetter, Key: rec.Key, Value: rec.Value}
	for _, h := range rec.Headers {
		m.Headers = append(m.Headers, [2]string{h.Key, string(h.Value)})
	}
	return kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: append(m.Headers,
		[2]string{HeaderDLQReason, reason.Error()},
		[2]string{HeaderDLQTopic, rec.Topic},
		[2]string{HeaderDLQPartition, strconv.Itoa(int(rec.Partition))},
		[2]string{HeaderDLQOffset, strconv.FormatInt(rec.Offset, 10)},
	)}
}

func (w *Worker) logPoison(ctx context.Context, rec *Record, reason error) {
	if w.Log != nil {
		w.Log.WarnContext(ctx, "poison change record: sent to the dead-letter topic",
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "reason", reason.Error())
	}
}

// OutputID is the id of the output of kind ("unified", "conflicts") for the
// change event sourceID: 32 hex digits of a SHA-256, the same on every
// redelivery.
func OutputID(sourceID, kind string) string {
	h := sha256.Sum256([]byte("ucs-sync-v1\x00" + sourceID + "\x00" + kind))
	return hex.EncodeToString(h[:16])
}
