package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

// StateKey is where the poller keeps its watermark, under REPORT_URI.
const StateKey = "capture/system-b/state.json"

// DefaultOverlap is how far before its watermark a poll reads again: a
// System B write whose lastUpdated was stamped before the last poll read
// but that became visible only after it (a slow transaction, clocks of
// several System B nodes) is still caught. Changes in the overlap are
// published again with the same ids; consumers drop them by id.
const DefaultOverlap = 2 * time.Minute

// pageSize is the System B page size of a poll; publishBatch the events
// published (and acknowledged) at once.
const (
	pageSize     = 1000
	publishBatch = 500
)

// Lister lists System B customers changed at or after since (zero: all);
// *systemb.Client implements it with ListSince.
type Lister interface {
	ListSince(ctx context.Context, pageSize int, since time.Time) *systemb.Pager
}

// Poller is System B's polling capture, run on a schedule: it lists the
// customers changed since its watermark (API v1.1 updatedSince, or the full
// list filtered here when System B answers 400), publishes each as an
// upsert, and only when every event is acknowledged advances the watermark
// to the newest lastUpdated seen, in a state object written conditionally.
type Poller struct {
	SystemB   Lister
	Publisher changes.Publisher
	State     report.Store
	Now       func() time.Time
	Log       *slog.Logger
	Metrics   Metrics
	// Overlap: DefaultOverlap when zero.
	Overlap time.Duration
}

// State is the poller's state object.
type State struct {
	// Watermark is the newest lastUpdated (System B's clock) of a published
	// change; the next poll reads from Watermark minus the overlap.
	Watermark time.Time `json:"watermark"`
	// FullList says the last poll had to list all customers (System B
	// without updatedSince).
	FullList bool `json:"fullList"`
	// PolledAt is when the poll that wrote the state ended (our clock); it
	// also makes every write's body, and so its tag, unique.
	PolledAt  time.Time `json:"polledAt"`
	Published int       `json:"published"`
	Skipped   int       `json:"skipped"`
	// Recent maps the ids of the events published with a lastUpdated in the
	// overlap (at or after Watermark minus the overlap) to that lastUpdated:
	// the next poll reads them again and does not publish them again. At
	// about MaxRecent; beyond it the oldest are forgotten (and republished
	// with their ids, which consumers drop).
	Recent map[string]time.Time `json:"recent,omitempty"`
}

// MaxRecent bounds State.Recent (about 50 bytes each in the state object).
const MaxRecent = 100_000

// Summary is what a poll returns (the invocation's result).
type Summary struct {
	Since      time.Time `json:"since"`
	Watermark  time.Time `json:"watermark"`
	FullList   bool      `json:"fullList"`
	Published  int       `json:"published"`
	BadRecords int       `json:"badRecords"`
	// Repeats are the changes in the overlap already published by an
	// earlier poll (State.Recent), not published again.
	Repeats int `json:"repeats"`

	recent map[string]time.Time // the next state's Recent, before pruning
}

// Poll runs one poll. On any failure (System B, the broker, the state
// write) it returns the error with the watermark unchanged: the next run
// reads the same changes again and publishes them with the same ids.
func (p *Poller) Poll(ctx context.Context) (Summary, error) {
	start := p.Now()
	defer func() {
		p.Metrics.Observe(emf.CaptureDuration, float64(p.Now().Sub(start).Microseconds())/1000, emf.Milliseconds)
	}()

	st, tag, err := p.readState(ctx)
	if err != nil {
		return Summary{}, err
	}
	overlap := p.Overlap
	if overlap <= 0 {
		overlap = DefaultOverlap
	}
	since := st.Watermark.Add(-overlap)
	sum := Summary{Since: since, Watermark: st.Watermark, recent: map[string]time.Time{}}
	version := "poll:" + st.Watermark.UTC().Format(time.RFC3339Nano)

	lctx, cancel := reserve(ctx) // the state write below keeps the reserve
	defer cancel()
	err = p.publishSince(lctx, since, version, st.Recent, &sum)
	if errors.Is(err, systemb.ErrUpdatedSinceUnsupported) && sum.Published == 0 && sum.BadRecords == 0 {
		p.Log.InfoContext(ctx, "System B does not support updatedSince (API v1.1): listing all customers and comparing with the watermark")
		sum.FullList = true
		err = p.publishSince(lctx, time.Time{}, version, st.Recent, &sum)
	}
	if err != nil {
		p.Log.ErrorContext(ctx, "System B poll failed: the watermark stays", "err", err.Error(), "published", sum.Published,
			"kind", string(merge.ErrorKindOf(err)))
		return sum, fmt.Errorf("captureb: poll since %s: %w", since.Format(time.RFC3339), err)
	}
	next := State{Watermark: sum.Watermark, FullList: sum.FullList, PolledAt: p.Now().UTC(), Published: sum.Published, Skipped: sum.BadRecords,
		Recent: recentSince(sum.recent, sum.Watermark.Add(-overlap))}
	if err := p.writeState(ctx, next, tag); err != nil {
		return sum, err
	}
	p.Log.InfoContext(ctx, "System B poll complete", "published", sum.Published, "repeats", sum.Repeats, "badRecords", sum.BadRecords,
		"fullList", sum.FullList, "watermark", sum.Watermark.UTC().Format(time.RFC3339Nano))
	return sum, nil
}

