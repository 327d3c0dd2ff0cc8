// Package samtemplate reads an AWS SAM template the way `sam local` does:
// the functions (Globals merged with each function's own properties), their
// environment with Parameters defaults, --parameter-overrides and the
// intrinsic functions resolved, and their HttpApi and schedule events. It
// parses the whole template (every short-form tag, conditions, mappings) and
// resolves what the local tool needs; a value that only a deployment can know
// becomes a warning, never a failure.
package samtemplate

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Lambda's defaults for properties a template leaves out.
const (
	DefaultTimeout  = 3 * time.Second
	DefaultMemoryMB = 128
)

// Defaults of the pseudo parameters, as sam local uses them.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
	DefaultStackName = "local"
)

// Options are the inputs a deployment would supply.
type Options struct {
	// Parameters override the template's parameter defaults
	// (--parameter-overrides).
	Parameters map[string]string
	// Region, AccountID and StackName are the pseudo parameters
	// AWS::Region, AWS::AccountId and AWS::StackName; empty means the
	// Default... constants.
	Region, AccountID, StackName string
}

// Template is a parsed SAM template.
type Template struct {
	Path      string      // the file read ("" for Parse)
	Dir       string      // the directory CodeUri paths are relative to
	Functions []*Function // sorted by LogicalID
	// StateMachines are the AWS::Serverless::StateMachine resources, sorted
	// by LogicalID.
	StateMachines []*StateMachine
	Warnings      []string // what could not be resolved, and what was ignored
	Region        string
	AccountID     string
	StackName     string
}

// Function is one AWS::Serverless::Function with its resolved properties.
type Function struct {
	LogicalID     string
	Runtime       string
	Handler       string
	CodeURI       string // absolute directory
	BuildMethod   string // Metadata.BuildMethod ("makefile", "go1.x", ...)
	Timeout       time.Duration
	MemoryMB      int
	Architectures []string
	Tracing       string
	// Environment holds the variables the template declares, resolved;
	// unresolvable values are "" (and a warning).
	Environment map[string]string
	Routes      []Route    // HttpApi events
	Schedules   []Schedule // Schedule and ScheduleV2 events
	// ObjectCreated are the EventBridgeRule events whose pattern matches
	// S3 "Object Created" events of given buckets and keys.
	ObjectCreated []ObjectCreatedRule
	// Kafka are its Kafka event source mappings: MSK and SelfManagedKafka
	// events and AWS::Lambda::EventSourceMapping resources.
	Kafka []KafkaSource
}

// ObjectCreatedRule is an EventBridgeRule event matching S3 "Object
// Created" events (S3 Event Notifications to EventBridge): source aws.s3,
// detail-type "Object Created", detail.bucket.name and detail.object.key
// lists of exact values (other pattern forms are not matched locally).
type ObjectCreatedRule struct {
	EventName string
	Buckets   []string
	Keys      []string // empty: every key
}

// Matches reports whether an object created in bucket under key triggers the rule.
func (r ObjectCreatedRule) Matches(bucket, key string) bool {
	return slices.Contains(r.Buckets, bucket) && (len(r.Keys) == 0 || slices.Contains(r.Keys, key))
}

// Route is one HttpApi event.
type Route struct {
	EventName string
	Method    string // upper-case; "ANY" matches every method
	Path      string // "/customer/{email}"; "$default" for the catch-all route
	// PayloadFormatVersion is "2.0" unless the event says otherwise.
	PayloadFormatVersion string
}

// Key returns the route key as API Gateway spells it: "GET /customer/{email}"
// or "$default".
func (r Route) Key() string {
	if r.Path == "$default" {
		return "$default"
	}
	return r.Method + " " + r.Path
}

// Schedule is one Schedule (EventBridge rule) or ScheduleV2 (EventBridge
// Scheduler) event.
type Schedule struct {
	EventName  string
	Type       string // "Schedule" or "ScheduleV2"
	Expression string // rate(...) / cron(...) / at(...)
	Timezone   string // ScheduleV2's ScheduleExpressionTimezone
	Name       string // the rule's or schedule's Name, if given
	Input      string // the JSON the target receives, if HasInput
	HasInput   bool
	Enabled    bool
}

