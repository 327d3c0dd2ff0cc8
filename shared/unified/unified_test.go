package unified_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/unified"
)

var (
	exportedAt = time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	readAt     = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	errDown    = errors.New("down")
)

func rec(email string) *merge.Record {
	var r merge.Record
	r.Values[merge.FieldEmail] = email
	return &r
}

// fakeA holds a set of keys; it counts Acquire and Release.
type fakeA struct {
	keys               map[string]bool
	acquireErr         error
	lookupErr          error
	acquired, released atomic.Int64
}

func (f *fakeA) Acquire(context.Context) (unified.Snapshot, error) {
	if f.acquireErr != nil {
		return nil, f.acquireErr
	}
	f.acquired.Add(1)
	return snap{f}, nil
}

type snap struct{ f *fakeA }

func (s snap) Lookup(_ context.Context, key string) (*merge.Record, error) {
	if s.f.lookupErr != nil {
		return nil, s.f.lookupErr
	}
	if s.f.keys[key] {
		return rec(key), nil
	}
	return nil, fmt.Errorf("fake: %w", merge.ErrNotFound)
}
func (s snap) ExportedAt() time.Time { return exportedAt }
func (s snap) Release()              { s.f.released.Add(1) }

// fakeB holds a set of keys; it tracks the most concurrent calls.
type fakeB struct {
	keys           map[string]bool
	err            error
	mu             sync.Mutex
	inFlight, peak int
	calls          atomic.Int64
}

func (f *fakeB) Get(_ context.Context, key string) (*merge.Record, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.inFlight++
	f.peak = max(f.peak, f.inFlight)
	f.mu.Unlock()
	time.Sleep(time.Millisecond) // let calls overlap so the bound is exercised
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if f.keys[key] {
		return rec(key), nil
	}
	return nil, fmt.Errorf("fake: %w", merge.ErrNotFound)
}

func TestRead(t *testing.T) {
	tests := []struct {
		name                   string
		a                      *fakeA
		b                      *fakeB
		wantA, wantB           bool
		wantDegraded           []merge.Source
		wantFreshA, wantFreshB bool
	}{
		{"both hold it", &fakeA{keys: map[string]bool{"k": true}}, &fakeB{keys: map[string]bool{"k": true}}, true, true, nil, true, true},
		{"neither holds it: not found is no failure", &fakeA{}, &fakeB{}, false, false, nil, true, true},
		{"System A cannot be acquired", &fakeA{acquireErr: errDown}, &fakeB{keys: map[string]bool{"k": true}}, false, true, []merge.Source{merge.SystemA}, false, true},
		{"System A lookup fails", &fakeA{lookupErr: errDown}, &fakeB{}, false, false, []merge.Source{merge.SystemA}, false, true},
		{"System B fails", &fakeA{keys: map[string]bool{"k": true}}, &fakeB{err: errDown}, true, false, []merge.Source{merge.SystemB}, true, false},
		{"both fail", &fakeA{acquireErr: errDown}, &fakeB{err: errDown}, false, false, []merge.Source{merge.SystemA, merge.SystemB}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &unified.Reader{A: tt.a, B: tt.b, Now: func() time.Time { return readAt }}
			got := r.Read(context.Background(), "k")
			if (got.A != nil) != tt.wantA || (got.B != nil) != tt.wantB {
				t.Errorf("A %v B %v, want %v %v", got.A != nil, got.B != nil, tt.wantA, tt.wantB)
			}
			if fmt.Sprint(got.Degraded()) != fmt.Sprint(tt.wantDegraded) {
				t.Errorf("degraded = %v, want %v", got.Degraded(), tt.wantDegraded)
			}
			if got.AErr != nil && !errors.Is(got.AErr, errDown) || got.BErr != nil && !errors.Is(got.BErr, errDown) {
				t.Errorf("errors lost their cause: %v / %v", got.AErr, got.BErr)
			}
			if (!got.Freshness.SystemA.IsZero()) != tt.wantFreshA || (!got.Freshness.SystemB.IsZero()) != tt.wantFreshB {
				t.Errorf("freshness = %+v", got.Freshness)
			}
			wantAsOf := time.Time{}
			switch {
			case tt.wantFreshA:
				wantAsOf = exportedAt
			case tt.wantFreshB:
				wantAsOf = readAt
			}
			if !got.Freshness.AsOf.Equal(wantAsOf) {
				t.Errorf("asOf = %v, want %v (the older of the known)", got.Freshness.AsOf, wantAsOf)
			}
			if tt.a.acquired.Load() != tt.a.released.Load() {
				t.Errorf("acquired %d, released %d", tt.a.acquired.Load(), tt.a.released.Load())
			}
		})
	}
}

func TestReadManyPinsOneSnapshotAndBoundsSystemB(t *testing.T) {
	keys := make([]string, 40)
	inB := map[string]bool{}
	for i := range keys {
		keys[i] = fmt.Sprintf("c%02d@example.com", i)
		inB[keys[i]] = i%2 == 0
	}
	a := &fakeA{keys: map[string]bool{keys[0]: true}}
	b := &fakeB{keys: inB}
	r := &unified.Reader{A: a, B: b, Concurrency: 3}
	reads := r.ReadMany(context.Background(), keys)
	if a.acquired.Load() != 1 || a.released.Load() != 1 {
		t.Errorf("acquired %d released %d, want one snapshot for the batch", a.acquired.Load(), a.released.Load())
	}
	if b.calls.Load() != int64(len(keys)) || b.peak > 3 {
		t.Errorf("System B: %d calls, peak concurrency %d; want %d calls, at most 3 at once", b.calls.Load(), b.peak, len(keys))
	}
	for i, rd := range reads {
		if rd.Key != keys[i] || (rd.B != nil) != inB[keys[i]] {
			t.Errorf("read %d = key %s B %v; results must keep the keys' order", i, rd.Key, rd.B != nil)
		}
	}
}

// hangingB blocks until its context is done.
type hangingB struct{}

func (hangingB) Get(ctx context.Context, _ string) (*merge.Record, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestSystemBBudgetCutsAHangingSystemB(t *testing.T) {
	r := &unified.Reader{A: &fakeA{keys: map[string]bool{"k": true}}, B: hangingB{}, SystemBBudget: 20 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := r.Read(ctx, "k")
	if !errors.Is(got.BErr, context.DeadlineExceeded) || !errors.Is(got.BErr, merge.ErrUnavailable) || got.A == nil {
		t.Fatalf("BErr = %v, A = %v; want System B cut by its budget (unavailable) and System A's record", got.BErr, got.A != nil)
	}
	if ctx.Err() != nil {
		t.Error("the caller's context ran out; the budget should have ended the read first")
	}
}
