package samtemplate

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/telemetry/logging"
	"github.com/acme/unified-customer-service/shared/testkit"
)

func loadFull(t *testing.T, opts Options) *Template {
	t.Helper()
	tpl, err := Load(filepath.Join("testdata", "full.yaml"), opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tpl
}

func mustFunction(t *testing.T, tpl *Template, id string) *Function {
	t.Helper()
	f, ok := tpl.Function(id)
	if !ok {
		t.Fatalf("function %s not found; have %v", id, tpl.FunctionIDs())
	}
	return f
}

func TestLoadFunctions(t *testing.T) {
	tpl := loadFull(t, Options{})
	if got, want := tpl.FunctionIDs(), []string{"LookupFunction", "ReconcileFunction", "SyncFunction"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("functions = %v, want %v (AuditFunction's condition is false)", got, want)
	}
	abs, _ := filepath.Abs("testdata")
	tests := []struct {
		id       string
		timeout  time.Duration
		memory   int
		arch     string
		codeURI  string
		runtime  string
		handler  string
		tracing  string
		building string
	}{
		{"LookupFunction", 5 * time.Second, 256, "arm64", abs, "provided.al2023", "bootstrap", "Active", "makefile"},
		{"SyncFunction", 10 * time.Second, 10, "arm64", filepath.Join(abs, "functions", "sync"), "provided.al2023", "bootstrap", "Active", "makefile"},
		{"ReconcileFunction", 900 * time.Second, 1024, "x86_64", abs, "provided.al2023", "bootstrap", "Active", "makefile"},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			f := mustFunction(t, tpl, tc.id)
			if f.Timeout != tc.timeout || f.MemoryMB != tc.memory {
				t.Errorf("timeout, memory = %v, %d; want %v, %d", f.Timeout, f.MemoryMB, tc.timeout, tc.memory)
			}
			if len(f.Architectures) != 1 || f.Architectures[0] != tc.arch {
				t.Errorf("architectures = %v, want [%s]", f.Architectures, tc.arch)
			}
			if f.CodeURI != tc.codeURI {
				t.Errorf("CodeURI = %q, want %q", f.CodeURI, tc.codeURI)
			}
			if f.Runtime != tc.runtime || f.Handler != tc.handler || f.Tracing != tc.tracing || f.BuildMethod != tc.building {
				t.Errorf("runtime, handler, tracing, build = %q %q %q %q", f.Runtime, f.Handler, f.Tracing, f.BuildMethod)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	common := map[string]string{
		"SNAPSHOT_URI":             "s3://ucs-snapshots/customers.db",
		"SYSTEM_B_URL":             "http://127.0.0.1:8081",
		"SYSTEM_B_TOKEN":           "",
		"LOG_LEVEL":                "info",
		"MERGE_RULES":              "loyaltyTier=systemA,*=newest",
		"METRICS_NAMESPACE":        "UnifiedCustomerService",
		"SNAPSHOT_REFRESH_SECONDS": "60",
		"DLQ_URL":                  "",
		"REGION_NOTE":              "us-east-1/123456789012/local/${Literal}",
		"FIRST_SUBNET":             "subnet-a",
		"JOINED":                   "a-reports-30",
		"MISSING":                  "",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		opts Options
		id   string
		want map[string]string
	}{
		{"lookup merges globals and its own", Options{}, "LookupFunction", with(map[string]string{"FUNCTION_ROLE": "lookup"})},
		{"reconcile overrides a global", Options{}, "ReconcileFunction", with(map[string]string{"REPORT_URI": "s3://ucs-reports/reports", "LOG_LEVEL": "debug"})},
		{"sync has the globals only", Options{}, "SyncFunction", with(nil)},
		{"overrides, region and stack", Options{
			Parameters: map[string]string{"SnapshotBucket": "other", "SystemBTokenSecretArn": "arn:aws:secretsmanager:x", "NoDefault": "given"},
			Region:     "eu-west-1", AccountID: "111122223333", StackName: "ucs",
		}, "SyncFunction", with(map[string]string{
			"SNAPSHOT_URI":              "s3://other/customers.db",
			"SYSTEM_B_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:x",
			"REGION_NOTE":               "eu-west-1/111122223333/ucs/${Literal}",
			"MISSING":                   "given",
			"JOINED":                    "", // no mapping for eu-west-1
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := loadFull(t, tc.opts)
			f := mustFunction(t, tpl, tc.id)
			if !reflect.DeepEqual(f.Environment, tc.want) {
				for k := range union(f.Environment, tc.want) {
					if f.Environment[k] != tc.want[k] {
						t.Errorf("%s = %q, want %q", k, f.Environment[k], tc.want[k])
					}
					if _, ok := f.Environment[k]; !ok {
						t.Errorf("%s missing", k)
					}
					if _, ok := tc.want[k]; !ok {
						t.Errorf("%s unexpected", k)
					}
				}
			}
		})
	}
}

func union(a, b map[string]string) map[string]bool {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

func TestWarnings(t *testing.T) {
	tpl := loadFull(t, Options{Parameters: map[string]string{"Unknown": "x", "LogLevel": "loud"}})
	all := strings.Join(tpl.Warnings, "\n")
	for _, want := range []string{
		"environment variable DLQ_URL",
		"Fn::GetAtt",
		"environment variable MISSING",
		"parameter NoDefault has no Default",
		"parameter override Unknown",
		`parameter LogLevel: "loud" is not one of its AllowedValues`,
		"AuditFunction: condition DeployAudit is false",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
}

func TestRoutes(t *testing.T) {
	tpl := loadFull(t, Options{})
	var got []string
	for _, r := range tpl.SortedRoutes() {
		got = append(got, r.Function+" "+r.Key()+" "+r.EventName)
	}
	want := []string{
		"SyncFunction $default Default",
		"SyncFunction ANY /admin/{proxy+} Proxy",
		"SyncFunction POST /customer/sync Sync",
		"LookupFunction GET /customer/{email} Lookup",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSchedules(t *testing.T) {
	tpl := loadFull(t, Options{StackName: "ucs"})
	f := mustFunction(t, tpl, "ReconcileFunction")
	want := []Schedule{
		{EventName: "Legacy", Type: "Schedule", Expression: "rate(1 day)", Enabled: false},
		{EventName: "Nightly", Type: "ScheduleV2", Expression: "cron(0 3 * * ? *)", Timezone: "Europe/Berlin",
			Name: "ucs-reconcile", HasInput: true, Enabled: true,
			Input: `{"id":"<aws.scheduler.execution-id>","time":"<aws.scheduler.scheduled-time>"}`},
	}
	if !reflect.DeepEqual(f.Schedules, want) {
		t.Errorf("schedules =\n%+v\nwant\n%+v", f.Schedules, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "empty"},
		{"not a mapping", "- a\n- b\n", "not a mapping"},
		{"no resources", "Parameters: {}\n", "no Resources"},
		{"bad yaml", "Resources: [\n", "parse YAML"},
		{"bad getatt", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      X: !GetAtt NoDot\n", "not Resource.Attribute"},
		{"s3 code", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: s3://b/k.zip\n", "in S3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), ".", Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestIntrinsics(t *testing.T) {
	r := &resolver{
		params:     map[string]any{"P": "v", "L": []any{"x", "y"}},
		paramErr:   map[string]error{},
		pseudo:     map[string]any{"AWS::Region": "us-east-1"},
		conditions: map[string]any{"Loop": map[string]any{"Condition": "Loop"}},
		condCache:  map[string]bool{},
		condBusy:   map[string]bool{},
		resources:  map[string]any{"Res": map[string]any{}},
	}
	tests := []struct {
		name    string
		in      any
		want    any
		wantErr string
	}{
		{"sub with variables", map[string]any{"Fn::Sub": []any{"${A}-${P}", map[string]any{"A": map[string]any{"Ref": "P"}}}}, "v-v", ""},
		{"sub of a resource attribute", map[string]any{"Fn::Sub": "${Res.Arn}"}, nil, "cannot be resolved"},
		{"ref of a resource", map[string]any{"Ref": "Res"}, nil, "cannot be resolved"},
		{"ref of nothing", map[string]any{"Ref": "Nope"}, nil, "no such parameter"},
		{"join a list param", map[string]any{"Fn::Join": []any{"+", map[string]any{"Ref": "L"}}}, "x+y", ""},
		{"split", map[string]any{"Fn::Split": []any{",", "a,b"}}, []any{"a", "b"}, ""},
		{"select out of range", map[string]any{"Fn::Select": []any{"5", []any{"a"}}}, nil, "out of range"},
		{"base64", map[string]any{"Fn::Base64": "hi"}, "aGk=", ""},
		{"equals", map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "P"}, "v"}}, "true", ""},
		{"or", map[string]any{"Fn::Or": []any{map[string]any{"Fn::Equals": []any{"a", "b"}}, map[string]any{"Fn::Equals": []any{"a", "a"}}}}, "true", ""},
		{"self-referencing condition", map[string]any{"Fn::If": []any{"Loop", "a", "b"}}, nil, "refers to itself"},
		{"unclosed sub", map[string]any{"Fn::Sub": "${P"}, nil, "unclosed"},
		{"no value in a list", []any{"a", map[string]any{"Ref": "AWS::NoValue"}}, []any{"a"}, ""},
		{"import", map[string]any{"Fn::ImportValue": "x"}, nil, "cannot be resolved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.eval(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	if _, err := r.eval(map[string]any{"Fn::GetAtt": []any{"Res", "Arn"}}); !errors.Is(err, ErrUnresolvable) {
		t.Errorf("GetAtt err = %v, want ErrUnresolvable", err)
	}
}

func TestParseParameterOverrides(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr string
	}{
		{"pairs", []string{"A=1 B=two"}, map[string]string{"A": "1", "B": "two"}, ""},
		{"quoted", []string{`A="x y" B='q "r"' C=a\ b`}, map[string]string{"A": "x y", "B": `q "r"`, "C": "a b"}, ""},
		{"long form", []string{"ParameterKey=A,ParameterValue=1 ParameterKey=B,ParameterValue=x=y"}, map[string]string{"A": "1", "B": "x=y"}, ""},
		{"later wins", []string{"A=1", "A=2"}, map[string]string{"A": "2"}, ""},
		{"empty value", []string{"A="}, map[string]string{"A": ""}, ""},
		{"no equals", []string{"A"}, nil, "not Key=Value"},
		{"unclosed", []string{`A="x`}, nil, "unclosed"},
		{"empty key", []string{"=x"}, nil, "empty key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseParameterOverrides(tc.in...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestEnvVarsAndComposeEnv(t *testing.T) {
	ev, err := ParseEnvVars([]byte(`{"Parameters": {"LOG_LEVEL": "debug", "UNDECLARED": 1},
		"LookupFunction": {"SYSTEM_B_TOKEN": "t0k", "SNAPSHOT_REFRESH_SECONDS": 5, "MERGE_RULES": null}}`))
	if err != nil {
		t.Fatal(err)
	}
	f := &Function{LogicalID: "LookupFunction", Environment: map[string]string{
		"LOG_LEVEL": "info", "SYSTEM_B_TOKEN": "", "SNAPSHOT_REFRESH_SECONDS": "60", "MERGE_RULES": "x", "SYSTEM_B_URL": "u",
	}}
	tool := map[string]string{"SYSTEM_B_TOKEN": "sim", "SYSTEM_B_URL": "http://sim"}
	env, ignored := f.ComposeEnv(append([]map[string]string{tool}, ev.Layers("LookupFunction")...)...)
	want := map[string]string{"LOG_LEVEL": "debug", "SYSTEM_B_TOKEN": "t0k", "SNAPSHOT_REFRESH_SECONDS": "5", "MERGE_RULES": "", "SYSTEM_B_URL": "http://sim"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env = %v, want %v", env, want)
	}
	if !reflect.DeepEqual(ignored, []string{"UNDECLARED"}) {
		t.Errorf("ignored = %v", ignored)
	}
	for _, bad := range []string{`[]`, `{"Parameters": {"A": {"x": 1}}}`, `{"Parameters": 3}`, `nope`} {
		if _, err := ParseEnvVars([]byte(bad)); err == nil {
			t.Errorf("ParseEnvVars(%s) succeeded", bad)
		}
	}
}

// realTemplate is the service's own template.yaml.
var realTemplate = filepath.Join("..", "..", "..", "..", "template.yaml")

// TestRealTemplate reads the service's own template.yaml.
func TestRealTemplate(t *testing.T) {
	tpl, err := Load(realTemplate, Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, id := range []string{"LookupFunction", "SyncFunction", "ReconcileFunction"} {
		f := mustFunction(t, tpl, id)
		if f.Handler != "bootstrap" || f.Runtime != "provided.al2023" || f.BuildMethod != "makefile" {
			t.Errorf("%s: handler %q runtime %q build %q", id, f.Handler, f.Runtime, f.BuildMethod)
		}
		if f.Environment["SNAPSHOT_URI"] == "" || f.Environment["SYSTEM_B_URL"] == "" {
			t.Errorf("%s: SNAPSHOT_URI %q, SYSTEM_B_URL %q", id, f.Environment["SNAPSHOT_URI"], f.Environment["SYSTEM_B_URL"])
		}
	}
	keys := map[string]string{}
	for _, r := range tpl.SortedRoutes() {
		keys[r.Key()] = r.Function
	}
	if keys["GET /customer/{email}"] != "LookupFunction" || keys["POST /customer/sync"] != "SyncFunction" {
		t.Errorf("routes = %v", keys)
	}
	rf := mustFunction(t, tpl, "ReconcileFunction")
	if len(rf.Schedules) != 0 || rf.Environment["REPORT_URI"] == "" {
		t.Errorf("ReconcileFunction: schedules %v (the state machine has them), REPORT_URI %q", rf.Schedules, rf.Environment["REPORT_URI"])
	}
	sm, ok := tpl.StateMachine("ReconcileStateMachine")
	if !ok || len(sm.Schedules) != 1 || sm.Type != "STANDARD" {
		t.Fatalf("ReconcileStateMachine: %+v", sm)
	}
	task := sm.Definition["States"].(map[string]any)["Reconcile"].(map[string]any)
	if fn := task["Parameters"].(map[string]any)["FunctionName"]; fn != "ReconcileFunction" {
		t.Errorf("the state machine invokes %v, want ReconcileFunction (its Arn substituted by the logical id)", fn)
	}
	for _, w := range tpl.Warnings {
		t.Logf("warning: %s", w)
	}
}

// TestRealTemplateLogLevels checks that the template's LogLevel parameter
// allows exactly the values the functions' one LOG_LEVEL parser
// (logging.ParseLevel) accepts, and that the template passes it on.
func TestRealTemplateLogLevels(t *testing.T) {
	data, err := os.ReadFile(realTemplate)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := decodeYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	param := asMap(asMap(doc["Parameters"])["LogLevel"])
	allowed, _ := param["AllowedValues"].([]any)
	var got []string
	for _, v := range allowed {
		s, _ := v.(string)
		got = append(got, s)
	}
	if want := logging.Levels(); !slices.Equal(got, want) {
		t.Errorf("template.yaml LogLevel AllowedValues = %v, want logging.Levels() %v", got, want)
	}
	def, _ := param["Default"].(string)
	if _, err := logging.ParseLevel(def); err != nil {
		t.Errorf("LogLevel Default %q: %v", def, err)
	}
	tests := []struct {
		value       string
		wantWarning bool
	}{
		{"debug", false}, {"info", false}, {"warn", false}, {"error", false},
		{"warning", true}, {"WARN", true}, {"verbose", true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			tpl, err := Load(realTemplate, Options{Parameters: map[string]string{"LogLevel": tc.value}})
			if err != nil {
				t.Fatal(err)
			}
			warned := slices.ContainsFunc(tpl.Warnings, func(w string) bool { return strings.HasPrefix(w, "parameter LogLevel:") })
			if warned != tc.wantWarning {
				t.Errorf("warnings %q: LogLevel warning %v, want %v", tpl.Warnings, warned, tc.wantWarning)
			}
			for _, f := range tpl.Functions {
				if f.Environment["LOG_LEVEL"] != tc.value {
					t.Errorf("%s: LOG_LEVEL %q, want %q", f.LogicalID, f.Environment["LOG_LEVEL"], tc.value)
				}
			}
		})
	}
}

// TestObjectCreatedRules: the project's CaptureAFunction fires on S3
// Object Created events of the snapshot bucket and key, its parameters'
// defaults resolved.
func TestObjectCreatedRules(t *testing.T) {
	tpl, err := Load(filepath.Join(testkit.Root(t), "template.yaml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := mustFunction(t, tpl, "CaptureAFunction")
	want := []ObjectCreatedRule{{EventName: "SnapshotCreated", Buckets: []string{"ucs-snapshots"}, Keys: []string{"customers.db"}}}
	if !reflect.DeepEqual(f.ObjectCreated, want) {
		t.Fatalf("rules = %+v, want %+v", f.ObjectCreated, want)
	}
	tests := []struct {
		bucket, key string
		want        bool
	}{
		{"ucs-snapshots", "customers.db", true},
		{"ucs-snapshots", "other.db", false},
		{"ucs-reports", "customers.db", false},
	}
	for _, tt := range tests {
		t.Run(tt.bucket+"/"+tt.key, func(t *testing.T) {
			if got := f.ObjectCreated[0].Matches(tt.bucket, tt.key); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}