// StateMachine is one AWS::Serverless::StateMachine with an inline
// Definition.
type StateMachine struct {
	LogicalID string
	Type      string // STANDARD (the default) or EXPRESS
	// Definition is the Amazon States Language definition with its
	// DefinitionSubstitutions made: a function's Arn (Fn::GetAtt F.Arn, Ref
	// F) becomes the function's logical id, which is what the local Lambda
	// Invoke API answers to; any other resource becomes "local:<LogicalId>".
	Definition map[string]any
	Schedules  []Schedule // its Schedule and ScheduleV2 events
}

// Function returns the function with the given logical id.
func (t *Template) Function(logicalID string) (*Function, bool) {
	for _, f := range t.Functions {
		if f.LogicalID == logicalID {
			return f, true
		}
	}
	return nil, false
}

// FunctionIDs returns the logical ids of every function, sorted.
func (t *Template) FunctionIDs() []string {
	ids := make([]string, len(t.Functions))
	for i, f := range t.Functions {
		ids[i] = f.LogicalID
	}
	return ids
}

// Load reads and parses the template at path.
func Load(path string, opts Options) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: read template: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: read template: %w", err)
	}
	t, err := Parse(data, filepath.Dir(abs), opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Path = abs
	return t, nil
}

// Parse parses a template; dir is the directory CodeUri paths are relative to.
func Parse(data []byte, dir string, opts Options) (*Template, error) {
	doc, err := decodeYAML(data)
	if err != nil {
		return nil, err
	}
	t := &Template{Dir: dir, Region: opts.Region, AccountID: opts.AccountID, StackName: opts.StackName}
	if t.Region == "" {
		t.Region = DefaultRegion
	}
	if t.AccountID == "" {
		t.AccountID = DefaultAccountID
	}
	if t.StackName == "" {
		t.StackName = DefaultStackName
	}
	resources, _ := doc["Resources"].(map[string]any)
	if resources == nil {
		return nil, fmt.Errorf("samtemplate: the template has no Resources")
	}
	r := &resolver{
		params:     map[string]any{},
		paramErr:   map[string]error{},
		pseudo:     pseudoParameters(t),
		conditions: asMap(doc["Conditions"]),
		condCache:  map[string]bool{},
		condBusy:   map[string]bool{},
		mappings:   asMap(doc["Mappings"]),
		resources:  resources,
	}
	t.resolveParameters(r, asMap(doc["Parameters"]), opts.Parameters)
	globals := asMap(asMap(doc["Globals"])["Function"])
	for _, id := range sortedKeys(resources) {
		res := asMap(resources[id])
		if res["Type"] == "AWS::Serverless::StateMachine" {
			if sm := t.stateMachine(r, id, res, resources); sm != nil {
				t.StateMachines = append(t.StateMachines, sm)
			}
			continue
		}
		if res["Type"] != "AWS::Serverless::Function" {
			continue
		}
		if cond, ok := res["Condition"].(string); ok {
			on, err := r.condition(cond)
			if err != nil {
				t.warnf("%s: condition %s: %v; the function is kept", id, cond, err)
			} else if !on {
				t.warnf("%s: condition %s is false; the function is left out", id, cond)
				continue
			}
		}
		f, err := t.function(r, id, res, globals)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: %s: %w", id, err)
		}
		t.Functions = append(t.Functions, f)
	}
	t.eventSourceMappings(r, resources)
	return t, nil
}

// stateMachine parses a state machine, or warns and returns nil when its
// definition is not inline.
func (t *Template) stateMachine(r *resolver, id string, res, resources map[string]any) *StateMachine {
	props := asMap(res["Properties"])
	def := asMap(props["Definition"])
	if def == nil {
		t.warnf("%s: no inline Definition; the state machine is not run locally", id)
		return nil
	}
	sm := &StateMachine{LogicalID: id, Type: "STANDARD"}
	if v, ok := props["Type"].(string); ok {
		sm.Type = strings.ToUpper(v)
	}
	subs := map[string]string{}
	for name, v := range asMap(props["DefinitionSubstitutions"]) {
		target := ""
		switch {
		case asMap(v)["Fn::GetAtt"] != nil:
			switch a := asMap(v)["Fn::GetAtt"].(type) {
			case []any:
				if len(a) > 0 {
					target, _ = a[0].(string)
				}
			case string:
				target, _, _ = strings.Cut(a, ".")
			}
		case asMap(v)["Ref"] != nil:
			target, _ = asMap(v)["Ref"].(string)
		}
		if target == "" || resources[target] == nil {
			ev, err := r.eval(v)
			if s, serr := scalarString(ev); err == nil && serr == nil {
				subs[name] = s
				continue
			}
			t.warnf("%s: DefinitionSubstitutions %s: %s cannot be resolved locally", id, name, describe(v))
			continue
		}
		if asMap(resources[target])["Type"] == "AWS::Serverless::Function" {
			subs[name] = target
		} else {
			subs[name] = "local:" + target
		}
	}
	sm.Definition, _ = substitute(def, subs).(map[string]any)
	holder := &Function{LogicalID: id}
	events := asMap(props["Events"])
	for _, name := range sortedKeys(events) {
		t.event(r, holder, name, asMap(events[name]))
	}
	sm.Schedules = holder.Schedules
	return sm
}

