// Package emf records metrics and writes them as CloudWatch Embedded Metric
// Format (EMF) documents, one JSON object per line, to a writer (stdout in
// Lambda, where CloudWatch Logs extracts the metrics from the log events).
//
// A Metrics collects counts, samples and properties during one invocation
// and Flush writes them. Several samples of one metric in one flush become a
// value array, so CloudWatch keeps every sample and can compute percentiles
// (system_b.latency p99). The limits of the specification are respected by
// splitting: at most MaxMetricsPerDocument metrics per document and
// MaxValuesPerMetric values per metric; a metric with more samples continues
// in the next document.
//
// Properties are non-metric members for searching the logs (a request id,
// a snapshot version). They must never hold personal data: Set refuses
// names such as "email" or "token", and string values are scrubbed of
// email addresses.
package emf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme/unified-customer-service/shared/telemetry/internal/pii"
)

// Unit is the CloudWatch unit of a metric.
type Unit string

// Units used by the service.
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
	Seconds      Unit = "Seconds"
)

// Metric names used by the service (the consistency model's monitoring table).
const (
	// SyncConflicts counts field-level conflicts detected (Count).
	SyncConflicts = "sync.conflicts.total"
	// SyncLag is now minus the System A snapshot's exported_at (Seconds).
	// The System A capture records its first half: the acknowledgement of
	// a batch of change events minus the snapshot's exported_at.
	SyncLag = "sync.lag.seconds"
	// SyncPartialResults counts degraded answers, one system down (Count).
	SyncPartialResults = "sync.partial_results.total"
	// SystemBLatency is the duration of one System B call, one sample per
	// call (Milliseconds); CloudWatch gives its p99.
	SystemBLatency = "system_b.latency"
	// SystemBTokenRefreshes counts reads of System B's token from Secrets
	// Manager made because System B refused the cached one (a rotation),
	// failed reads included (Count).
	SystemBTokenRefreshes = "system_b.token_refreshes.total"
	// SnapshotRefreshFailures counts failed System A snapshot refreshes
	// while the last good snapshot keeps being served (Count).
	SnapshotRefreshFailures = "systema.snapshot_refresh_failures.total"
	// SnapshotRejectedOlder counts System A snapshot refreshes that refused
	// a snapshot exported before the one served (it keeps serving); counted
	// on every check while the older object is the current one (Count).
	SnapshotRejectedOlder = "systema.snapshot_rejected_older.total"
	// ReconcileCustomers counts customers visited by a reconciliation run (Count).
	ReconcileCustomers = "reconcile.customers.total"
	// ReconcileOutOfSync counts customers found not in sync by a
	// reconciliation run, those present in one system only included (Count).
	ReconcileOutOfSync = "reconcile.out_of_sync.total"
	// ReconcileIncomplete counts reconciliation runs that stopped before
	// the end (a system failed, the deadline came): their partial report
	// says "complete": false and the invocation fails (Count).
	ReconcileIncomplete = "reconcile.incomplete.total"
	// ReconcileBadRecordsSystemA counts malformed System A snapshot rows a
	// reconciliation run skipped and listed in its details (Count).
	ReconcileBadRecordsSystemA = "reconcile.bad_records.system_a.total"
	// ReconcileBadRecordsSystemB counts malformed System B list items a
	// reconciliation run skipped and listed in its details (Count).
	ReconcileBadRecordsSystemB = "reconcile.bad_records.system_b.total"
	// The change capture's metrics. capture.events.published is counted per
	// topic and op as one name each, capture.events.published.<system>.<op>
	// (system_a or system_b; create, update or delete), like the other
	// per-system names here: the Function dimension is the only one.
	//
	// CaptureAPublishedCreates counts create events the broker acknowledged
	// on customer.changes.system-a (Count).
	CaptureAPublishedCreates = "capture.events.published.system_a.create"
	// CaptureAPublishedUpdates counts update events acknowledged on
	// customer.changes.system-a (Count).
	CaptureAPublishedUpdates = "capture.events.published.system_a.update"
	// CaptureAPublishedDeletes counts delete events acknowledged on
	// customer.changes.system-a (Count).
	CaptureAPublishedDeletes = "capture.events.published.system_a.delete"
	// CaptureDuration is the duration of one capture invocation (a snapshot
	// diff, a poll, one webhook delivery), whatever its outcome (Milliseconds).
	CaptureDuration = "capture.duration"
	// CaptureFailures counts captures that failed (the invocation errs and
	// is retried; its state did not advance) (Count).
	CaptureFailures = "capture.failures.total"
	// CaptureRejectedOlder counts System A snapshot versions the capture
	// refused because they were exported before the version it captured
	// last (Count).
	CaptureRejectedOlder = "capture.rejected_older.system_a.total"
	// CaptureBadRecordsSystemA counts malformed System A rows the capture
	// skipped, in the new or the previous snapshot (Count).
	CaptureBadRecordsSystemA = "capture.bad_records.system_a.total"
	// CaptureBPublishedCreates, CaptureBPublishedUpdates and
	// CaptureBPublishedDeletes count the events System B's capture (a poll
	// or one webhook delivery) published on customer.changes.system-b and
	// the broker acknowledged (Count); CaptureBPublishedName picks one by op.
	CaptureBPublishedCreates = "capture.events.published.system_b.create"
	CaptureBPublishedUpdates = "capture.events.published.system_b.update"
	CaptureBPublishedDeletes = "capture.events.published.system_b.delete"
	// CaptureLag is the first half of sync.lag.seconds: the time from the
	// change in its source (its lastUpdated) to the broker's acknowledgement
	// of its event, one sample per event (Seconds).
	CaptureLag = "capture.lag.seconds"
	// CaptureBadRecordsSystemB counts malformed System B list items a poll
	// skipped (logged by position, never by value) (Count).
	CaptureBadRecordsSystemB = "capture.bad_records.system_b.total"
	// CaptureWebhookRejected counts webhook deliveries refused with 401: a
	// missing, malformed, stale or wrong signature (Count).
	CaptureWebhookRejected = "capture.webhook.rejected.total"
	// CaptureWebhookFailed counts deliveries answered 503: the change was
	// not acknowledged by the broker, or the secret could not be read;
	// System B delivers them again (Count).
	CaptureWebhookFailed = "capture.webhook.failed.total"
)

