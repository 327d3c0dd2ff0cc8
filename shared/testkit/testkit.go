// Package testkit holds what the functions' tests share: the event
// fixtures in events/, golden files with an -update flag, and in-memory
// System A and System B built from the demo data generator, with failures
// that tests can switch on. It is imported by tests only.
package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/unified"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Root returns the module's root directory (where go.mod is).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testkit: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Events lists the fixtures in events/ whose names start with prefix.
func Events(t testing.TB, prefix string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(Root(t), "events", prefix+"*.json"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = filepath.Base(m)
	}
	return names
}

// Event decodes the fixture events/name into v.
func Event(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("testkit: events/%s: %v", name, err)
	}
}

// Golden compares got (JSON, re-indented) with testdata/<name>; with
// -update it rewrites the file instead.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		buf.Reset()
		buf.Write(got)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("testkit: %v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("testkit: %s differs from the golden file (run with -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, buf.Bytes(), want)
	}
}

// ExportedAt and ReadAt are the fixed clock of the in-memory systems.
var (
	ExportedAt = time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	ReadAt     = time.Date(2026, 11, 24, 9, 15, 2, 0, time.UTC)
)

// Systems is an in-memory System A and System B holding the generator's
// data. Set AErr/BErr to make a system fail for every customer, or
// AErrFor/BErrFor (by join key) for some; Calls counts System B calls.
type Systems struct {
	A, B             []*merge.Record // in join order
	AErr, BErr       error
	AErrFor, BErrFor map[string]error
	Calls            atomic.Int64
}

// NewSystems generates n customers plus the showcase ones with seed 1.
func NewSystems(t testing.TB, n int) *Systems {
	t.Helper()
	cfg := demodata.NewConfig(1, n)
	cfg.Showcase = true
	cfg.ExportedAt = ExportedAt
	cfg.Now = ReadAt
	g, err := demodata.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Systems{A: slices.Collect(g.SystemA()), B: slices.Collect(g.SystemB())}
}

func find(recs []*merge.Record, key string) *merge.Record {
	i, ok := slices.BinarySearchFunc(recs, key, func(r *merge.Record, k string) int { return strings.Compare(r.Key(), k) })
	if !ok {
		return nil
	}
	return recs[i]
}

// Reader returns a unified.Reader over the systems with the fixed clock.
func (s *Systems) Reader() *unified.Reader {
	return &unified.Reader{A: memA{s}, B: memB{s}, Now: func() time.Time { return ReadAt }}
}

type memA struct{ s *Systems }

func (m memA) Acquire(context.Context) (unified.Snapshot, error) {
	if m.s.AErr != nil {
		return nil, m.s.AErr
	}
	return memSnap{m.s}, nil
}

type memSnap struct{ s *Systems }

func (m memSnap) Lookup(_ context.Context, key string) (*merge.Record, error) {
	if err := m.s.AErrFor[key]; err != nil {
		return nil, err
	}
	if r := find(m.s.A, key); r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("testkit: %w", merge.ErrNotFound)
}
func (m memSnap) ExportedAt() time.Time { return ExportedAt }
func (m memSnap) Release()              {}

type memB struct{ s *Systems }

func (m memB) Get(_ context.Context, key string) (*merge.Record, error) {
	m.s.Calls.Add(1)
	if m.s.BErr != nil {
		return nil, m.s.BErr
	}
	if err := m.s.BErrFor[merge.Key(key)]; err != nil {
		return nil, err
	}
	if r := find(m.s.B, merge.Key(key)); r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("testkit: %w", merge.ErrNotFound)
}

// ReconcileA returns the systems' System A for reconcile.
func (s *Systems) ReconcileA() reconcile.SystemA { return recA{s} }

// ReconcileB returns the systems' System B for reconcile; BErr, when set,
// is returned after half of the records.
func (s *Systems) ReconcileB() reconcile.SystemB { return recB{s} }

type recA struct{ s *Systems }

func (r recA) Acquire(context.Context) (reconcile.Snapshot, error) {
	if r.s.AErr != nil {
		return nil, r.s.AErr
	}
	return recSnap{r.s}, nil
}

type recSnap struct{ s *Systems }

func (r recSnap) All(ctx context.Context) iter.Seq2[*merge.Record, error] {
	return seq(ctx, r.s.A, nil)
}
func (r recSnap) Version() reconcile.SnapshotVersion {
	return reconcile.SnapshotVersion{URI: "mem://systema", VersionID: "v1", ETag: `"etag-1"`, ExportedAt: ExportedAt}
}
func (r recSnap) Release() {}

type recB struct{ s *Systems }

func (r recB) List(ctx context.Context) iter.Seq2[*merge.Record, error] {
	return seq(ctx, r.s.B, r.s.BErr)
}

// seq yields recs, failing with failAt after half of them when it is set,
// and with ctx's error once ctx is done.
func seq(ctx context.Context, recs []*merge.Record, failAt error) iter.Seq2[*merge.Record, error] {
	return func(yield func(*merge.Record, error) bool) {
		for i, r := range recs {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			if failAt != nil && i == len(recs)/2 {
				yield(nil, failAt)
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// Metrics records counts and observations for assertions.
type Metrics struct {
	mu     sync.Mutex
	Counts map[string]int64
	Values map[string][]float64
}

// NewMetrics returns an empty recorder.
func NewMetrics() *Metrics {
	return &Metrics{Counts: map[string]int64{}, Values: map[string][]float64{}}
}

// Count implements the handlers' Metrics.
func (m *Metrics) Count(name string, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Counts[name] += n
}

// Observe implements the handlers' Metrics.
func (m *Metrics) Observe(name string, v float64, _ emf.Unit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Values[name] = append(m.Values[name], v)
}