// substitute replaces ${name} in every string of v by subs[name].
func substitute(v any, subs map[string]string) any {
	switch x := v.(type) {
	case string:
		for name, val := range subs {
			x = strings.ReplaceAll(x, "${"+name+"}", val)
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = substitute(e, subs)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substitute(e, subs)
		}
		return out
	}
	return v
}

// StateMachine returns the state machine with the given logical id.
func (t *Template) StateMachine(logicalID string) (*StateMachine, bool) {
	for _, sm := range t.StateMachines {
		if sm.LogicalID == logicalID {
			return sm, true
		}
	}
	return nil, false
}

func pseudoParameters(t *Template) map[string]any {
	partition, suffix := "aws", "amazonaws.com"
	switch {
	case strings.HasPrefix(t.Region, "cn-"):
		partition, suffix = "aws-cn", "amazonaws.com.cn"
	case strings.HasPrefix(t.Region, "us-gov-"):
		partition = "aws-us-gov"
	}
	return map[string]any{
		"AWS::Region":           t.Region,
		"AWS::AccountId":        t.AccountID,
		"AWS::StackName":        t.StackName,
		"AWS::StackId":          fmt.Sprintf("arn:%s:cloudformation:%s:%s:stack/%s/00000000-0000-0000-0000-000000000000", partition, t.Region, t.AccountID, t.StackName),
		"AWS::Partition":        partition,
		"AWS::URLSuffix":        suffix,
		"AWS::NotificationARNs": []any{},
	}
}

func (t *Template) resolveParameters(r *resolver, decl map[string]any, overrides map[string]string) {
	for _, name := range sortedKeys(overrides2any(overrides)) {
		if _, ok := decl[name]; !ok {
			t.warnf("parameter override %s: the template declares no such parameter; ignored", name)
		}
	}
	for _, name := range sortedKeys(decl) {
		p := asMap(decl[name])
		typ, _ := p["Type"].(string)
		value, ok := overrides[name]
		if !ok {
			def, hasDefault := p["Default"]
			switch {
			case !hasDefault:
				r.paramErr[name] = fmt.Errorf("%w: parameter %s has no Default (pass it with --parameter-overrides)", ErrUnresolvable, name)
				continue
			case strings.HasPrefix(typ, "AWS::SSM::Parameter::Value"):
				r.paramErr[name] = fmt.Errorf("%w: parameter %s is read from SSM (pass it with --parameter-overrides)", ErrUnresolvable, name)
				continue
			}
			s, err := scalarString(def)
			if err != nil {
				r.paramErr[name] = fmt.Errorf("samtemplate: parameter %s: Default: %w", name, err)
				continue
			}
			value = s
		}
		if allowed, ok := p["AllowedValues"].([]any); ok && !slices.Contains(allowed, any(value)) {
			t.warnf("parameter %s: %q is not one of its AllowedValues", name, value)
		}
		if typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<") {
			var list []any
			for _, item := range strings.Split(value, ",") {
				list = append(list, strings.TrimSpace(item))
			}
			r.params[name] = list
			continue
		}
		r.params[name] = value
	}
}

