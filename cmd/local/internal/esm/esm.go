// Package esm emulates Lambda's Kafka event source mapping against the
// local broker: a consumer group per mapping (manual commits), records
// batched as Lambda batches them (BatchSize, MaximumBatchingWindowInSeconds)
// into an events.KafkaEvent, the function invoked through the sandbox, and
// Lambda's error handling: a failed batch is retried with backoff up to
// MaximumRetryAttempts and then recorded in the local dead-letter store in
// the shape Lambda sends to an SQS on-failure destination; with
// ReportBatchItemFailures, offsets are committed up to the first failed
// record of each partition and delivery resumes there.
package esm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
)

// MaxRetriesWithDestination is the retry bound Lambda applies when a
// mapping retries forever (MaximumRetryAttempts -1) but has an on-failure
// destination.
const MaxRetriesWithDestination = samtemplate.KafkaRetriesWithDestination

// Backoff bounds between retries of a failed batch.
const (
	FirstBackoff = time.Second
	MaxBackoff   = time.Minute
)

// Invoker runs one event through a function (sandbox.Set does).
type Invoker interface {
	Invoke(ctx context.Context, name string, payload []byte, opts sandbox.InvokeOptions) (*sandbox.Result, error)
}

// Config configures a Mapping.
type Config struct {
	Function    string // the function's logical id
	FunctionARN string // for the dead-letter records
	Source      samtemplate.KafkaSource
	Brokers     []string // the local broker's bootstrap addresses
	Invoker     Invoker
	DLQ         *Store // the on-failure destination; nil: failed batches are dropped after the retries, as Lambda does without a destination
	StackName   string // part of the default consumer group id
	Log         io.Writer
	// Now is the clock; default time.Now.
	Now func() time.Time
	// After is the timer of the batching window; default time.After.
	After func(time.Duration) <-chan time.Time
	// Sleep waits between retries and returns early with ctx's error;
	// default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Mapping is one running event source mapping.
type Mapping struct {
	cfg   Config
	group string
	cl    *kgo.Client

	lastFetchErr string // the last fetch error logged (Run's goroutine only)
}

// GroupID returns the consumer group a mapping uses: the template's
// ConsumerGroupId, else one derived from the stack, function and mapping
// names (Lambda uses the mapping's UUID; this one is stable across restarts).
func GroupID(stack, function string, k samtemplate.KafkaSource) string {
	if k.ConsumerGroupID != "" {
		return k.ConsumerGroupID
	}
	return fmt.Sprintf("%s-%s-%s", stack, function, k.Name)
}

// New connects a mapping's consumer; Run starts it. Close it.
func New(cfg Config) (*Mapping, error) {
	if cfg.Function == "" || cfg.Invoker == nil || len(cfg.Brokers) == 0 {
		return nil, errors.New("esm: a mapping needs a function, an invoker and brokers")
	}
	if len(cfg.Source.Topics) == 0 || cfg.Source.BatchSize < 1 {
		return nil, fmt.Errorf("esm: %s/%s: a mapping needs topics and a positive batch size", cfg.Function, cfg.Source.Name)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.FunctionARN == "" {
		cfg.FunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:" + cfg.Function
	}
	group := GroupID(cfg.StackName, cfg.Function, cfg.Source)
	reset := kgo.NewOffset().AtStart()
	if cfg.Source.StartingPosition == "LATEST" {
		reset = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(cfg.Source.Topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.AllowAutoTopicCreation(), // a topic nothing has written yet: the embedded broker creates it
	)
	if err != nil {
		return nil, fmt.Errorf("esm: %s/%s: consumer: %w", cfg.Function, cfg.Source.Name, err)
	}
	return &Mapping{cfg: cfg, group: group, cl: cl}, nil
}

// Group returns the mapping's consumer group id.
func (m *Mapping) Group() string { return m.group }

// Close leaves the group and closes the consumer.
func (m *Mapping) Close() { m.cl.Close() }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (m *Mapping) logf(format string, args ...any) {
	fmt.Fprintf(m.cfg.Log, "esm %s/%s: "+format+"\n", append([]any{m.cfg.Function, m.cfg.Source.Name}, args...)...)
}

// Run consumes until ctx ends, then returns ctx's error. Records are
// delivered in order per partition with one batch in flight; offsets are
// committed after a batch succeeds or is dead-lettered.
func (m *Mapping) Run(ctx context.Context) error {
	var buf []*kgo.Record
	for {
		var err error
		if buf, err = m.fill(ctx, buf); err != nil {
			return err
		}
		n := min(len(buf), m.cfg.Source.BatchSize)
		if err := m.deliver(ctx, buf[:n]); err != nil {
			return err
		}
		buf = buf[n:]
	}
}

// fill polls until buf holds a batch: BatchSize records, or at least one
// record once the batching window (started by the first record) is over.
func (m *Mapping) fill(ctx context.Context, buf []*kgo.Record) ([]*kgo.Record, error) {
	var window <-chan time.Time
	for len(buf) < m.cfg.Source.BatchSize {
		if len(buf) > 0 && window == nil {
			if m.cfg.Source.BatchingWindow <= 0 {
				return buf, nil
			}
			window = m.cfg.After(m.cfg.Source.BatchingWindow)
		}
		pctx, cancel := context.WithCancel(ctx)
		stop := make(chan struct{})
		go func(window <-chan time.Time) {
			select {
			case <-window: // nil until the first record: blocks
				cancel()
			case <-stop:
			}
		}(window)
		fs := m.cl.PollRecords(pctx, m.cfg.Source.BatchSize-len(buf))
		close(stop)
		windowOver := pctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			if msg := err.Error(); msg != m.lastFetchErr {
				m.lastFetchErr = msg // once per distinct error, not once per poll
				m.logf("fetch %s-%d: %v (the client retries)", t, p, err)
			}
		})
		if errors.Is(fs.Err0(), kgo.ErrClientClosed) {
			return nil, fmt.Errorf("esm: %s/%s: %w", m.cfg.Function, m.cfg.Source.Name, kgo.ErrClientClosed)
		}
		buf = append(buf, fs.Records()...)
		if windowOver && len(buf) > 0 {
			return buf, nil
		}
	}
	return buf, nil
}

// deliver invokes the function with batch until it succeeds, its retries
// are exhausted (then the dead-letter store gets it), or ctx ends. After a
// partial batch failure the records before each partition's first failed
// item are committed and the retry holds the records from it on.
func (m *Mapping) deliver(ctx context.Context, batch []*kgo.Record) error {
	maxRetries := m.cfg.Source.MaximumRetryAttempts
	if maxRetries < 0 && m.cfg.Source.OnFailure != "" {
		maxRetries = MaxRetriesWithDestination
	}
	backoff := FirstBackoff
	for attempt := 1; ; attempt++ {
		payload, err := m.event(batch)
		if err != nil {
			return err
		}
		res, err := m.cfg.Invoker.Invoke(ctx, m.cfg.Function, payload, sandbox.InvokeOptions{})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var failed []*kgo.Record
		var reason string
		switch {
		case err != nil:
			failed, reason = batch, err.Error()
		case res.FunctionError != "":
			failed, reason = batch, res.FunctionError
		case m.cfg.Source.ReportBatchItemFailures:
			failed, err = itemFailures(batch, res.Payload)
			if err != nil {
				failed, reason = batch, err.Error()
			}
		}
		if len(failed) == 0 {
			return m.commit(ctx, batch)
		}
		if len(failed) < len(batch) {
			// Commit what precedes the first failure of each partition;
			// redeliver from there.
			if err := m.commit(ctx, without(batch, failed)); err != nil {
				return err
			}
			batch = failed
		}
		if maxRetries >= 0 && attempt > maxRetries {
			m.logf("%d records failed after %d attempts (%s): retries exhausted", len(batch), attempt, reasonOf(reason, res))
			if err := m.deadLetter(batch, attempt, res); err != nil {
				return err
			}
			return m.commit(ctx, batch)
		}
		m.logf("attempt %d of %d records failed (%s); retrying in %s", attempt, len(batch), reasonOf(reason, res), backoff)
		if err := m.cfg.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, MaxBackoff)
	}
}

