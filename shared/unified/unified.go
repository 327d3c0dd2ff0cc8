// Package unified reads customers from both systems at the same logical
// time: one pinned System A snapshot and System B calls made concurrently,
// with each system's failure kept apart from "not found" so callers can
// answer partially. It is what the lookup and sync functions share.
package unified

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// ErrNotFound is what SystemA and SystemB implementations return (wrapped)
// for a customer they do not hold: it is merge.ErrNotFound, the kind every
// adapter maps its own "not found" to. Other failures should wrap their
// merge.ErrorKind too; one that wraps none is internal.
const ErrNotFound = merge.ErrNotFound

// Snapshot is one pinned version of System A.
type Snapshot interface {
	Lookup(ctx context.Context, key string) (*merge.Record, error)
	ExportedAt() time.Time
	Release()
}

// SystemA hands out pinned snapshots.
type SystemA interface {
	Acquire(ctx context.Context) (Snapshot, error)
}

// SystemB reads one customer from System B.
type SystemB interface {
	Get(ctx context.Context, email string) (*merge.Record, error)
}

// Reader reads customers from both systems.
type Reader struct {
	A SystemA
	B SystemB
	// Now is the clock for System B's freshness; time.Now when nil.
	Now func() time.Time
	// Concurrency bounds System B calls of one ReadMany; 8 when zero.
	Concurrency int
	// SystemBBudget bounds the time of one customer's System B read, all
	// its retries included, so a hanging System B leaves most of the Lambda
	// deadline for a partial answer; no bound beyond ctx when zero.
	SystemBBudget time.Duration
}

// Read is one customer as both systems answered.
type Read struct {
	Key  string
	A, B *merge.Record // nil when that system does not hold the customer or failed
	// AErr and BErr are non-nil when that system failed (not "not found");
	// they wrap the failure's merge.ErrorKind, or none for an internal
	// error (a context deadline or cancellation is ErrUnavailable).
	AErr, BErr error
	Freshness  merge.Freshness
}

// Failure is one system's failure in a Read.
type Failure struct {
	System merge.Source
	Kind   merge.ErrorKind // "" for an internal error
	Err    error
}

// Failures lists the systems that failed with the kind of each failure, in
// a stable order (System A first).
func (r *Read) Failures() []Failure {
	var out []Failure
	if r.AErr != nil {
		out = append(out, Failure{merge.SystemA, merge.ErrorKindOf(r.AErr), r.AErr})
	}
	if r.BErr != nil {
		out = append(out, Failure{merge.SystemB, merge.ErrorKindOf(r.BErr), r.BErr})
	}
	return out
}

// Degraded lists the systems that failed, in a stable order.
func (r *Read) Degraded() []merge.Source {
	var out []merge.Source
	for _, f := range r.Failures() {
		out = append(out, f.System)
	}
	return out
}

// failed wraps a system's error with context, and with ErrUnavailable when
// it is a bare context deadline or cancellation (a budget or the caller's
// deadline cut the read: a timeout).
func failed(what string, err error) error {
	if merge.ErrorKindOf(err) == "" && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return fmt.Errorf("unified: %s: %w: %w", what, merge.ErrUnavailable, err)
	}
	return fmt.Errorf("unified: %s: %w", what, err)
}

// Read reads one customer by join key.
func (r *Reader) Read(ctx context.Context, key string) Read {
	return r.ReadMany(ctx, []string{key})[0]
}

// ReadMany reads customers by join key against one pinned System A snapshot,
// calling System B concurrently (bounded); the result is in keys' order.
func (r *Reader) ReadMany(ctx context.Context, keys []string) []Read {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	reads := make([]Read, len(keys))
	for i, k := range keys {
		reads[i].Key = k
	}

	var wg sync.WaitGroup
	wg.Add(1)
	var exportedAt time.Time
	go func() { // System A: one snapshot for the whole batch
		defer wg.Done()
		snap, err := r.A.Acquire(ctx)
		if err != nil {
			for i := range reads {
				reads[i].AErr = failed("system A", err)
			}
			return
		}
		defer snap.Release()
		exportedAt = snap.ExportedAt()
		for i := range reads {
			rec, err := snap.Lookup(ctx, reads[i].Key)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				reads[i].AErr = failed("system A: lookup", err)
			default:
				reads[i].A = rec
			}
		}
	}()

	limit := r.Concurrency
	if limit <= 0 {
		limit = 8
	}
	sem := make(chan struct{}, limit)
	readAt := now()
	for i := range reads {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			bctx, cancel := ctx, context.CancelFunc(func() {})
			if r.SystemBBudget > 0 {
				bctx, cancel = context.WithTimeout(ctx, r.SystemBBudget)
			}
			defer cancel()
			rec, err := r.B.Get(bctx, reads[i].Key)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				reads[i].BErr = failed("system B", err)
			default:
				reads[i].B = rec
			}
		}()
	}
	wg.Wait()

	for i := range reads {
		a, b := exportedAt, readAt
		if reads[i].AErr != nil {
			a = time.Time{}
		}
		if reads[i].BErr != nil {
			b = time.Time{}
		}
		reads[i].Freshness = merge.NewFreshness(a, b)
	}
	return reads
}