// CaptureBPublishedName is the name of System B's published-events count
// for a change event's op ("c", "u" or "d"; "" for another).
func CaptureBPublishedName(op string) string {
	switch op {
	case "c":
		return CaptureBPublishedCreates
	case "u":
		return CaptureBPublishedUpdates
	case "d":
		return CaptureBPublishedDeletes
	}
	return ""
}

// DefaultNamespace is the namespace New uses when given an empty one (the
// default of METRICS_NAMESPACE).
const DefaultNamespace = "UnifiedCustomerService"

// Limits of the EMF specification and of CloudWatch.
const (
	MaxMetricsPerDocument = 100  // MetricDefinitions in one MetricDirective
	MaxValuesPerMetric    = 100  // values in one metric's value array
	MaxDimensions         = 30   // dimension keys in one DimensionSet
	MaxNameLength         = 255  // metric and namespace names
	maxErrors             = 10   // recording errors kept per flush
	maxPropertyLength     = 1024 // property values are truncated beyond this
)

// Errors returned by New and Flush.
var (
	ErrInvalidNamespace = errors.New("emf: invalid namespace")
	ErrInvalidDimension = errors.New("emf: invalid dimension")
	ErrInvalidMetric    = errors.New("emf: invalid metric")
	ErrInvalidProperty  = errors.New("emf: invalid property")
)

// Recorder is what code that emits metrics needs; *Metrics implements it.
// Define narrower interfaces where used if a caller needs less.
type Recorder interface {
	Count(name string, n int64)
	Observe(name string, value float64, unit Unit)
	Set(key string, value any)
	Flush() error
}

var _ Recorder = (*Metrics)(nil)

// series holds the samples of one metric since the last flush.
type series struct {
	unit   Unit
	values []float64
	count  bool // recorded by Count: values holds one running sum
}

// Metrics records metrics and properties and writes them as EMF documents.
// It is safe for concurrent use. The zero value is not usable; call New.
type Metrics struct {
	w         io.Writer
	namespace string
	dims      map[string]string
	dimKeys   []string // sorted
	now       func() time.Time

	mu     sync.Mutex
	series map[string]*series
	props  map[string]json.RawMessage
	errs   []error
}

