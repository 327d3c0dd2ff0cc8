package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

func TestEvent(t *testing.T) {
	o := Options{Function: "ReconcileFunction", Time: time.Date(2025, 1, 2, 3, 30, 0, 123, time.UTC),
		Region: "eu-west-1", AccountID: "111122223333", StackName: "ucs", ID: "e-1"}
	tests := []struct {
		name    string
		s       samtemplate.Schedule
		want    string
		wantErr error
	}{
		{"rule", samtemplate.Schedule{EventName: "Nightly", Type: "Schedule", Expression: "rate(1 day)"},
			`{"version":"0","id":"e-1","detail-type":"Scheduled Event","source":"aws.events","account":"111122223333","time":"2025-01-02T03:30:00Z","region":"eu-west-1","resources":["arn:aws:events:eu-west-1:111122223333:rule/ucs-ReconcileFunctionNightly-LOCAL"],"detail":{}}`, nil},
		{"rule with input", samtemplate.Schedule{Type: "Schedule", HasInput: true, Input: ` {"a": 1} `}, `{"a":1}`, nil},
		{"scheduler with input", samtemplate.Schedule{Type: "ScheduleV2", Name: "nightly", HasInput: true,
			Input: `{"id":"<aws.scheduler.execution-id>","time":"<aws.scheduler.scheduled-time>","arn":"<aws.scheduler.schedule-arn>","n":<aws.scheduler.attempt-number>}`},
			`{"id":"e-1","time":"2025-01-02T03:30:00Z","arn":"arn:aws:scheduler:eu-west-1:111122223333:schedule/default/nightly","n":1}`, nil},
		{"scheduler without input", samtemplate.Schedule{Type: "ScheduleV2", Name: "nightly"},
			`{"version":"0","id":"e-1","detail-type":"Scheduled Event","source":"aws.scheduler","account":"111122223333","time":"2025-01-02T03:30:00Z","region":"eu-west-1","resources":["arn:aws:scheduler:eu-west-1:111122223333:schedule/default/nightly"],"detail":{}}`, nil},
		{"bad input", samtemplate.Schedule{Type: "ScheduleV2", HasInput: true, Input: `{"a":`}, "", ErrBadInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Event(tc.s, o)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("got %s, %v\nwant %s", got, err, tc.want)
			}
		})
	}
	got, err := Event(samtemplate.Schedule{Type: "Schedule"}, Options{})
	if err != nil || !strings.Contains(string(got), `"id":"`) || strings.Contains(string(got), `"id":""`) {
		t.Errorf("defaults: %s %v", got, err)
	}
}

func TestPick(t *testing.T) {
	f := &samtemplate.Function{LogicalID: "F", Schedules: []samtemplate.Schedule{
		{EventName: "A", Enabled: false}, {EventName: "B", Enabled: true},
	}}
	if s, err := Pick(f, ""); err != nil || s.EventName != "B" {
		t.Errorf("Pick enabled = %v %v", s, err)
	}
	if s, err := Pick(f, "A"); err != nil || s.EventName != "A" {
		t.Errorf("Pick A = %v %v", s, err)
	}
	if _, err := Pick(f, "C"); err == nil {
		t.Errorf("Pick C succeeded")
	}
	f.Schedules[0].Enabled = true
	if _, err := Pick(f, ""); err == nil || !strings.Contains(err.Error(), "--event-name") {
		t.Errorf("Pick ambiguous = %v", err)
	}
	if _, err := Pick(&samtemplate.Function{LogicalID: "G"}, ""); err == nil {
		t.Errorf("Pick none succeeded")
	}
}
