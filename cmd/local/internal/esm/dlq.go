package esm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
)

// Conditions of a dead-letter record, as Lambda names them.
const (
	ConditionRetriesExhausted = "RetryAttemptsExhausted"
)

// Store is the local on-failure destination: one JSON line per failed
// batch in Dir/<function>/<mapping>.jsonl.
type Store struct {
	Dir string
	mu  sync.Mutex
}

// Record is one dead-lettered batch: what Lambda sends to an SQS or SNS
// on-failure destination of a Kafka event source mapping (metadata and the
// records' coordinates, not their content), plus Function, Mapping and
// Error, which are local additions.
type Record struct {
	RequestContext  RequestContext   `json:"requestContext"`
	ResponseContext *ResponseContext `json:"responseContext"`
	Version         string           `json:"version"`
	Timestamp       string           `json:"timestamp"`
	KafkaBatchInfo  KafkaBatchInfo   `json:"KafkaBatchInfo"`

	Function string     `json:"function"` // local: the function's logical id
	Mapping  string     `json:"mapping"`  // local: the event or mapping resource name
	Error    *ErrorInfo `json:"error,omitempty"`
}

// RequestContext is the invocation record's requestContext.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionARN            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext is the last invocation's response.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError,omitempty"`
}

// KafkaBatchInfo locates the batch's records.
type KafkaBatchInfo struct {
	BatchSize        int                        `json:"batchSize"`
	EventSourceARN   string                     `json:"eventSourceArn,omitempty"`
	BootstrapServers string                     `json:"bootstrapServers"`
	PayloadSize      int                        `json:"payloadSize"`
	RecordsInfo      map[string]PartitionRecord `json:"recordsInfo"`
}

// PartitionRecord is the offsets and timestamps of a batch's records in one
// topic-partition.
type PartitionRecord struct {
	FirstRecordOffset    string `json:"firstRecordOffset"`
	LastRecordOffset     string `json:"lastRecordOffset"`
	FirstRecordTimestamp string `json:"firstRecordTimestamp"`
	LastRecordTimestamp  string `json:"lastRecordTimestamp"`
}

// ErrorInfo is the last attempt's error (local addition: the type and
// message the function returned, or why the invocation failed).
type ErrorInfo struct {
	Type    string `json:"errorType,omitempty"`
	Message string `json:"errorMessage,omitempty"`
}

const isoMillis = "2006-01-02T15:04:05.000Z"

// deadLetter writes batch to the store (or only logs when there is none).
func (m *Mapping) deadLetter(batch []*kgo.Record, attempts int, res *sandbox.Result) error {
	if m.cfg.DLQ == nil || m.cfg.Source.OnFailure == "" {
		m.logf("no on-failure destination: %d records are dropped", len(batch))
		return nil
	}
	payload, err := m.event(batch)
	if err != nil {
		return err
	}
	rec := Record{
		RequestContext: RequestContext{
			RequestID: sandbox.NewRequestID(), FunctionARN: m.cfg.FunctionARN,
			Condition: ConditionRetriesExhausted, ApproximateInvokeCount: attempts,
		},
		Version:   "1.0",
		Timestamp: m.cfg.Now().UTC().Format(isoMillis),
		KafkaBatchInfo: KafkaBatchInfo{
			BatchSize: len(batch), BootstrapServers: strings.Join(m.cfg.Brokers, ","),
			PayloadSize: len(payload), RecordsInfo: map[string]PartitionRecord{},
		},
		Function: m.cfg.Function, Mapping: m.cfg.Source.Name,
	}
	if m.cfg.Source.Kind == "MSK" {
		rec.KafkaBatchInfo.EventSourceARN = m.cfg.Source.EventSourceARN
	}
	if res != nil {
		rec.RequestContext.RequestID = res.RequestID
		rec.ResponseContext = &ResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST", FunctionError: res.FunctionError}
		if res.FunctionError != "" {
			var doc struct {
				Type    string `json:"errorType"`
				Message string `json:"errorMessage"`
			}
			if json.Unmarshal(res.Payload, &doc) == nil {
				rec.Error = &ErrorInfo{Type: doc.Type, Message: doc.Message}
			}
		} else {
			rec.Error = &ErrorInfo{Message: "batch item failures reported"}
		}
	}
	for _, r := range batch {
		key := partitionKey(r.Topic, r.Partition)
		ts := r.Timestamp.UTC().Format(isoMillis)
		pr, ok := rec.KafkaBatchInfo.RecordsInfo[key]
		if !ok {
			pr.FirstRecordOffset, pr.FirstRecordTimestamp = fmt.Sprint(r.Offset), ts
		}
		pr.LastRecordOffset, pr.LastRecordTimestamp = fmt.Sprint(r.Offset), ts
		rec.KafkaBatchInfo.RecordsInfo[key] = pr
	}
	if err := m.cfg.DLQ.Append(rec); err != nil {
		return err
	}
	m.logf("%d records dead-lettered (go run ./cmd/local dlq list %s)", len(batch), m.cfg.Function)
	return nil
}

// Append adds rec to its function's and mapping's file.
func (s *Store) Append(rec Record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("esm: dead-letter record: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Join(s.Dir, safeName(rec.Function))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("esm: dead-letter store: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, safeName(rec.Mapping)+".jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("esm: dead-letter store: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("esm: dead-letter store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("esm: dead-letter store: %w", err)
	}
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, strings.TrimLeft(s, "."))
}

// List returns the records of function (all functions for ""), oldest
// first per file, files in name order.
func (s *Store) List(function string) ([]Record, error) {
	pattern := filepath.Join(s.Dir, "*", "*.jsonl")
	if function != "" {
		pattern = filepath.Join(s.Dir, safeName(function), "*.jsonl")
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("esm: dead-letter store: %w", err)
	}
	slices.Sort(files)
	var out []Record
	for _, name := range files {
		recs, err := readRecords(name)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

func readRecords(name string) ([]Record, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("esm: dead-letter store: %w", err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("esm: dead-letter store: %s line %d: %w", name, n, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("esm: dead-letter store: %s: %w", name, err)
	}
	return out, nil
}

// Summary is one line describing r for `dlq list`.
func (r Record) Summary() string {
	var parts []string
	for _, key := range slices.Sorted(maps.Keys(r.KafkaBatchInfo.RecordsInfo)) {
		pr := r.KafkaBatchInfo.RecordsInfo[key]
		parts = append(parts, fmt.Sprintf("%s@%s..%s", key, pr.FirstRecordOffset, pr.LastRecordOffset))
	}
	reason := r.RequestContext.Condition
	if r.Error != nil {
		reason += ": " + strings.TrimPrefix(r.Error.Type+": "+r.Error.Message, ": ")
	}
	t, err := time.Parse(isoMillis, r.Timestamp)
	when := r.Timestamp
	if err == nil {
		when = t.Format(isoMillis)
	}
	return fmt.Sprintf("%s  %s  %s  %d records  %s  attempts=%d  %s",
		when, r.Function, r.Mapping, r.KafkaBatchInfo.BatchSize, strings.Join(parts, " "), r.RequestContext.ApproximateInvokeCount, reason)
}
