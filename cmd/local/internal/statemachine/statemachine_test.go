package statemachine_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/statemachine"
)

const event = `{"version":"0","source":"aws.scheduler","detail-type":"Scheduled Event","id":"e-1","time":"2026-11-24T03:30:00Z","detail":{}}`

// reconcileMachine is the template's ReconcileStateMachine.
func reconcileMachine(t *testing.T) *statemachine.Machine {
	t.Helper()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "..", "..", "template.yaml"), samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sm, ok := tpl.StateMachine("ReconcileStateMachine")
	if !ok {
		t.Fatalf("no ReconcileStateMachine; warnings %v", tpl.Warnings)
	}
	if len(sm.Schedules) != 1 || sm.Schedules[0].Type != "ScheduleV2" || !sm.Schedules[0].HasInput {
		t.Errorf("schedules %+v, want the nightly ScheduleV2 with its Input", sm.Schedules)
	}
	m, err := statemachine.New(sm.Definition)
	if err != nil {
		t.Fatal(err)
	}
	if fns := m.Functions(); len(fns) != 1 || fns[0] != "ReconcileFunction" {
		t.Errorf("functions %v, want [ReconcileFunction]", fns)
	}
	return m
}

// script answers invocations in turn: a status, or "error".
type script struct {
	answers  []string
	payloads []string
	sleeps   []time.Duration
	sent     []string
}

func (s *script) wire(m *statemachine.Machine) {
	m.Invoke = func(_ context.Context, fn string, payload []byte) (statemachine.Result, error) {
		if fn != "ReconcileFunction" {
			return statemachine.Result{}, errors.New("unknown function " + fn)
		}
		s.payloads = append(s.payloads, string(payload))
		a := s.answers[0]
		s.answers = s.answers[1:]
		if a == "error" {
			return statemachine.Result{Error: "wrapError", Cause: "reconcile: the run did not complete"}, nil
		}
		return statemachine.Result{Payload: []byte(`{"status":"` + a + `","complete":` + map[bool]string{true: "true", false: "false"}[a == "ran"] +
			`,"invocations":1,"counts":{"systemA":1},"stoppedAfter":"someone@example.com"}`)}, nil
	}
	m.Send = func(_ context.Context, q string, body []byte) error {
		s.sent = append(s.sent, q+" "+string(body))
		return nil
	}
	m.Sleep = func(_ context.Context, d time.Duration) error {
		s.sleeps = append(s.sleeps, d)
		return nil
	}
}

func TestReconcileStateMachine(t *testing.T) {
	tests := []struct {
		name    string
		answers []string
		invokes int
		sleeps  []time.Duration
		failed  bool
	}{
		{"complete at once", []string{"ran"}, 1, nil, false},
		{"continued until complete", []string{"continued", "continued", "continued", "ran"}, 4, nil, false},
		{"duplicate", []string{"duplicate"}, 1, nil, false},
		{"in progress elsewhere, then done there", []string{"inProgress", "inProgress", "duplicate"}, 3, []time.Duration{time.Minute, time.Minute}, false},
		{"retried after 1 and 2 minutes", []string{"continued", "error", "error", "ran"}, 4, []time.Duration{time.Minute, 2 * time.Minute}, false},
		{"failed after its retries", []string{"continued", "error", "error", "error"}, 4, []time.Duration{time.Minute, 2 * time.Minute}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := reconcileMachine(t)
			s := &script{answers: tc.answers}
			s.wire(m)
			var states []string
			m.OnStep = func(st statemachine.Step) { states = append(states, st.State) }
			out, err := m.Run(context.Background(), []byte(event), "exec-1")
			if len(s.payloads) != tc.invokes {
				t.Fatalf("%d invocations, want %d (states %v)", len(s.payloads), tc.invokes, states)
			}
			var want, got any
			if err := json.Unmarshal([]byte(event), &want); err != nil {
				t.Fatal(err)
			}
			for i, p := range s.payloads {
				if err := json.Unmarshal([]byte(p), &got); err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("invocation %d got %s, want the scheduled event unchanged", i+1, p)
				}
			}
			if !slices.Equal(s.sleeps, tc.sleeps) {
				t.Errorf("waits %v, want %v", s.sleeps, tc.sleeps)
			}
			var failed *statemachine.Failed
			if tc.failed {
				if !errors.As(err, &failed) || failed.Name != "ReconcileFailed" {
					t.Fatalf("err %v, want the Fail state", err)
				}
				if len(s.sent) != 1 || !strings.HasPrefix(s.sent[0], "local:ReconcileDeadLetterQueue ") || !strings.Contains(s.sent[0], `"id":"e-1"`) ||
					!strings.Contains(s.sent[0], "exec-1") || !strings.Contains(s.sent[0], "did not complete") {
					t.Errorf("dead letters %v, want the event, the error and the execution", s.sent)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.sent) != 0 {
				t.Errorf("dead letters %v on success", s.sent)
			}
			var doc struct {
				Result map[string]any `json:"result"`
			}
			if err := json.Unmarshal(out, &doc); err != nil || doc.Result["status"] != tc.answers[len(tc.answers)-1] {
				t.Errorf("output %s", out)
			}
			if strings.Contains(string(out), "example.com") {
				t.Errorf("the output holds the join key: %s", out)
			}
		})
	}
}

func TestValidateRefusesWhatItCannotRun(t *testing.T) {
	tests := map[string]string{
		"map state":        `{"StartAt":"M","States":{"M":{"Type":"Map","End":true}}}`,
		"other resource":   `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::dynamodb:putItem","End":true}}}`,
		"unknown field":    `{"StartAt":"P","States":{"P":{"Type":"Pass","OutputPath":"$.x","End":true}}}`,
		"missing next":     `{"StartAt":"P","States":{"P":{"Type":"Pass","Next":"Q"}}}`,
		"bad start":        `{"StartAt":"X","States":{"P":{"Type":"Succeed"}}}`,
		"unsupported rule": `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.a","StringMatches":"x*","Next":"D"}],"Default":"D"},"D":{"Type":"Succeed"}}}`,
	}
	for name, def := range tests {
		t.Run(name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal([]byte(def), &d); err != nil {
				t.Fatal(err)
			}
			if _, err := statemachine.New(d); !errors.Is(err, statemachine.ErrUnsupported) {
				t.Errorf("err %v, want ErrUnsupported", err)
			}
		})
	}
}