func overrides2any(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (t *Template) function(r *resolver, id string, res, globals map[string]any) (*Function, error) {
	props := mergeProperties(globals, asMap(res["Properties"]))
	f := &Function{
		LogicalID:   id,
		Timeout:     DefaultTimeout,
		MemoryMB:    DefaultMemoryMB,
		Environment: map[string]string{},
	}
	f.Runtime = t.stringProp(r, id, props, "Runtime")
	f.Handler = t.stringProp(r, id, props, "Handler")
	f.Tracing = t.stringProp(r, id, props, "Tracing")
	f.BuildMethod, _ = asMap(res["Metadata"])["BuildMethod"].(string)
	codeURI := "."
	switch v := props["CodeUri"].(type) {
	case nil:
	case string:
		codeURI = v
	default:
		ev, err := r.eval(v)
		s, isString := ev.(string)
		if err != nil || !isString {
			return nil, fmt.Errorf("CodeUri must be a local path, got %s", describe(v))
		}
		codeURI = s
	}
	if strings.HasPrefix(codeURI, "s3://") {
		return nil, fmt.Errorf("CodeUri %s is in S3; the local tool builds from source", codeURI)
	}
	if !filepath.IsAbs(codeURI) {
		codeURI = filepath.Join(t.Dir, codeURI)
	}
	f.CodeURI = filepath.Clean(codeURI)
	if s := t.stringProp(r, id, props, "Timeout"); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n <= 0 {
			t.warnf("%s: Timeout %q is not a positive number; using %v", id, s, DefaultTimeout)
		} else {
			f.Timeout = time.Duration(n * float64(time.Second))
		}
	}
	if s := t.stringProp(r, id, props, "MemorySize"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.warnf("%s: MemorySize %q is not a positive integer; using %d", id, s, DefaultMemoryMB)
		} else {
			f.MemoryMB = n
		}
	}
	if v, ok := props["Architectures"]; ok {
		ev, err := r.eval(v)
		list, isList := ev.([]any)
		if err != nil || !isList {
			t.warnf("%s: Architectures: cannot be resolved; using [x86_64]", id)
		}
		for _, a := range list {
			if s, ok := a.(string); ok {
				f.Architectures = append(f.Architectures, s)
			}
		}
	}
	if len(f.Architectures) == 0 {
		f.Architectures = []string{"x86_64"}
	}
	t.environment(r, f, props["Environment"])
	events := asMap(props["Events"])
	for _, name := range sortedKeys(events) {
		t.event(r, f, name, asMap(events[name]))
	}
	return f, nil
}

// environment resolves Environment.Variables one variable at a time, so one
// unresolvable value costs only that variable.
func (t *Template) environment(r *resolver, f *Function, env any) {
	envMap, ok := t.plainMap(r, f.LogicalID, "Environment", env)
	if !ok {
		return
	}
	vars, ok := t.plainMap(r, f.LogicalID, "Environment.Variables", envMap["Variables"])
	if !ok {
		return
	}
	for _, k := range sortedKeys(vars) {
		v, err := r.eval(vars[k])
		if err != nil {
			t.warnf("%s: environment variable %s: %v; set to \"\"", f.LogicalID, k, err)
			f.Environment[k] = ""
			continue
		}
		if v == noValue {
			continue
		}
		s, err := scalarString(v)
		if err != nil {
			t.warnf("%s: environment variable %s: %v; set to \"\"", f.LogicalID, k, err)
		}
		f.Environment[k] = s
	}
}

// plainMap returns v as a mapping, evaluating it first when it is an
// intrinsic function (Environment: !If [...]).
func (t *Template) plainMap(r *resolver, id, what string, v any) (map[string]any, bool) {
	if v == nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if ok && !isIntrinsic(m) {
		return m, true
	}
	ev, err := r.eval(v)
	if err != nil {
		t.warnf("%s: %s: %v; left unset", id, what, err)
		return nil, false
	}
	if m, ok = ev.(map[string]any); !ok {
		if ev != noValue {
			t.warnf("%s: %s is %s, not a mapping; left unset", id, what, describe(ev))
		}
		return nil, false
	}
	return m, true
}