// New returns a Metrics writing to w under namespace (DefaultNamespace when
// empty) with the dimensions dims, e.g. {"Function": "lookup"}, on every
// metric. now is the clock for the documents' timestamp (time.Now when
// nil). The namespace must be at most 255 characters, must not start with
// ':' nor with "AWS/"; there may be at most 30 dimensions, whose names are
// non-empty and not "_aws" and whose values are non-empty.
func New(w io.Writer, namespace string, dims map[string]string, now func() time.Time) (*Metrics, error) {
	if w == nil {
		return nil, errors.New("emf: nil writer")
	}
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if err := checkNamespace(namespace); err != nil {
		return nil, err
	}
	if len(dims) > MaxDimensions {
		return nil, fmt.Errorf("%w: %d dimensions, at most %d", ErrInvalidDimension, len(dims), MaxDimensions)
	}
	keys := append([]string{}, slices.Sorted(maps.Keys(dims))...) // [] not null when empty
	for _, k := range keys {
		switch {
		case k == "" || k == "_aws" || len(k) > MaxNameLength:
			return nil, fmt.Errorf("%w: name %q", ErrInvalidDimension, k)
		case dims[k] == "" || len(dims[k]) > MaxNameLength:
			return nil, fmt.Errorf("%w: %q has an empty or too long value", ErrInvalidDimension, k)
		}
	}
	if now == nil {
		now = time.Now
	}
	return &Metrics{
		w:         w,
		namespace: namespace,
		dims:      maps.Clone(dims),
		dimKeys:   keys,
		now:       now,
		series:    map[string]*series{},
		props:     map[string]json.RawMessage{},
	}, nil
}

// checkNamespace validates a CloudWatch namespace.
func checkNamespace(ns string) error {
	switch {
	case len(ns) > MaxNameLength:
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidNamespace, MaxNameLength)
	case strings.HasPrefix(ns, ":"):
		return fmt.Errorf("%w: %q starts with ':'", ErrInvalidNamespace, ns)
	case strings.HasPrefix(ns, "AWS/"):
		return fmt.Errorf("%w: %q is reserved for AWS", ErrInvalidNamespace, ns)
	}
	return nil
}

// Count adds n to the counter name (unit Count). Several calls before a
// flush add up to one value; a count of 0 is written as 0, so an alarm sees
// a data point rather than missing data.
func (m *Metrics) Count(name string, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.seriesLocked(name, Count, true)
	if s == nil {
		return
	}
	if len(s.values) == 0 {
		s.values = append(s.values, 0)
	}
	s.values[0] += float64(n)
}

// Observe records one sample of name in unit. Samples of one metric in one
// flush are written as a value array (split beyond MaxValuesPerMetric). NaN
// and infinite values cannot be written and are refused (Flush reports them).
func (m *Metrics) Observe(name string, value float64, unit Unit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if math.IsNaN(value) || math.IsInf(value, 0) {
		m.failLocked(fmt.Errorf("%w: %q: value %v is not a finite number", ErrInvalidMetric, name, value))
		return
	}
	if s := m.seriesLocked(name, unit, false); s != nil {
		s.values = append(s.values, value)
	}
}

// ObserveDuration records d as one sample of name in Milliseconds.
func (m *Metrics) ObserveDuration(name string, d time.Duration) {
	m.Observe(name, float64(d)/float64(time.Millisecond), Milliseconds)
}

// seriesLocked returns the series of name, creating it, or nil (recording
// an error) when the name or unit is invalid or clashes with its first use.
func (m *Metrics) seriesLocked(name string, unit Unit, count bool) *series {
	if err := m.checkMetricLocked(name, unit); err != nil {
		m.failLocked(err)
		return nil
	}
	s := m.series[name]
	if s == nil {
		s = &series{unit: unit, count: count}
		m.series[name] = s
		return s
	}
	if s.unit != unit || s.count != count {
		m.failLocked(fmt.Errorf("%w: %q recorded as %s (count=%v), then as %s (count=%v)",
			ErrInvalidMetric, name, s.unit, s.count, unit, count))
		return nil
	}
	return s
}

// checkMetricLocked validates a metric name and unit.
func (m *Metrics) checkMetricLocked(name string, unit Unit) error {
	switch {
	case name == "" || len(name) > MaxNameLength:
		return fmt.Errorf("%w: name %q is empty or longer than %d", ErrInvalidMetric, name, MaxNameLength)
	case name == "_aws":
		return fmt.Errorf("%w: name %q is reserved", ErrInvalidMetric, name)
	case m.dims[name] != "":
		return fmt.Errorf("%w: name %q is a dimension", ErrInvalidMetric, name)
	}
	switch unit {
	case Count, Milliseconds, Seconds:
		return nil
	}
	return fmt.Errorf("%w: %q has unknown unit %q", ErrInvalidMetric, name, unit)
}

