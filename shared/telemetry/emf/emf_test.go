package emf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedNow is the clock of the tests.
func fixedNow() time.Time { return time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC) }

// newTest returns a Metrics writing to a buffer with the Function dimension.
func newTest(t *testing.T) (*Metrics, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	m, err := New(&buf, "UnifiedCustomerService", map[string]string{"Function": "lookup"}, fixedNow)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, &buf
}

// document is one decoded EMF document.
type document map[string]any

// decodeAndValidate splits out into lines, decodes each and checks it
// against the structure the EMF specification requires; it returns the
// documents.
func decodeAndValidate(t *testing.T, out []byte) []document {
	t.Helper()
	var docs []document
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d document
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", len(docs)+1, err, sc.Bytes())
		}
		if dec.More() {
			t.Fatalf("line %d has data after the JSON object", len(docs)+1)
		}
		validate(t, d)
		docs = append(docs, d)
	}
	if !bytes.HasSuffix(out, []byte("\n")) && len(out) > 0 {
		t.Errorf("output does not end with a newline")
	}
	return docs
}

// validate checks one document against the specification.
func validate(t *testing.T, d document) {
	t.Helper()
	aws, ok := d["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("_aws is missing or not an object: %v", d["_aws"])
	}
	ts, ok := aws["Timestamp"].(json.Number)
	if !ok {
		t.Fatalf("_aws.Timestamp is missing or not a number: %v", aws["Timestamp"])
	}
	if ms, err := ts.Int64(); err != nil || ms < 1e12 {
		t.Errorf("_aws.Timestamp = %v, want epoch milliseconds", ts)
	}
	dirs, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(dirs) == 0 {
		t.Fatalf("_aws.CloudWatchMetrics is missing or empty: %v", aws["CloudWatchMetrics"])
	}
	for _, di := range dirs {
		dir, ok := di.(map[string]any)
		if !ok {
			t.Fatalf("MetricDirective is not an object: %v", di)
		}
		if ns, _ := dir["Namespace"].(string); ns == "" {
			t.Errorf("MetricDirective.Namespace is missing or empty: %v", dir["Namespace"])
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok {
			t.Fatalf("MetricDirective.Dimensions is not an array: %v", dir["Dimensions"])
		}
		for _, si := range sets {
			set, ok := si.([]any)
			if !ok || len(set) > MaxDimensions {
				t.Fatalf("DimensionSet is not an array of at most 30 keys: %v", si)
			}
			for _, k := range set {
				ks, ok := k.(string)
				if !ok {
					t.Fatalf("dimension key is not a string: %v", k)
				}
				if _, ok := d[ks].(string); !ok {
					t.Errorf("dimension %q is not a string member of the root: %v", ks, d[ks])
				}
			}
		}
		metrics, ok := dir["Metrics"].([]any)
		if !ok || len(metrics) == 0 || len(metrics) > MaxMetricsPerDocument {
			t.Fatalf("MetricDirective.Metrics is not an array of 1..100: %d", len(metrics))
		}
		for _, mi := range metrics {
			def, ok := mi.(map[string]any)
			if !ok {
				t.Fatalf("MetricDefinition is not an object: %v", mi)
			}
			name, _ := def["Name"].(string)
			if name == "" {
				t.Fatalf("MetricDefinition.Name is missing: %v", def)
			}
			switch def["Unit"] {
			case string(Count), string(Milliseconds), string(Seconds):
			default:
				t.Errorf("metric %q has unit %v", name, def["Unit"])
			}
			switch v := d[name].(type) {
			case json.Number:
			case []any:
				if len(v) == 0 || len(v) > MaxValuesPerMetric {
					t.Errorf("metric %q has %d values, want 1..100", name, len(v))
				}
				for _, x := range v {
					if _, ok := x.(json.Number); !ok {
						t.Errorf("metric %q has a non-number value %v", name, x)
					}
				}
			default:
				t.Errorf("metric %q is not a number or array of numbers member: %v", name, d[name])
			}
		}
	}
}

// values returns the numbers of member name across docs, in order.
func values(t *testing.T, docs []document, name string) []float64 {
	t.Helper()
	var out []float64
	add := func(x any) {
		f, err := x.(json.Number).Float64()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, f)
	}
	for _, d := range docs {
		switch v := d[name].(type) {
		case nil:
		case []any:
			for _, x := range v {
				add(x)
			}
		default:
			add(v)
		}
	}
	return out
}