func (t *Template) event(r *resolver, f *Function, name string, ev map[string]any) {
	typ, _ := ev["Type"].(string)
	rawProps := asMap(ev["Properties"])
	str := func(key string) (string, bool) {
		v, ok := rawProps[key]
		if !ok {
			return "", false
		}
		rv, err := r.eval(v)
		if err == nil {
			var s string
			if s, err = scalarString(rv); err == nil {
				return s, true
			}
		}
		t.warnf("%s: event %s: %s: %v", f.LogicalID, name, key, err)
		return "", false
	}
	switch typ {
	case "HttpApi":
		rt := Route{EventName: name, Method: "ANY", Path: "$default", PayloadFormatVersion: "2.0"}
		if p, ok := str("Path"); ok {
			rt.Path = p
		}
		if m, ok := str("Method"); ok {
			rt.Method = strings.ToUpper(m)
		}
		if v, ok := str("PayloadFormatVersion"); ok {
			rt.PayloadFormatVersion = v
			if v != "2.0" {
				t.warnf("%s: event %s: payload format %s; the local API serves 2.0", f.LogicalID, name, v)
			}
		}
		if rt.Path != "$default" && !strings.HasPrefix(rt.Path, "/") {
			t.warnf("%s: event %s: path %q does not start with /; ignored", f.LogicalID, name, rt.Path)
			return
		}
		f.Routes = append(f.Routes, rt)
	case "Schedule", "ScheduleV2":
		s := Schedule{EventName: name, Type: typ, Enabled: true}
		exprKey := "Schedule"
		if typ == "ScheduleV2" {
			exprKey = "ScheduleExpression"
			s.Timezone, _ = str("ScheduleExpressionTimezone")
		}
		s.Expression, _ = str(exprKey)
		s.Name, _ = str("Name")
		s.Input, s.HasInput = str("Input")
		if v, ok := str("Enabled"); ok && strings.EqualFold(v, "false") {
			s.Enabled = false
		}
		if v, ok := str("State"); ok && strings.EqualFold(v, "DISABLED") {
			s.Enabled = false
		}
		f.Schedules = append(f.Schedules, s)
	case "EventBridgeRule":
		pat, err := r.eval(rawProps["Pattern"])
		if err != nil {
			t.warnf("%s: event %s: Pattern: %v", f.LogicalID, name, err)
			return
		}
		if rule, ok := objectCreatedRule(name, asMap(pat)); ok {
			f.ObjectCreated = append(f.ObjectCreated, rule)
		} else {
			t.warnf("%s: event %s: only S3 Object Created patterns on exact buckets are fired locally", f.LogicalID, name)
		}
	case KafkaMSK, KafkaSelfManaged:
		t.kafkaEvent(r, f, name, typ, rawProps)
	case "Api":
		t.warnf("%s: event %s: REST Api events are not served locally (only HttpApi)", f.LogicalID, name)
	}
}

func (t *Template) stringProp(r *resolver, id string, props map[string]any, key string) string {
	v, ok := props[key]
	if !ok {
		return ""
	}
	ev, err := r.eval(v)
	if err == nil {
		var s string
		if s, err = scalarString(ev); err == nil {
			return s
		}
	}
	t.warnf("%s: %s: %v; left unset", id, key, err)
	return ""
}

func (t *Template) warnf(format string, args ...any) {
	t.Warnings = append(t.Warnings, fmt.Sprintf(format, args...))
}

// mergeProperties merges Globals.Function into a function's properties as SAM
// does: the function's scalars and lists win, mappings merge key by key.
// Intrinsic functions are values, never merged into.
func mergeProperties(global, own map[string]any) map[string]any {
	out := make(map[string]any, len(global)+len(own))
	for k, v := range global {
		out[k] = v
	}
	for k, v := range own {
		gm, gok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if gok && ook && !isIntrinsic(gm) && !isIntrinsic(om) {
			out[k] = mergeProperties(gm, om)
			continue
		}
		out[k] = v
	}
	return out
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// SortedRoutes returns every HttpApi route of the template with the function
// serving it, in a stable order.
func (t *Template) SortedRoutes() []FunctionRoute {
	var out []FunctionRoute
	for _, f := range t.Functions {
		for _, rt := range f.Routes {
			out = append(out, FunctionRoute{Route: rt, Function: f.LogicalID})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// FunctionRoute is a Route with the logical id of the function it invokes.
type FunctionRoute struct {
	Route
	Function string
}

// objectCreatedRule reads an EventBridge pattern that matches S3 "Object
// Created" events of exact buckets (and keys).
func objectCreatedRule(name string, pat map[string]any) (ObjectCreatedRule, bool) {
	strs := func(v any) []string {
		l, _ := v.([]any)
		var out []string
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	detail := asMap(pat["detail"])
	rule := ObjectCreatedRule{
		EventName: name,
		Buckets:   strs(asMap(detail["bucket"])["name"]),
		Keys:      strs(asMap(detail["object"])["key"]),
	}
	ok := slices.Contains(strs(pat["source"]), "aws.s3") && slices.Contains(strs(pat["detail-type"]), "Object Created") && len(rule.Buckets) > 0
	return rule, ok
}