// Set records a property: a non-metric member written in every document of
// the next flush, e.g. "requestId". A later Set of the same key replaces the
// value. Keys naming personal data or secrets (email, phone, firstName,
// lastName, token, authorization...) are refused, string values are
// scrubbed of email addresses and truncated to 1024 bytes, and keys that
// clash with a metric or a dimension are dropped at flush; refusals are
// reported by Flush.
func (m *Metrics) Set(key string, value any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case key == "" || key == "_aws" || m.dims[key] != "":
		m.failLocked(fmt.Errorf("%w: key %q is empty, reserved or a dimension", ErrInvalidProperty, key))
		return
	case pii.SensitiveKey(key):
		m.failLocked(fmt.Errorf("%w: key %q names personal data or a secret", ErrInvalidProperty, key))
		return
	}
	if s, ok := value.(string); ok {
		value = truncate(pii.Scrub(s), maxPropertyLength)
	}
	raw, err := json.Marshal(value)
	if err != nil {
		m.failLocked(fmt.Errorf("%w: %q: %w", ErrInvalidProperty, key, err))
		return
	}
	m.props[key] = raw
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // s[n] continues a sequence
		n--
	}
	return s[:n]
}

// failLocked keeps a recording error for the next Flush, at most maxErrors.
func (m *Metrics) failLocked(err error) {
	if len(m.errs) < maxErrors {
		m.errs = append(m.errs, err)
	}
}

// Flush writes the recorded metrics as EMF documents, one JSON object per
// line, and resets the recorded metrics, properties and errors (the
// namespace and dimensions stay). Nothing is written when no metric was
// recorded. The error joins the recording errors since the last flush
// (refused samples or properties) and any write error; valid data is written
// either way.
func (m *Metrics) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := m.errs
	m.errs = nil
	for k := range m.props {
		if m.series[k] != nil {
			errs = append(errs, fmt.Errorf("%w: key %q is also a metric; the metric was written", ErrInvalidProperty, k))
		}
	}
	docs, err := m.documentsLocked(m.now())
	clear(m.series)
	clear(m.props)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, doc := range docs {
		if _, err := m.w.Write(doc); err != nil {
			errs = append(errs, fmt.Errorf("emf: write: %w", err))
			break
		}
	}
	return errors.Join(errs...)
}

// documentsLocked encodes the recorded metrics as newline-terminated EMF
// documents. Chunk r of every metric (values [r*100, r*100+100)) goes to
// round r; each round is split in documents of at most 100 metrics.
func (m *Metrics) documentsLocked(now time.Time) ([][]byte, error) {
	names := slices.Sorted(maps.Keys(m.series))
	var docs [][]byte
	for round := 0; ; round++ {
		var batch []string
		for _, name := range names {
			if len(m.series[name].values) > round*MaxValuesPerMetric {
				batch = append(batch, name)
			}
		}
		if len(batch) == 0 {
			return docs, nil
		}
		for chunk := range slices.Chunk(batch, MaxMetricsPerDocument) {
			doc, err := m.encodeLocked(now, chunk, round)
			if err != nil {
				return nil, err
			}
			docs = append(docs, doc)
		}
	}
}

// The EMF document model (see the specification's "Root node",
// "Metadata object", "MetricDirective" and "MetricDefinition").
type (
	metadata struct {
		Timestamp         int64             `json:"Timestamp"`
		CloudWatchMetrics []metricDirective `json:"CloudWatchMetrics"`
	}
	metricDirective struct {
		Namespace  string             `json:"Namespace"`
		Dimensions [][]string         `json:"Dimensions"`
		Metrics    []metricDefinition `json:"Metrics"`
	}
	metricDefinition struct {
		Name string `json:"Name"`
		Unit Unit   `json:"Unit"`
	}
)

// encodeLocked encodes one document holding chunk number round of the
// values of the metrics names.
func (m *Metrics) encodeLocked(now time.Time, names []string, round int) ([]byte, error) {
	root := make(map[string]any, 1+len(m.props)+len(m.dims)+len(names))
	for k, v := range m.props {
		root[k] = v
	}
	dir := metricDirective{
		Namespace:  m.namespace,
		Dimensions: [][]string{m.dimKeys},
		Metrics:    make([]metricDefinition, 0, len(names)),
	}
	for _, name := range names {
		s := m.series[name]
		lo := round * MaxValuesPerMetric
		vals := s.values[lo:min(lo+MaxValuesPerMetric, len(s.values))]
		if len(vals) == 1 {
			root[name] = vals[0]
		} else {
			root[name] = vals
		}
		dir.Metrics = append(dir.Metrics, metricDefinition{Name: name, Unit: s.unit})
	}
	for k, v := range m.dims { // dimensions win over properties of the same name
		root[k] = v
	}
	root["_aws"] = metadata{Timestamp: now.UnixMilli(), CloudWatchMetrics: []metricDirective{dir}}
	b, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("emf: encode document: %w", err)
	}
	return append(b, '\n'), nil
}
