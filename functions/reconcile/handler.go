package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/reconcile"
)

// Runner runs one reconciliation.
type Runner interface {
	Run(ctx context.Context, ev reconcile.Event) (reconcile.Summary, error)
}

// Handler translates the scheduled event into a reconciliation run.
type Handler struct {
	Runner Runner
}

// ErrNotScheduled is returned for an input that is not a scheduled event.
var ErrNotScheduled = errors.New("reconcile: input is not a scheduled event")

// Sources the function accepts: EventBridge rules (Schedule) and EventBridge
// Scheduler (ScheduleV2, whose Input the template shapes like a rule's event).
var sources = map[string]bool{"aws.events": true, "aws.scheduler": true}

// Handle serves one invocation. The raw payload is decoded here so that a
// malformed one is a clear error, not a zero event.
//
// It returns the night's summary when this delivery ran the reconciliation
// to the end, or found the report already written (status "duplicate"),
// or found another delivery running it under a live lease ("inProgress"),
// and a partial one (status "continued", complete false) when it stopped
// before its deadline and wrote a checkpoint: ReconcileStateMachine then
// invokes it again with the same event, and that invocation continues. It
// fails when the run did not complete (reconcile.ErrIncomplete: its
// partial report is under the event's attempts/), when it lost its lease
// to another delivery (reconcile.ErrLeaseLost), when the checkpoint is
// unusable (reconcile.ErrBadCheckpoint), and on a bad event: the state
// machine retries the invocation and, once the retries are spent, sends the
// event to the dead-letter queue.
//
// It also takes the record Lambda sends to the function's OnFailure
// destination (the template's dead-letter queue) once an event's retries
// are spent, and runs the event it carries (requestPayload): the body of
// a dead-lettered message, passed back as the payload, redelivers the
// night's event.
func (h *Handler) Handle(ctx context.Context, payload json.RawMessage) (reconcile.Summary, error) {
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return reconcile.Summary{}, fmt.Errorf("%w: %v", ErrNotScheduled, err)
	}
	if ev.Source == "" {
		var rec destinationRecord
		if json.Unmarshal(payload, &rec) == nil && rec.RequestContext != nil && len(rec.RequestPayload) > 0 {
			ev = events.EventBridgeEvent{}
			if err := json.Unmarshal(rec.RequestPayload, &ev); err != nil {
				return reconcile.Summary{}, fmt.Errorf("%w: the dead-lettered record's requestPayload: %v", ErrNotScheduled, err)
			}
		}
	}
	switch {
	case !sources[ev.Source]:
		return reconcile.Summary{}, fmt.Errorf(`%w: "source" is %q, want "aws.events" or "aws.scheduler"`, ErrNotScheduled, ev.Source)
	case ev.DetailType != "Scheduled Event":
		return reconcile.Summary{}, fmt.Errorf(`%w: "detail-type" is %q, want "Scheduled Event"`, ErrNotScheduled, ev.DetailType)
	case ev.ID == "":
		return reconcile.Summary{}, fmt.Errorf(`%w: "id" is missing`, ErrNotScheduled)
	case ev.Time.IsZero():
		return reconcile.Summary{}, fmt.Errorf(`%w: "time" is missing`, ErrNotScheduled)
	}
	return h.Runner.Run(ctx, reconcile.Event{ID: ev.ID, Time: ev.Time})
}

// destinationRecord is the invocation record Lambda sends to an
// asynchronous invocation's OnFailure destination: the event as it was
// delivered (requestPayload) and what became of it.
type destinationRecord struct {
	RequestContext *struct {
		RequestID string `json:"requestId"`
		Condition string `json:"condition"` // RetriesExhausted, EventAgeExceeded
	} `json:"requestContext"`
	RequestPayload json.RawMessage `json:"requestPayload"`
}