func TestFlushGolden(t *testing.T) {
	m, buf := newTest(t)
	m.Set("requestId", "c6af9ac6-7b61-11e6-9a41-93e812345678")
	m.Set("snapshotVersion", "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY")
	m.Count(SyncConflicts, 2)
	m.Count(SyncConflicts, 1)
	m.Count(SyncPartialResults, 0)
	m.Observe(SyncLag, 3723.5, Seconds)
	m.Observe(SystemBLatency, 41, Milliseconds)
	m.ObserveDuration(SystemBLatency, 12500*time.Microsecond)
	m.Observe(SystemBLatency, 230, Milliseconds)
	if err := m.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	got := buf.Bytes()
	docs := decodeAndValidate(t, got)
	if len(docs) != 1 {
		t.Fatalf("got %d documents, want 1", len(docs))
	}
	golden := filepath.Join("testdata", "flush.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update if intended)\ngot:  %s\nwant: %s", golden, got, want)
	}
}

func TestFlushValues(t *testing.T) {
	m, buf := newTest(t)
	m.Count(SyncConflicts, 2)
	m.Count(SyncConflicts, 5)
	m.Count(SyncPartialResults, 0)
	m.Observe(SystemBLatency, 41, Milliseconds)
	m.Observe(SystemBLatency, 7.25, Milliseconds)
	m.Set("requestId", "r-1")
	if err := m.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	docs := decodeAndValidate(t, buf.Bytes())
	tests := []struct {
		name string
		want []float64
	}{
		{SyncConflicts, []float64{7}},
		{SyncPartialResults, []float64{0}},
		{SystemBLatency, []float64{41, 7.25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := values(t, docs, tt.name); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("values = %v, want %v", got, tt.want)
			}
		})
	}
	d := docs[0]
	if d["Function"] != "lookup" || d["requestId"] != "r-1" {
		t.Errorf("Function = %v, requestId = %v", d["Function"], d["requestId"])
	}
	ts, _ := d["_aws"].(map[string]any)["Timestamp"].(json.Number).Int64()
	if ts != fixedNow().UnixMilli() {
		t.Errorf("Timestamp = %d, want %d", ts, fixedNow().UnixMilli())
	}
}

func TestFlushSplits(t *testing.T) {
	tests := []struct {
		name      string
		metrics   int // distinct metrics with one sample each
		samples   int // samples of system_b.latency
		wantDocs  int
		wantSizes []int // number of metrics per document
	}{
		{"100 values fit", 0, 100, 1, []int{1}},
		{"250 values", 0, 250, 3, []int{1, 1, 1}},
		{"100 metrics fit", 100, 0, 1, []int{100}},
		{"150 metrics", 150, 0, 2, []int{100, 50}},
		{"both", 149, 150, 3, []int{100, 50, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, buf := newTest(t)
			m.Set("requestId", "r-2")
			var want []float64
			for i := range tt.samples {
				want = append(want, float64(i))
				m.Observe(SystemBLatency, float64(i), Milliseconds)
			}
			for i := range tt.metrics {
				m.Count(fmt.Sprintf("m%03d", i), int64(i))
			}
			if err := m.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			docs := decodeAndValidate(t, buf.Bytes())
			if len(docs) != tt.wantDocs {
				t.Fatalf("got %d documents, want %d", len(docs), tt.wantDocs)
			}
			for i, d := range docs {
				dir := d["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
				if n := len(dir["Metrics"].([]any)); n != tt.wantSizes[i] {
					t.Errorf("document %d has %d metrics, want %d", i, n, tt.wantSizes[i])
				}
				if d["requestId"] != "r-2" || d["Function"] != "lookup" {
					t.Errorf("document %d lacks the properties or dimensions", i)
				}
			}
			if got := values(t, docs, SystemBLatency); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("latency samples across documents = %d values, want %d in order", len(got), len(want))
			}
			for i := range tt.metrics {
				name := fmt.Sprintf("m%03d", i)
				if got := values(t, docs, name); len(got) != 1 || got[0] != float64(i) {
					t.Errorf("%s = %v, want [%d]", name, got, i)
				}
			}
		})
	}
}

