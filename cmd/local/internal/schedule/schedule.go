// Package schedule builds the event a template's Schedule (EventBridge rule)
// or ScheduleV2 (EventBridge Scheduler) event source would deliver to its
// function at a given time, and the EventBridge "Object Created" event S3
// delivers for a new object version (ObjectCreated).
package schedule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

// ErrBadInput is returned (wrapped) for a schedule Input that is not JSON
// once its placeholders are filled in.
var ErrBadInput = errors.New("schedule: the schedule's Input is not valid JSON")

// Options are the deployment facts the event carries.
type Options struct {
	Function  string    // the function's logical id
	Time      time.Time // the scheduled time; zero means now
	Region    string
	AccountID string
	StackName string
	// ID is the event id (Schedule) or execution id (ScheduleV2); default a
	// new UUID.
	ID string
}

// ScheduledEvent is the EventBridge "Scheduled Event", in AWS's key order.
type ScheduledEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Event returns the payload s delivers at o.Time:
//   - Schedule without Input: EventBridge's scheduled event for the rule;
//   - Schedule with Input: the Input as is (a rule's constant input);
//   - ScheduleV2 with Input: the Input with the scheduler's context
//     attributes (<aws.scheduler.execution-id>, <aws.scheduler.scheduled-time>,
//     <aws.scheduler.schedule-arn>, <aws.scheduler.attempt-number>) filled in;
//   - ScheduleV2 without Input: the scheduled event shape with source
//     "aws.scheduler" and the schedule's ARN (EventBridge Scheduler's default
//     notification).
func Event(s samtemplate.Schedule, o Options) ([]byte, error) {
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	at := o.Time.UTC().Truncate(time.Second).Format(time.RFC3339)
	if o.ID == "" {
		o.ID = uuid.NewString()
	}
	switch {
	case s.Type == "ScheduleV2" && s.HasInput:
		in := strings.NewReplacer(
			"<aws.scheduler.execution-id>", o.ID,
			"<aws.scheduler.scheduled-time>", at,
			"<aws.scheduler.schedule-arn>", scheduleARN(s, o),
			"<aws.scheduler.attempt-number>", "1",
		).Replace(s.Input)
		return compact(in)
	case s.HasInput:
		return compact(s.Input)
	}
	ev := ScheduledEvent{
		Version:    "0",
		ID:         o.ID,
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		Account:    o.AccountID,
		Time:       at,
		Region:     o.Region,
		Resources:  []string{ruleARN(s, o)},
		Detail:     json.RawMessage("{}"),
	}
	if s.Type == "ScheduleV2" {
		ev.Source, ev.Resources = "aws.scheduler", []string{scheduleARN(s, o)}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("schedule: marshal: %w", err)
	}
	return b, nil
}

func compact(in string) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(in)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	return buf.Bytes(), nil
}

// name returns the rule's or schedule's name: the template's Name, or the
// one CloudFormation would generate.
func name(s samtemplate.Schedule, o Options) string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprintf("%s-%s%s-LOCAL", o.StackName, o.Function, s.EventName)
}

func ruleARN(s samtemplate.Schedule, o Options) string {
	return fmt.Sprintf("arn:aws:events:%s:%s:rule/%s", o.Region, o.AccountID, name(s, o))
}

func scheduleARN(s samtemplate.Schedule, o Options) string {
	return fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule/default/%s", o.Region, o.AccountID, name(s, o))
}

// Pick returns the schedule of f named eventName, or f's only (enabled
// first) schedule when eventName is "".
func Pick(f *samtemplate.Function, eventName string) (samtemplate.Schedule, error) {
	if eventName != "" {
		for _, s := range f.Schedules {
			if s.EventName == eventName {
				return s, nil
			}
		}
		return samtemplate.Schedule{}, fmt.Errorf("schedule: %s has no schedule event %q", f.LogicalID, eventName)
	}
	switch len(f.Schedules) {
	case 0:
		return samtemplate.Schedule{}, fmt.Errorf("schedule: %s has no Schedule or ScheduleV2 event", f.LogicalID)
	case 1:
		return f.Schedules[0], nil
	}
	var enabled []samtemplate.Schedule
	for _, s := range f.Schedules {
		if s.Enabled {
			enabled = append(enabled, s)
		}
	}
	if len(enabled) == 1 {
		return enabled[0], nil
	}
	names := make([]string, len(f.Schedules))
	for i, s := range f.Schedules {
		names[i] = s.EventName
	}
	return samtemplate.Schedule{}, fmt.Errorf("schedule: %s has several schedule events (%s): pick one with --event-name", f.LogicalID, strings.Join(names, ", "))
}