func reasonOf(reason string, res *sandbox.Result) string {
	if res != nil && res.ErrorType != "" {
		return res.FunctionError + ": " + res.ErrorType
	}
	if reason == "" {
		return "partial batch failure"
	}
	return reason
}

// without returns the records of batch not in drop.
func without(batch, drop []*kgo.Record) []*kgo.Record {
	gone := map[*kgo.Record]bool{}
	for _, r := range drop {
		gone[r] = true
	}
	var out []*kgo.Record
	for _, r := range batch {
		if !gone[r] {
			out = append(out, r)
		}
	}
	return out
}

// commit commits recs' offsets, retrying with backoff while the broker
// cannot be reached, until ctx ends.
func (m *Mapping) commit(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	backoff := FirstBackoff
	for {
		err := m.cl.CommitRecords(ctx, recs...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, kgo.ErrClientClosed) {
			return fmt.Errorf("esm: %s/%s: commit: %w", m.cfg.Function, m.cfg.Source.Name, err)
		}
		m.logf("commit: %v; retrying in %s", err, backoff)
		if err := m.cfg.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, MaxBackoff)
	}
}

// event builds the invocation payload of batch.
func (m *Mapping) event(batch []*kgo.Record) ([]byte, error) {
	return json.Marshal(Event(m.cfg.Source, m.cfg.Brokers, batch))
}