func TestFlushResets(t *testing.T) {
	m, buf := newTest(t)
	m.Count(SyncConflicts, 1)
	m.Set("requestId", "r-1")
	if err := m.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	buf.Reset()
	if err := m.Flush(); err != nil || buf.Len() != 0 {
		t.Fatalf("empty Flush wrote %q, err %v", buf.String(), err)
	}
	m.Count(SyncPartialResults, 1)
	if err := m.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	docs := decodeAndValidate(t, buf.Bytes())
	if _, ok := docs[0][SyncConflicts]; ok {
		t.Errorf("a metric of the previous flush was written again")
	}
	if _, ok := docs[0]["requestId"]; ok {
		t.Errorf("a property of the previous flush was written again")
	}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name    string
		record  func(m *Metrics)
		wantErr error
		absent  string // text that must not reach the output
	}{
		{"NaN", func(m *Metrics) { m.Observe(SyncLag, math.NaN(), Seconds) }, ErrInvalidMetric, ""},
		{"Inf", func(m *Metrics) { m.Observe(SyncLag, math.Inf(1), Seconds) }, ErrInvalidMetric, ""},
		{"unknown unit", func(m *Metrics) { m.Observe(SyncLag, 1, "Hours") }, ErrInvalidMetric, "Hours"},
		{"unit clash", func(m *Metrics) {
			m.Observe(SystemBLatency, 1, Milliseconds)
			m.Observe(SystemBLatency, 1, Seconds)
		}, ErrInvalidMetric, ""},
		{"count then observe", func(m *Metrics) {
			m.Count(SyncPartialResults, 1)
			m.Observe(SyncPartialResults, 1, Count)
		}, ErrInvalidMetric, ""},
		{"empty name", func(m *Metrics) { m.Count("", 1) }, ErrInvalidMetric, ""},
		{"reserved name", func(m *Metrics) { m.Count("_aws", 1) }, ErrInvalidMetric, ""},
		{"dimension name", func(m *Metrics) { m.Count("Function", 1) }, ErrInvalidMetric, ""},
		{"long name", func(m *Metrics) { m.Count(strings.Repeat("x", 256), 1) }, ErrInvalidMetric, ""},
		{"email property", func(m *Metrics) { m.Set("email", "ana@example.com") }, ErrInvalidProperty, "ana@example.com"},
		{"token property", func(m *Metrics) { m.Set("systemBToken", "s3cr3t-t0ken") }, ErrInvalidProperty, "s3cr3t-t0ken"},
		{"property is a dimension", func(m *Metrics) { m.Set("Function", "other") }, ErrInvalidProperty, "other"},
		{"property is a metric", func(m *Metrics) { m.Set(SyncConflicts, "x-prop") }, ErrInvalidProperty, "x-prop"},
		{"unencodable property", func(m *Metrics) { m.Set("fn", func() {}) }, ErrInvalidProperty, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, buf := newTest(t)
			m.Count(SyncConflicts, 1)
			tt.record(m)
			err := m.Flush()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Flush error = %v, want %v", err, tt.wantErr)
			}
			docs := decodeAndValidate(t, buf.Bytes())
			if got := values(t, docs, SyncConflicts); len(got) != 1 || got[0] != 1 {
				t.Errorf("valid data was not written: %v", got)
			}
			if tt.absent != "" && strings.Contains(buf.String(), tt.absent) {
				t.Errorf("output contains %q: %s", tt.absent, buf.String())
			}
			if err := m.Flush(); err != nil {
				t.Errorf("errors were not reset by Flush: %v", err)
			}
		})
	}
}

