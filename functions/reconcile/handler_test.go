package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/testkit"
)

type recordingRunner struct{ got []reconcile.Event }

func (r *recordingRunner) Run(_ context.Context, ev reconcile.Event) (reconcile.Summary, error) {
	r.got = append(r.got, ev)
	return reconcile.Summary{EventID: ev.ID, Status: reconcile.StatusRan, Complete: true}, nil
}

func TestHandleFixtures(t *testing.T) {
	when := time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC)
	want := map[string]struct {
		id  string
		err error
	}{
		"reconcile-scheduled.json":     {"cdc73f9d-aea9-11e3-9d5a-835b769c0d9c", nil},
		"reconcile-scheduler.json":     {"5b7f3e2a-9c41-4d8e-b0a6-2f1e8d7c6b5a", nil},
		"reconcile-dead-lettered.json": {"9d2c41e8-6a1b-4f3e-a7c5-0b8e2d4f6a19", nil}, // Lambda's OnFailure record: its requestPayload runs
		"reconcile-not-scheduled.json": {"", ErrNotScheduled},
	}
	for _, name := range testkit.Events(t, "reconcile-") {
		w, ok := want[name]
		if !ok {
			t.Errorf("events/%s has no expectation in this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			var payload json.RawMessage
			testkit.Event(t, name, &payload)
			r := &recordingRunner{}
			sum, err := (&Handler{Runner: r}).Handle(context.Background(), payload)
			if w.err != nil {
				if !errors.Is(err, w.err) || len(r.got) != 0 {
					t.Fatalf("err = %v, runs %d; want %v and no run", err, len(r.got), w.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.got) != 1 || r.got[0].ID != w.id || !r.got[0].Time.Equal(when) || sum.EventID != w.id {
				t.Errorf("ran %+v, want id %s at %s", r.got, w.id, when)
			}
		})
	}
}

func TestHandleMalformed(t *testing.T) {
	tests := map[string]string{
		"not JSON":                   `{`,
		"no id":                      `{"source":"aws.events","detail-type":"Scheduled Event","time":"2026-11-24T03:30:00Z"}`,
		"no time":                    `{"source":"aws.events","detail-type":"Scheduled Event","id":"x"}`,
		"unfilled placeholder":       `{"source":"aws.scheduler","detail-type":"Scheduled Event","id":"x","time":"<aws.scheduler.scheduled-time>"}`,
		"wrong detail-type":          `{"source":"aws.events","detail-type":"Object Created","id":"x","time":"2026-11-24T03:30:00Z"}`,
		"a record without its event": `{"version":"1.0","requestContext":{"requestId":"r","condition":"RetriesExhausted"},"requestPayload":null}`,
		"a record of another event":  `{"version":"1.0","requestContext":{"requestId":"r"},"requestPayload":{"source":"aws.s3","detail-type":"Object Created","id":"x","time":"2026-11-24T03:30:00Z"}}`,
		"a record in a record":       `{"requestContext":{},"requestPayload":{"requestContext":{},"requestPayload":{"source":"aws.events","detail-type":"Scheduled Event","id":"x","time":"2026-11-24T03:30:00Z"}}}`,
	}
	for name, payload := range tests {
		t.Run(name, func(t *testing.T) {
			r := &recordingRunner{}
			if _, err := (&Handler{Runner: r}).Handle(context.Background(), json.RawMessage(payload)); !errors.Is(err, ErrNotScheduled) || len(r.got) != 0 {
				t.Errorf("err = %v, runs %d", err, len(r.got))
			}
		})
	}
}

// TestHandleEndToEnd runs the scheduled fixture through the real engine
// over the in-memory systems and a file report store.
func TestHandleEndToEnd(t *testing.T) {
	sys := testkit.NewSystems(t, 100)
	h, dir, payload := realEngine(t, sys)
	sum, err := h.Handle(context.Background(), payload)
	if err != nil || !sum.Complete {
		t.Fatalf("summary %+v err %v", sum, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-11-24", sum.EventID, "summary.json")); err != nil {
		t.Error(err)
	}
}

// TestHandleIncompleteFails: a run that does not complete (System B fails
// mid-way) fails the invocation, so that Lambda delivers the event again,
// and leaves the night without summary.json; the next delivery completes it.
func TestHandleIncompleteFails(t *testing.T) {
	sys := testkit.NewSystems(t, 100)
	sys.BErr = errors.New("systemb: list: unavailable")
	h, dir, payload := realEngine(t, sys)
	sum, err := h.Handle(context.Background(), payload)
	if !errors.Is(err, reconcile.ErrIncomplete) || sum.Complete {
		t.Fatalf("summary complete=%v, err %v; want ErrIncomplete", sum.Complete, err)
	}
	night := filepath.Join(dir, "2026-11-24", sum.EventID)
	if _, err := os.Stat(filepath.Join(night, "summary.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an incomplete run wrote summary.json (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(night, "attempts", sum.Attempt, "summary.json")); err != nil {
		t.Errorf("no partial report: %v", err)
	}

	sys.BErr = nil
	again, err := h.Handle(context.Background(), payload)
	if err != nil || !again.Complete || again.Status != reconcile.StatusRan {
		t.Fatalf("the redelivery: %+v, %v; want a complete run", again, err)
	}
	if _, err := os.Stat(filepath.Join(night, "summary.json")); err != nil {
		t.Errorf("the redelivery wrote no summary.json: %v", err)
	}
}

// TestHandleContinues: a run that stops before its deadline answers
// "continued" without an error (the state machine invokes it again), and
// the same payload again continues it to the end.
func TestHandleContinues(t *testing.T) {
	sys := testkit.NewSystems(t, 100)
	h, dir, payload := realEngine(t, sys)
	h.Runner.(*reconcile.Reconciler).MaxPerInvocation = 60
	var sums []reconcile.Summary
	for range 10 {
		sum, err := h.Handle(context.Background(), payload)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
		if sum.Status != reconcile.StatusContinued {
			break
		}
	}
	last := sums[len(sums)-1]
	if len(sums) < 2 || !last.Complete || last.Invocations != len(sums) {
		t.Fatalf("%d calls, the last %s complete=%v invocations %d", len(sums), last.Status, last.Complete, last.Invocations)
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-11-24", last.EventID, "summary.json")); err != nil {
		t.Error(err)
	}
}