// Event is the events.KafkaEvent Lambda sends for batch.
func Event(src samtemplate.KafkaSource, brokers []string, batch []*kgo.Record) events.KafkaEvent {
	ev := events.KafkaEvent{
		EventSource:      src.EventSourceName(),
		BootstrapServers: strings.Join(brokers, ","),
		Records:          map[string][]events.KafkaRecord{},
	}
	if src.Kind == samtemplate.KafkaMSK {
		ev.EventSourceARN = src.EventSourceARN
	}
	for _, r := range batch {
		kr := events.KafkaRecord{
			Topic:         r.Topic,
			Partition:     int64(r.Partition),
			Offset:        r.Offset,
			Timestamp:     events.MilliSecondsEpochTime{Time: r.Timestamp},
			TimestampType: "CREATE_TIME",
			Headers:       []map[string]events.JSONNumberBytes{},
		}
		if r.Attrs.TimestampType() == 1 {
			kr.TimestampType = "LOG_APPEND_TIME"
		}
		if r.Key != nil {
			kr.Key = base64.StdEncoding.EncodeToString(r.Key)
		}
		if r.Value != nil {
			kr.Value = base64.StdEncoding.EncodeToString(r.Value)
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, map[string]events.JSONNumberBytes{h.Key: events.JSONNumberBytes(h.Value)})
		}
		key := partitionKey(r.Topic, r.Partition)
		ev.Records[key] = append(ev.Records[key], kr)
	}
	return ev
}

func partitionKey(topic string, partition int32) string {
	return topic + "-" + strconv.Itoa(int(partition))
}

// itemFailures reads a ReportBatchItemFailures response and returns, per
// partition, the batch's records from the lowest reported offset on. A
// response that is not a batch item failure document, or has no failures,
// is a success; an item whose identifier is missing, malformed or not in
// the batch fails the whole batch, as Lambda documents for stream sources.
func itemFailures(batch []*kgo.Record, payload []byte) ([]*kgo.Record, error) {
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier json.RawMessage `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if json.Unmarshal(payload, &resp) != nil || len(resp.BatchItemFailures) == 0 {
		return nil, nil
	}
	first := map[string]int64{}
	for _, f := range resp.BatchItemFailures {
		key, off, err := ParseItemIdentifier(f.ItemIdentifier)
		if err != nil {
			return nil, err
		}
		if cur, ok := first[key]; !ok || off < cur {
			first[key] = off
		}
	}
	var out []*kgo.Record
	found := map[string]bool{}
	for _, r := range batch {
		key := partitionKey(r.Topic, r.Partition)
		if off, ok := first[key]; ok && r.Offset >= off {
			out = append(out, r)
			if r.Offset == off {
				found[key] = true
			}
		}
	}
	for key, off := range first {
		if !found[key] {
			return nil, fmt.Errorf("batch item failure %s offset %d is not in the batch", key, off)
		}
	}
	return out, nil
}

// ParseItemIdentifier reads a Kafka batch item failure's itemIdentifier,
// {"partition": "<topic>-<partition>", "offset": <offset>} (the composite
// identifier of AWS's Powertools for Kafka event sources), and returns the
// "<topic>-<partition>" key and the offset. Anything else, a plain string
// included, is an error: Lambda fails the whole batch on an identifier it
// cannot read.
func ParseItemIdentifier(raw json.RawMessage) (string, int64, error) {
	var o struct {
		Partition string `json:"partition"`
		Offset    *int64 `json:"offset"`
	}
	if json.Unmarshal(raw, &o) != nil || o.Offset == nil || !validKey(o.Partition) {
		return "", 0, fmt.Errorf("batch item failure: itemIdentifier %s is not {\"partition\": \"<topic>-<partition>\", \"offset\": <offset>}", clip(raw))
	}
	return o.Partition, *o.Offset, nil
}

// clip shortens a response excerpt for an error message.
func clip(raw []byte) string {
	if len(raw) > 80 {
		return string(raw[:80]) + "..."
	}
	return string(raw)
}

func validKey(key string) bool {
	i := strings.LastIndexByte(key, '-')
	if i <= 0 {
		return false
	}
	_, err := strconv.ParseInt(key[i+1:], 10, 32)
	return err == nil
}