func TestSetScrubsAndTruncates(t *testing.T) {
	m, buf := newTest(t)
	m.Count(SyncConflicts, 1)
	m.Set("error", "get customer ana@example.com: timeout")
	m.Set("note", strings.Repeat("é", 600)) // 1200 bytes
	m.Set("count", 3)
	if err := m.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	d := decodeAndValidate(t, buf.Bytes())[0]
	if d["error"] != "get customer [email]: timeout" {
		t.Errorf("error = %q", d["error"])
	}
	if n := len(d["note"].(string)); n != 1024 {
		t.Errorf("note has %d bytes, want 1024", n)
	}
	if d["count"] != json.Number("3") {
		t.Errorf("count = %v", d["count"])
	}
}

func TestNew(t *testing.T) {
	many := map[string]string{}
	for i := range 31 {
		many[fmt.Sprintf("d%d", i)] = "v"
	}
	tests := []struct {
		name      string
		namespace string
		dims      map[string]string
		wantErr   error
		wantNS    string
	}{
		{"default namespace", "", nil, nil, DefaultNamespace},
		{"custom", "Acme/UCS", map[string]string{"Function": "sync"}, nil, "Acme/UCS"},
		{"aws prefix", "AWS/Lambda", nil, ErrInvalidNamespace, ""},
		{"colon", ":x", nil, ErrInvalidNamespace, ""},
		{"too long", strings.Repeat("n", 256), nil, ErrInvalidNamespace, ""},
		{"31 dimensions", "", many, ErrInvalidDimension, ""},
		{"empty key", "", map[string]string{"": "v"}, ErrInvalidDimension, ""},
		{"reserved key", "", map[string]string{"_aws": "v"}, ErrInvalidDimension, ""},
		{"empty value", "", map[string]string{"Function": ""}, ErrInvalidDimension, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			m, err := New(&buf, tt.namespace, tt.dims, fixedNow)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			m.Count(SyncConflicts, 1)
			if err := m.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			d := decodeAndValidate(t, buf.Bytes())[0]
			dir := d["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
			if dir["Namespace"] != tt.wantNS {
				t.Errorf("Namespace = %v, want %v", dir["Namespace"], tt.wantNS)
			}
		})
	}
	if _, err := New(nil, "", nil, nil); err == nil {
		t.Errorf("New(nil writer) did not fail")
	}
}

func TestNoDimensions(t *testing.T) {
	var buf bytes.Buffer
	m, err := New(&buf, "", nil, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	m.Count(SyncConflicts, 1)
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"Dimensions":[[]]`) {
		t.Errorf("want an empty dimension set, got %s", buf.String())
	}
	decodeAndValidate(t, buf.Bytes())
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFlushWriteError(t *testing.T) {
	m, err := New(failingWriter{}, "", nil, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	m.Count(SyncConflicts, 1)
	if err := m.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush error = %v, want the write error", err)
	}
}

func TestConcurrent(t *testing.T) {
	m, buf := newTest(t)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.Count(SyncConflicts, 1)
				m.Observe(SystemBLatency, float64(w*each+i), Milliseconds)
				m.Set("requestId", "r")
			}
		})
	}
	wg.Wait()
	if err := m.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	docs := decodeAndValidate(t, buf.Bytes())
	if got := values(t, docs, SyncConflicts); len(got) != 1 || got[0] != workers*each {
		t.Errorf("%s = %v, want [%d]", SyncConflicts, got, workers*each)
	}
	if got := values(t, docs, SystemBLatency); len(got) != workers*each {
		t.Errorf("%d latency samples, want %d", len(got), workers*each)
	}
}

func BenchmarkFlush(b *testing.B) {
	m, err := New(bytes.NewBuffer(nil), "", map[string]string{"Function": "lookup"}, fixedNow)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		m.Count(SyncConflicts, 1)
		m.Count(SyncPartialResults, 0)
		m.Observe(SyncLag, 3600, Seconds)
		m.Observe(SystemBLatency, 12, Milliseconds)
		m.Set("requestId", "c6af9ac6-7b61-11e6-9a41-93e812345678")
		if err := m.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
