// Package statemachine runs an Amazon States Language definition locally,
// the subset the template's state machines use: Pass, Task (Lambda invoke
// and SQS sendMessage integrations), Choice, Wait, Succeed and Fail, with
// Parameters, ResultSelector, ResultPath, Retry and Catch, and JSONPaths of
// the form $, $.a.b and $$.Execution.Id. A definition that uses anything
// else is refused before the run with an error naming it, rather than run
// differently from AWS.
package statemachine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Resources of the Task integrations this package runs.
const (
	LambdaInvoke   = "arn:aws:states:::lambda:invoke"
	SQSSendMessage = "arn:aws:states:::sqs:sendMessage"
)

// ErrUnsupported is returned (wrapped) for a definition this package cannot
// run as AWS would.
var ErrUnsupported = errors.New("statemachine: unsupported definition")

// Failed is the error of an execution that failed: a Fail state, or an
// error no Catch handled.
type Failed struct {
	Name, Cause string
}

func (f *Failed) Error() string {
	return fmt.Sprintf("statemachine: execution failed: %s: %s", f.Name, f.Cause)
}

// Result is what a function invocation returned: its payload, or, when
// Error is set (the function's errorType), its error document.
type Result struct {
	Payload []byte
	Error   string
	Cause   string
}

// Step is one state executed, for the caller to show.
type Step struct {
	N      int    // from 1
	State  string // its name
	Type   string
	Output []byte // the state's output (nil when it failed)
	Err    string // the error it raised, if any
	// Retry is the retry this was (0 for the first attempt); Wait the time
	// waited before it.
	Retry int
	Wait  time.Duration
}

// Machine is a definition and how its tasks reach the world.
type Machine struct {
	Definition map[string]any
	// Invoke runs a function synchronously (lambda:invoke).
	Invoke func(ctx context.Context, function string, payload []byte) (Result, error)
	// Send sends a message to a queue (sqs:sendMessage).
	Send func(ctx context.Context, queue string, body []byte) error
	// Sleep waits for Retry intervals and Wait states; a timer when nil.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnStep is called after every state; optional.
	OnStep func(Step)
	// MaxSteps bounds the states an execution runs (10000 when zero).
	MaxSteps int
}

