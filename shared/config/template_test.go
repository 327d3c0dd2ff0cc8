package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/syncworker"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
	"github.com/acme/unified-customer-service/shared/writeback"
)

// node walks a yaml.Node mapping by keys; nil when a key is missing.
func node(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func mapKeys(n *yaml.Node) []string {
	var out []string
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			out = append(out, n.Content[i].Value)
		}
	}
	return out
}

func loadTemplate(t *testing.T) (*yaml.Node, string) {
	t.Helper()
	root := testkit.Root(t)
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0], root
}

// functionDirs maps the template's logical IDs to their folders.
var functionDirs = map[string]string{
	"LookupFunction": "lookup", "SyncFunction": "sync", "ReconcileFunction": "reconcile",
	"CaptureAFunction":        "capturea",
	"CaptureBWebhookFunction": "captureb", "CaptureBPollFunction": "captureb",
	"SyncWorkerFunction": "syncworker",
}

// fixturePrefix is the prefix of a function's events/ fixtures when it is
// not the folder's name: the sync worker's are Kafka events.
var fixturePrefix = map[string]string{"syncworker": "kafka-"}

func TestTemplateFunctionsAreComplete(t *testing.T) {
	tpl, root := loadTemplate(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	resources := node(tpl, "Resources")
	for _, id := range mapKeys(resources) {
		res := node(resources, id)
		if node(res, "Type").Value != "AWS::Serverless::Function" {
			continue
		}
		found = append(found, id)
		t.Run(id, func(t *testing.T) {
			dir, ok := functionDirs[id]
			if !ok {
				t.Fatalf("function %s is not known to this test; add it to functionDirs", id)
			}
			if _, err := os.Stat(filepath.Join(root, "functions", dir, "main.go")); err != nil {
				t.Errorf("functions/%s/main.go: %v", dir, err)
			}
			if !regexp.MustCompile(`(?m)^build-` + id + `:\n\t\$\(call build_function,` + dir + `\)`).Match(makefile) {
				t.Errorf("Makefile has no build-%s target building ./functions/%s", id, dir)
			}
			if node(res, "Metadata", "BuildMethod").Value != "makefile" {
				t.Errorf("%s: Metadata.BuildMethod is not makefile", id)
			}
			prefix, ok := fixturePrefix[dir]
			if !ok {
				prefix = dir + "-"
			}
			if len(testkit.Events(t, prefix)) == 0 {
				t.Errorf("no events/%s-*.json fixture for %s", dir, id)
			}
		})
	}
	slices.Sort(found)
	if want := []string{"CaptureAFunction", "CaptureBPollFunction", "CaptureBWebhookFunction", "LookupFunction", "ReconcileFunction", "SyncFunction", "SyncWorkerFunction"}; !slices.Equal(found, want) {
		t.Errorf("template functions = %v, want %v", found, want)
	}
}

func TestTemplateSetsEverySetting(t *testing.T) {
	tpl, _ := loadTemplate(t)
	set := map[string]bool{}
	for _, k := range mapKeys(node(tpl, "Globals", "Function", "Environment", "Variables")) {
		set[k] = true
	}
	for _, fn := range []string{"ReconcileFunction", "CaptureAFunction", "SyncWorkerFunction"} {
		for _, k := range mapKeys(node(tpl, "Resources", fn, "Properties", "Environment", "Variables")) {
			set[k] = true
		}
	}
	for _, name := range config.Settings {
		if !set[name] {
			t.Errorf("the code reads %s but template.yaml does not set it", name)
		}
	}
	for name := range set {
		if !slices.Contains(config.Settings, name) {
			t.Errorf("template.yaml sets %s but config.Settings does not list it", name)
		}
	}
}

// TestTemplateRoutesMatchSecurity keeps the HttpApi DefinitionBody (which
// carries each route's authorizer) and the functions' HttpApi events equal.
func TestTemplateRoutesMatchSecurity(t *testing.T) {
	tpl, _ := loadTemplate(t)
	var events []string
	resources := node(tpl, "Resources")
	for _, id := range mapKeys(resources) {
		evs := node(resources, id, "Properties", "Events")
		for _, name := range mapKeys(evs) {
			ev := node(evs, name)
			if node(ev, "Type").Value == "HttpApi" {
				events = append(events, strings.ToLower(node(ev, "Properties", "Method").Value)+" "+node(ev, "Properties", "Path").Value)
			}
		}
	}
	var secured []string
	paths := node(resources, "HttpApi", "Properties", "DefinitionBody", "paths")
	for _, p := range mapKeys(paths) {
		for _, m := range mapKeys(node(paths, p)) {
			if node(paths, p, m, "security") == nil {
				t.Errorf("%s %s has no security", m, p)
			}
			secured = append(secured, m+" "+p)
		}
	}
	slices.Sort(events)
	slices.Sort(secured)
	if !slices.Equal(events, secured) || len(events) != 3 {
		t.Errorf("HttpApi events %v != DefinitionBody operations %v", events, secured)
	}
}

// value renders a node for a message: its tag and value, or "(none)".
func value(n *yaml.Node) string {
	if n == nil {
		return "(none)"
	}
	return strings.TrimSpace(strings.TrimPrefix(n.Tag, "!!str") + " " + n.Value)
}

// TestTemplateAlarmsWatchEmittedMetrics: every alarm on the service's own
// metrics names a metric the code emits, in the namespace the functions
// write (METRICS_NAMESPACE, from the same parameter), with exactly the
// dimension set the EMF lines declare ([["Function"]]) and a Function
// value CloudWatch will see: the function's name (!Ref of a function is
// its name, which is AWS_LAMBDA_FUNCTION_NAME, the value shared/app puts
// in the dimension). An alarm off by any of these never fires.
func TestTemplateAlarmsWatchEmittedMetrics(t *testing.T) {
	root, _ := loadTemplate(t)
	emitted := []string{
		emf.SyncConflicts, emf.SyncLag, emf.SyncPartialResults, emf.SystemBLatency, emf.SystemBTokenRefreshes,
		emf.SnapshotRefreshFailures, emf.SnapshotRejectedOlder, emf.ReconcileCustomers, emf.ReconcileOutOfSync,
		emf.ReconcileIncomplete, emf.ReconcileBadRecordsSystemA, emf.ReconcileBadRecordsSystemB,
		emf.CaptureAPublishedCreates, emf.CaptureAPublishedUpdates, emf.CaptureAPublishedDeletes, emf.CaptureDuration,
		emf.CaptureFailures, emf.CaptureRejectedOlder, emf.CaptureBadRecordsSystemA, emf.CaptureLag,
		emf.CaptureBPublishedCreates, emf.CaptureBPublishedUpdates, emf.CaptureBPublishedDeletes,
		emf.CaptureBadRecordsSystemB, emf.CaptureWebhookRejected, emf.CaptureWebhookFailed,
		syncworker.MetricProcessed, syncworker.MetricSkipped, syncworker.MetricFailed, syncworker.MetricDeadLettered,
		writeback.MetricFailures,
	}
	if v := node(root, "Globals", "Function", "Environment", "Variables", config.EnvMetricsNamespace); v == nil || v.Tag != "!Ref" || v.Value != "MetricsNamespace" {
		t.Fatalf("Globals set %s from %s, want !Ref MetricsNamespace", config.EnvMetricsNamespace, value(v))
	}
	resources := node(root, "Resources")
	checked := 0
	check := func(alarm string, metric *yaml.Node) {
		ns := node(metric, "Namespace")
		if ns == nil || ns.Tag != "!Ref" || ns.Value != "MetricsNamespace" {
			return // an AWS metric (AWS/SQS, ...)
		}
		checked++
		name := node(metric, "MetricName")
		if name == nil || !slices.Contains(emitted, name.Value) {
			t.Errorf("%s watches %s, which no code emits", alarm, value(name))
		}
		dims := node(metric, "Dimensions")
		if dims == nil {
			t.Errorf("%s: no dimensions, want Function (the EMF dimension set)", alarm)
			return
		}
		if len(dims.Content) != 1 {
			t.Errorf("%s: %d dimensions, want exactly Function (the EMF dimension set)", alarm, len(dims.Content))
			return
		}
		d := dims.Content[0]
		fn := node(d, "Value")
		if node(d, "Name") == nil || node(d, "Name").Value != "Function" || fn == nil || fn.Tag != "!Ref" || functionDirs[fn.Value] == "" {
			t.Errorf("%s: dimension %s = %s, want Function = !Ref of a function", alarm, value(node(d, "Name")), value(fn))
		}
	}
	for _, id := range mapKeys(resources) {
		r := node(resources, id)
		if node(r, "Type").Value != "AWS::CloudWatch::Alarm" {
			continue
		}
		props := node(r, "Properties")
		if node(props, "MetricName") != nil {
			check(id, props)
		}
		if ms := node(props, "Metrics"); ms != nil {
			for _, m := range ms.Content {
				if metric := node(m, "MetricStat", "Metric"); metric != nil {
					check(id, metric)
				}
			}
		}
	}
	if checked < 3 {
		t.Errorf("checked %d alarm metrics, want the partial-results pair and the incomplete-run alarm", checked)
	}
}

// TestTemplateScheduleNamedPerStack: a schedule's name is unique per
// account and Region, so the reconciliation's schedule takes the stack's
// name: two stacks of the template (staging, production) can live side by
// side.
func TestTemplateScheduleNamedPerStack(t *testing.T) {
	root, _ := loadTemplate(t)
	for id := range functionDirs {
		events := node(root, "Resources", id, "Properties", "Events")
		for _, ev := range mapKeys(events) {
			e := node(events, ev)
			if node(e, "Type").Value != "ScheduleV2" {
				continue
			}
			if n := node(e, "Properties", "Name"); n == nil || !strings.Contains(n.Value, "${AWS::StackName}") {
				t.Errorf("%s event %s: Name %s, want one built from ${AWS::StackName}", id, ev, value(n))
			}
		}
	}
}