// publishSince lists the customers from since (all when zero, keeping
// those at or after sum.Since) and publishes them in batches, but for the
// ids in seen (published by an earlier poll); it raises sum.Watermark to
// the newest lastUpdated published and records every id read in
// sum.recent.
func (p *Poller) publishSince(ctx context.Context, since time.Time, version string, seen map[string]time.Time, sum *Summary) error {
	pager := p.SystemB.ListSince(ctx, pageSize, since)
	defer pager.Close()
	batch := make([]changes.Event, 0, publishBatch)
	newest := sum.Watermark
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := p.Publisher.Publish(ctx, batch...); err != nil {
			return fmt.Errorf("publish %d events: %w", len(batch), err)
		}
		published(p.Metrics, p.Now(), batch...)
		sum.Published += len(batch)
		batch = batch[:0]
		return nil
	}
	for pager.Next() {
		if bad := pager.BadRecord(); bad != nil {
			sum.BadRecords++
			p.Metrics.Count(emf.CaptureBadRecordsSystemB, 1)
			p.Log.WarnContext(ctx, "System B list item skipped: it breaks the contract", "position", bad.Position, "reason", bad.Reason)
			continue
		}
		rec := pager.Record()
		if rec.LastUpdated.Before(sum.Since) {
			continue // the full list's unchanged customers; defensive for updatedSince
		}
		r := *rec // the Pager reuses its page
		ev, err := changes.NewUpsert(merge.SystemB, &r, version, time.Time{}, p.Now())
		if err != nil {
			// The codec already required a valid email: a broken invariant.
			return fmt.Errorf("build event: %w", err)
		}
		sum.recent[ev.ID] = r.LastUpdated
		if _, ok := seen[ev.ID]; ok {
			sum.Repeats++
			continue
		}
		batch = append(batch, ev)
		if r.LastUpdated.After(newest) {
			newest = r.LastUpdated
		}
		if len(batch) == publishBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := pager.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	sum.Watermark = newest
	return nil
}

// recentSince keeps the ids whose lastUpdated is at or after from, the
// newest MaxRecent of them.
func recentSince(ids map[string]time.Time, from time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(ids))
	for id, lu := range ids {
		if !lu.Before(from) {
			out[id] = lu
		}
	}
	if len(out) <= MaxRecent {
		return out
	}
	ts := make([]time.Time, 0, len(out))
	for _, lu := range out {
		ts = append(ts, lu)
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return b.Compare(a) })
	cut := ts[MaxRecent-1]
	for id, lu := range out {
		if lu.Before(cut) {
			delete(out, id)
		}
	}
	return out
}

// readState reads the state and its tag; a first poll (no state) starts
// at the current time minus the overlap: the history before it is the
// nightly reconciliation's, not the capture's.
func (p *Poller) readState(ctx context.Context) (State, string, error) {
	body, tag, err := p.State.Get(ctx, StateKey)
	if errors.Is(err, report.ErrNotExist) {
		return State{Watermark: p.Now().UTC()}, "", nil
	}
	if err != nil {
		return State{}, "", fmt.Errorf("captureb: read %s: %w", p.State.Location(StateKey), err)
	}
	var st State
	if err := json.Unmarshal(body, &st); err != nil || st.Watermark.IsZero() {
		return State{}, "", fmt.Errorf("captureb: %s is not a poller state: %w", p.State.Location(StateKey), merge.ErrBadData)
	}
	return st, tag, nil
}

// writeState writes st conditionally: created when there was none, else
// replaced only if still at tag (a concurrent poll that got there first
// makes this one fail; its events were published with the same ids).
func (p *Poller) writeState(ctx context.Context, st State, tag string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("captureb: encode state: %w", err)
	}
	if tag == "" {
		_, err = p.State.PutIfAbsent(ctx, StateKey, bytes.NewReader(b), "application/json")
	} else {
		_, err = p.State.Replace(ctx, StateKey, bytes.NewReader(b), "application/json", tag)
	}
	if err != nil {
		return fmt.Errorf("captureb: write %s: %w", p.State.Location(StateKey), err)
	}
	return nil
}