// New returns a Machine for definition (as samtemplate parsed it: numbers
// are made JSON numbers) once Validate accepts it.
func New(definition map[string]any) (*Machine, error) {
	b, err := json.Marshal(definition)
	if err != nil {
		return nil, fmt.Errorf("statemachine: definition: %w", err)
	}
	m := &Machine{}
	if err := json.Unmarshal(b, &m.Definition); err != nil {
		return nil, fmt.Errorf("statemachine: definition: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Functions returns the FunctionName of every lambda:invoke Task.
func (m *Machine) Functions() []string {
	var fns []string
	for _, st := range asMap(m.Definition["States"]) {
		s := asMap(st)
		if s["Resource"] == LambdaInvoke {
			if fn, ok := asMap(s["Parameters"])["FunctionName"].(string); ok && !slices.Contains(fns, fn) {
				fns = append(fns, fn)
			}
		}
	}
	slices.Sort(fns)
	return fns
}

// Validate checks that the definition uses only what this package runs.
func (m *Machine) Validate() error {
	states := asMap(m.Definition["States"])
	start, _ := m.Definition["StartAt"].(string)
	if states == nil || states[start] == nil {
		return fmt.Errorf("%w: StartAt %q names no state", ErrUnsupported, start)
	}
	known := map[string]bool{
		"Type": true, "Comment": true, "Next": true, "End": true, "Parameters": true, "ResultSelector": true,
		"ResultPath": true, "Resource": true, "Retry": true, "Catch": true, "Choices": true, "Default": true,
		"Error": true, "Cause": true, "Seconds": true, "Result": true,
	}
	for name, v := range states {
		s := asMap(v)
		for k := range s {
			if !known[k] {
				return fmt.Errorf("%w: state %s: field %s", ErrUnsupported, name, k)
			}
		}
		switch s["Type"] {
		case "Pass", "Choice", "Succeed", "Fail", "Wait":
		case "Task":
			if r := s["Resource"]; r != LambdaInvoke && r != SQSSendMessage {
				return fmt.Errorf("%w: state %s: resource %v", ErrUnsupported, name, r)
			}
		default:
			return fmt.Errorf("%w: state %s: type %v", ErrUnsupported, name, s["Type"])
		}
		for _, next := range nexts(s) {
			if states[next] == nil {
				return fmt.Errorf("%w: state %s: next state %q does not exist", ErrUnsupported, name, next)
			}
		}
		for _, c := range asSlice(s["Choices"]) {
			if _, err := choiceMatches(asMap(c), nil); errors.Is(err, ErrUnsupported) {
				return fmt.Errorf("state %s: %w", name, err)
			}
		}
	}
	return nil
}

func nexts(s map[string]any) []string {
	var out []string
	add := func(v any) {
		if n, ok := v.(string); ok {
			out = append(out, n)
		}
	}
	add(s["Next"])
	add(s["Default"])
	for _, c := range asSlice(s["Choices"]) {
		add(asMap(c)["Next"])
	}
	for _, c := range asSlice(s["Catch"]) {
		add(asMap(c)["Next"])
	}
	return out
}

// Run executes the definition with input (JSON) as execution executionID
// and returns the output of the Succeed (or last) state, or a *Failed.
func (m *Machine) Run(ctx context.Context, input []byte, executionID string) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(input, &doc); err != nil {
		return nil, fmt.Errorf("statemachine: input is not JSON: %w", err)
	}
	cx := map[string]any{"Execution": map[string]any{"Id": executionID, "Input": doc}}
	states := asMap(m.Definition["States"])
	name, _ := m.Definition["StartAt"].(string)
	limit := m.MaxSteps
	if limit == 0 {
		limit = 10000
	}
	for n := 1; ; n++ {
		if n > limit {
			return nil, fmt.Errorf("statemachine: more than %d states; stopped", limit)
		}
		s := asMap(states[name])
		out, next, failed, err := m.state(ctx, n, name, s, doc, cx)
		if err != nil {
			return nil, err
		}
		if failed != nil {
			return nil, failed
		}
		doc = out
		if next == "" {
			return json.Marshal(doc)
		}
		name = next
	}
}

// taskError is an error a state raised: its name and cause.
type taskError struct{ name, cause string }

// state runs one state (with its retries) and returns its output and the
// next state ("" at the end), or how the execution failed.
func (m *Machine) state(ctx context.Context, n int, name string, s map[string]any, in any, cx map[string]any) (any, string, *Failed, error) {
	typ, _ := s["Type"].(string)
	next, _ := s["Next"].(string)
	step := Step{N: n, State: name, Type: typ}
	report := func(out any, terr *taskError) {
		if m.OnStep == nil {
			return
		}
		st := step
		if terr != nil {
			st.Err = terr.name + ": " + terr.cause
		} else {
			st.Output, _ = json.Marshal(out)
		}
		m.OnStep(st)
	}
	switch typ {
	case "Succeed":
		report(in, nil)
		return in, "", nil, nil
	case "Fail":
		report(in, nil)
		e, _ := s["Error"].(string)
		c, _ := s["Cause"].(string)
		return nil, "", &Failed{Name: e, Cause: c}, nil
	case "Choice":
		for _, c := range asSlice(s["Choices"]) {
			ok, err := choiceMatches(asMap(c), in)
			if err != nil {
				return nil, "", nil, fmt.Errorf("statemachine: state %s: %w", name, err)
			}
			if ok {
				report(in, nil)
				nx, _ := asMap(c)["Next"].(string)
				return in, nx, nil, nil
			}
		}
		def, ok := s["Default"].(string)
		if !ok {
			return nil, "", &Failed{Name: "States.NoChoiceMatched", Cause: "no choice matched in state " + name}, nil
		}
		report(in, nil)
		return in, def, nil, nil
	case "Wait":
		secs := number(s["Seconds"], 0)
		if err := m.sleep(ctx, time.Duration(secs*float64(time.Second))); err != nil {
			return nil, "", nil, err
		}
		report(in, nil)
		return in, next, nil, nil
	case "Pass":
		var res any = in
		if p, ok := s["Parameters"]; ok {
			res = resolve(p, in, cx)
		} else if r, ok := s["Result"]; ok {
			res = r
		}
		out, err := setPath(in, s, "ResultPath", res)
		if err != nil {
			return nil, "", nil, fmt.Errorf("statemachine: state %s: %w", name, err)
		}
		report(out, nil)
		return out, next, nil, nil
	}
	// Task
	params := in
	if p, ok := s["Parameters"]; ok {
		params = resolve(p, in, cx)
	}
	tries := map[int]int{} // retrier index -> retries made
	var wait time.Duration
	for {
		res, terr, err := m.task(ctx, s["Resource"].(string), params)
		if err != nil {
			return nil, "", nil, fmt.Errorf("statemachine: state %s: %w", name, err)
		}
		if terr == nil {
			if sel, ok := s["ResultSelector"]; ok {
				res = resolve(sel, res, cx)
			}
			out, err := setPath(in, s, "ResultPath", res)
			if err != nil {
				return nil, "", nil, fmt.Errorf("statemachine: state %s: %w", name, err)
			}
			report(out, nil)
			return out, next, nil, nil
		}
		report(nil, terr)
		if i, r := retrier(s, terr.name); r != nil {
			max := intField(r, "MaxAttempts", 3)
			if tries[i] < max {
				interval := float64(intField(r, "IntervalSeconds", 1))
				rate := number(r["BackoffRate"], 2)
				wait = time.Duration(interval * math.Pow(rate, float64(tries[i])) * float64(time.Second))
				tries[i]++
				step.Retry, step.Wait = tries[i], wait
				if err := m.sleep(ctx, wait); err != nil {
					return nil, "", nil, err
				}
				continue
			}
		}
		for _, c := range asSlice(s["Catch"]) {
			cm := asMap(c)
			if matches(asSlice(cm["ErrorEquals"]), terr.name) {
				out, err := setPath(in, cm, "ResultPath", map[string]any{"Error": terr.name, "Cause": terr.cause})
				if err != nil {
					return nil, "", nil, fmt.Errorf("statemachine: state %s: catch: %w", name, err)
				}
				nx, _ := cm["Next"].(string)
				return out, nx, nil, nil
			}
		}
		return nil, "", &Failed{Name: terr.name, Cause: terr.cause}, nil
	}
}

// task runs one Task attempt.
func (m *Machine) task(ctx context.Context, resource string, params any) (any, *taskError, error) {
	p := asMap(params)
	switch resource {
	case LambdaInvoke:
		fn, _ := p["FunctionName"].(string)
		payload, err := json.Marshal(p["Payload"])
		if err != nil {
			return nil, nil, fmt.Errorf("payload: %w", err)
		}
		res, err := m.Invoke(ctx, fn, payload)
		if err != nil {
			return nil, nil, fmt.Errorf("invoke %s: %w", fn, err)
		}
		if res.Error != "" {
			return nil, &taskError{name: res.Error, cause: res.Cause}, nil
		}
		var out any
		if len(res.Payload) > 0 {
			if err := json.Unmarshal(res.Payload, &out); err != nil {
				return nil, &taskError{name: "States.Runtime", cause: "the function's result is not JSON"}, nil
			}
		}
		return map[string]any{"StatusCode": 200.0, "Payload": out}, nil, nil
	default: // SQSSendMessage
		q, _ := p["QueueUrl"].(string)
		body, ok := p["MessageBody"].(string)
		if !ok {
			b, err := json.Marshal(p["MessageBody"])
			if err != nil {
				return nil, nil, fmt.Errorf("message body: %w", err)
			}
			body = string(b)
		}
		if err := m.Send(ctx, q, []byte(body)); err != nil {
			return nil, &taskError{name: "SQS.SdkClientException", cause: err.Error()}, nil
		}
		return map[string]any{"MessageId": "local"}, nil, nil
	}
}

func (m *Machine) sleep(ctx context.Context, d time.Duration) error {
	if m.Sleep != nil {
		return m.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("statemachine: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// retrier returns the first Retry entry that matches the error, and its index.
func retrier(s map[string]any, name string) (int, map[string]any) {
	for i, r := range asSlice(s["Retry"]) {
		if matches(asSlice(asMap(r)["ErrorEquals"]), name) {
			return i, asMap(r)
		}
	}
	return -1, nil
}

// matches reports whether an ErrorEquals list covers the error name.
// States.TaskFailed covers every task error but a timeout, as in AWS.
func matches(list []any, name string) bool {
	for _, e := range list {
		switch e {
		case "States.ALL", name:
			return true
		case "States.TaskFailed":
			if name != "States.Timeout" {
				return true
			}
		}
	}
	return false
}

// choiceMatches evaluates one choice rule on in (nil in: only check that it
// is supported).
func choiceMatches(c map[string]any, in any) (bool, error) {
	v, _ := c["Variable"].(string)
	ops := []string{"StringEquals", "BooleanEquals", "NumericEquals", "IsPresent"}
	for _, op := range ops {
		want, ok := c[op]
		if !ok {
			continue
		}
		if in == nil {
			return false, nil
		}
		got, present := lookup(v, in, nil)
		switch op {
		case "IsPresent":
			return present == want, nil
		case "NumericEquals":
			return present && got == want, nil
		default:
			return present && got == want, nil
		}
	}
	return false, fmt.Errorf("%w: a choice rule without one of %v", ErrUnsupported, ops)
}

// resolve renders a Parameters/ResultSelector template: keys ending in
// ".$" take the value at their path.
func resolve(tmpl, in any, cx map[string]any) any {
	switch t := tmpl.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			if p, ok := strings.CutSuffix(k, ".$"); ok {
				path, _ := v.(string)
				out[p], _ = lookup(path, in, cx)
				continue
			}
			out[k] = resolve(v, in, cx)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			out[i] = resolve(v, in, cx)
		}
		return out
	}
	return tmpl
}

// lookup returns the value at path ($..., or $$... in the context object).
func lookup(path string, in any, cx map[string]any) (any, bool) {
	var cur any = in
	rest, ok := strings.CutPrefix(path, "$$")
	if ok {
		cur = cx
	} else if rest, ok = strings.CutPrefix(path, "$"); !ok {
		return nil, false
	}
	for _, k := range strings.Split(strings.TrimPrefix(rest, "."), ".") {
		if k == "" {
			continue
		}
		m, isMap := cur.(map[string]any)
		if !isMap {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// setPath puts res into in at s[key] (ResultPath): "$" (the default)
// replaces in, null discards res, "$.a.b" sets that field.
func setPath(in any, s map[string]any, key string, res any) (any, error) {
	raw, present := s[key]
	if !present {
		return res, nil
	}
	if raw == nil {
		return in, nil
	}
	path, _ := raw.(string)
	rest, ok := strings.CutPrefix(path, "$")
	if !ok {
		return nil, fmt.Errorf("%s %q is not a path", key, path)
	}
	keys := strings.Split(strings.TrimPrefix(rest, "."), ".")
	if rest == "" {
		return res, nil
	}
	root, ok := copyMap(in)
	if !ok {
		return nil, fmt.Errorf("%s %q: the input is not an object", key, path)
	}
	cur := root
	for i, k := range keys {
		if i == len(keys)-1 {
			cur[k] = res
			break
		}
		next, ok := copyMap(cur[k])
		if !ok {
			next = map[string]any{}
		}
		cur[k] = next
		cur = next
	}
	return root, nil
}

func copyMap(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = e
	}
	return out, true
}

func intField(m map[string]any, key string, def int) int {
	return int(number(m[key], float64(def)))
}

// number reads a number the template gave as a number or as its text
// (YAML scalars may come through as strings).
func number(v any, def float64) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f
		}
	}
	return def
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
