package samtemplate

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kafka event source kinds: the SAM event types, which are also what
// decides the event's eventSource ("aws:kafka" or "SelfManagedKafka").
const (
	KafkaMSK         = "MSK"
	KafkaSelfManaged = "SelfManagedKafka"
)

// Lambda's defaults for Kafka event source mappings.
const (
	DefaultKafkaBatchSize      = 100
	DefaultKafkaBatchingWindow = 500 * time.Millisecond
	// KafkaRetriesWithDestination is the retry bound Lambda applies when a
	// mapping retries forever (MaximumRetryAttempts -1) but has an
	// on-failure destination.
	KafkaRetriesWithDestination = 10
)

// KafkaSource is a Kafka event source mapping of a function: a SAM MSK or
// SelfManagedKafka event, or an AWS::Lambda::EventSourceMapping resource
// whose FunctionName names the function.
type KafkaSource struct {
	Name             string   // the event's name, or the mapping resource's logical id
	Kind             string   // KafkaMSK or KafkaSelfManaged
	EventSourceARN   string   // MSK: the cluster ARN (Stream / EventSourceArn)
	BootstrapServers []string // self-managed: KafkaBootstrapServers as declared
	Topics           []string
	StartingPosition string // TRIM_HORIZON (the default here) or LATEST
	ConsumerGroupID  string // "" when the template sets none
	BatchSize        int
	BatchingWindow   time.Duration
	// ReportBatchItemFailures is FunctionResponseTypes containing it.
	ReportBatchItemFailures bool
	// MaximumRetryAttempts is -1 (Lambda's default: until the record
	// expires) or the retries after the first attempt.
	MaximumRetryAttempts int
	OnFailure            string // DestinationConfig.OnFailure.Destination, "" for none
	Enabled              bool
}

// EventSourceName is what the invocation event's eventSource says.
func (k KafkaSource) EventSourceName() string {
	if k.Kind == KafkaSelfManaged {
		return "SelfManagedKafka"
	}
	return "aws:kafka"
}

// kafkaEvent reads a SAM MSK or SelfManagedKafka event's properties.
func (t *Template) kafkaEvent(r *resolver, f *Function, name, typ string, rawProps map[string]any) {
	rest, dest := splitDestination(r, rawProps)
	ev, err := r.eval(rest)
	if err != nil {
		t.warnf("%s: event %s: %v; the mapping is left out", f.LogicalID, name, err)
		return
	}
	props := asMap(ev)
	k := KafkaSource{Name: name, Kind: typ, OnFailure: dest}
	if typ == KafkaMSK {
		k.EventSourceARN = t.kafkaString(f.LogicalID, name, props, "Stream")
	} else {
		k.BootstrapServers = t.kafkaStrings(f.LogicalID, name, props, "KafkaBootstrapServers")
	}
	t.kafkaCommon(f, &k, props)
	switch typ {
	case KafkaMSK:
		if v := t.kafkaString(f.LogicalID, name, asMap(props["AmazonManagedKafkaEventSourceConfig"]), "ConsumerGroupId"); v != "" {
			k.ConsumerGroupID = v
		}
	default:
		if v := t.kafkaString(f.LogicalID, name, asMap(props["SelfManagedKafkaEventSourceConfig"]), "ConsumerGroupId"); v != "" {
			k.ConsumerGroupID = v
		}
	}
	if v := t.kafkaString(f.LogicalID, name, props, "ConsumerGroupId"); v != "" {
		k.ConsumerGroupID = v
	}
	t.addKafka(f, k)
}

// kafkaCommon reads the properties SAM events and mapping resources share.
func (t *Template) kafkaCommon(f *Function, k *KafkaSource, props map[string]any) {
	id, name := f.LogicalID, k.Name
	k.Topics = t.kafkaStrings(id, name, props, "Topics")
	k.StartingPosition = strings.ToUpper(t.kafkaString(id, name, props, "StartingPosition"))
	k.BatchSize = t.kafkaInt(id, name, props, "BatchSize", DefaultKafkaBatchSize)
	k.BatchingWindow = DefaultKafkaBatchingWindow
	if _, ok := props["MaximumBatchingWindowInSeconds"]; ok {
		k.BatchingWindow = time.Duration(t.kafkaInt(id, name, props, "MaximumBatchingWindowInSeconds", 0)) * time.Second
	}
	k.MaximumRetryAttempts = t.kafkaInt(id, name, props, "MaximumRetryAttempts", -1)
	k.ReportBatchItemFailures = slices.Contains(t.kafkaStrings(id, name, props, "FunctionResponseTypes"), "ReportBatchItemFailures")
	k.Enabled = !strings.EqualFold(t.kafkaString(id, name, props, "Enabled"), "false")
}

// addKafka validates k and adds it to f, or warns and leaves it out.
func (t *Template) addKafka(f *Function, k KafkaSource) {
	switch {
	case len(k.Topics) == 0:
		t.warnf("%s: Kafka event source %s has no Topics; left out", f.LogicalID, k.Name)
		return
	case k.BatchSize < 1 || k.BatchSize > 10000:
		t.warnf("%s: Kafka event source %s: BatchSize %d is outside 1..10000; left out", f.LogicalID, k.Name, k.BatchSize)
		return
	case k.BatchingWindow < 0 || k.BatchingWindow > 300*time.Second:
		t.warnf("%s: Kafka event source %s: MaximumBatchingWindowInSeconds is outside 0..300; left out", f.LogicalID, k.Name)
		return
	case k.MaximumRetryAttempts < -1:
		t.warnf("%s: Kafka event source %s: MaximumRetryAttempts %d is below -1; left out", f.LogicalID, k.Name, k.MaximumRetryAttempts)
		return
	}
	switch k.StartingPosition {
	case "":
		k.StartingPosition = "TRIM_HORIZON"
	case "TRIM_HORIZON", "LATEST":
	default:
		t.warnf("%s: Kafka event source %s: StartingPosition %s is not emulated; TRIM_HORIZON is used", f.LogicalID, k.Name, k.StartingPosition)
		k.StartingPosition = "TRIM_HORIZON"
	}
	f.Kafka = append(f.Kafka, k)
}

// eventSourceMappings attaches the AWS::Lambda::EventSourceMapping
// resources with Kafka sources to their functions.
func (t *Template) eventSourceMappings(r *resolver, resources map[string]any) {
	for _, id := range sortedKeys(resources) {
		res := asMap(resources[id])
		if res["Type"] != "AWS::Lambda::EventSourceMapping" {
			continue
		}
		if cond, ok := res["Condition"].(string); ok {
			on, err := r.condition(cond)
			if err != nil {
				t.warnf("%s: condition %s: %v; the mapping is left out", id, cond, err)
				continue
			}
			if !on {
				continue // e.g. the MSK mappings when the template selects self-managed Kafka
			}
		}
		raw := asMap(res["Properties"])
		fnID := functionRef(raw["FunctionName"])
		rest, dest := splitDestination(r, raw)
		if fnID != "" {
			delete(rest, "FunctionName") // a Ref to a function has no local value
		}
		ev, err := r.eval(rest)
		if err != nil {
			t.warnf("%s: %v; the mapping is left out", id, err)
			continue
		}
		props := asMap(ev)
		if fnID == "" {
			s, _ := scalarString(props["FunctionName"])
			fnID = s[strings.LastIndex(s, ":")+1:]
		}
		f, ok := t.Function(fnID)
		if !ok {
			t.warnf("%s: FunctionName names no function of the template; left out", id)
			continue
		}
		k := KafkaSource{Name: id, OnFailure: dest}
		selfManaged := asMap(asMap(props["SelfManagedEventSource"])["Endpoints"])
		arn, _ := scalarString(props["EventSourceArn"])
		switch {
		case len(selfManaged) > 0:
			k.Kind = KafkaSelfManaged
			k.BootstrapServers = t.kafkaStrings(id, "", selfManaged, "KafkaBootstrapServers")
			k.ConsumerGroupID = t.kafkaString(id, "", asMap(props["SelfManagedKafkaEventSourceConfig"]), "ConsumerGroupId")
		case strings.HasPrefix(arn, "arn:aws:kafka:") || strings.Contains(arn, ":kafka:"):
			k.Kind = KafkaMSK
			k.EventSourceARN = arn
			k.ConsumerGroupID = t.kafkaString(id, "", asMap(props["AmazonManagedKafkaEventSourceConfig"]), "ConsumerGroupId")
		default:
			continue // not Kafka (SQS, Kinesis, ...): not emulated here
		}
		t.kafkaCommon(f, &k, props)
		t.addKafka(f, k)
	}
}

// splitDestination returns props without DestinationConfig, and the
// on-failure destination: its value, or the logical id it refers to when
// that has no local value (an SQS queue's ARN); "" for none. Locally the
// destination is always the dead-letter store.
func splitDestination(r *resolver, props map[string]any) (map[string]any, string) {
	rest := maps.Clone(props)
	delete(rest, "DestinationConfig")
	raw, ok := asMap(asMap(props["DestinationConfig"])["OnFailure"])["Destination"]
	if !ok {
		return rest, ""
	}
	if v, err := r.eval(raw); err == nil {
		if s, err := scalarString(v); err == nil && s != "" {
			return rest, s
		}
	}
	if id := functionRef(raw); id != "" {
		return rest, id
	}
	return rest, "(unresolved)"
}

// functionRef returns the logical id v (a FunctionName, a destination)
// refers to by Ref or GetAtt, before evaluation; "" when it is neither.
func functionRef(v any) string {
	m := asMap(v)
	if ref, ok := m["Ref"].(string); ok {
		return ref
	}
	switch ga := m["Fn::GetAtt"].(type) {
	case []any:
		if len(ga) == 2 {
			s, _ := ga[0].(string)
			return s
		}
	case string:
		id, _, _ := strings.Cut(ga, ".")
		return id
	}
	return ""
}

func (t *Template) kafkaString(id, name string, props map[string]any, key string) string {
	v, ok := props[key]
	if !ok {
		return ""
	}
	s, err := scalarString(v)
	if err != nil {
		t.warnf("%s: Kafka event source %s: %s: %v; left unset", id, name, key, err)
		return ""
	}
	return s
}

func (t *Template) kafkaStrings(id, name string, props map[string]any, key string) []string {
	v, ok := props[key]
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var out []string
	for _, item := range list {
		s, err := scalarString(item)
		if err != nil {
			t.warnf("%s: Kafka event source %s: %s: %v; item left out", id, name, key, err)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (t *Template) kafkaInt(id, name string, props map[string]any, key string, def int) int {
	s := t.kafkaString(id, name, props, key)
	if s == "" {
		return def
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n != math.Trunc(n) {
		t.warnf("%s: Kafka event source %s: %s %q is not a whole number; %d is used", id, name, key, s, def)
		return def
	}
	return int(n)
}

// KafkaFunctions returns the functions with an enabled Kafka event source.
func (t *Template) KafkaFunctions() []*Function {
	var out []*Function
	for _, f := range t.Functions {
		if slices.ContainsFunc(f.Kafka, func(k KafkaSource) bool { return k.Enabled }) {
			out = append(out, f)
		}
	}
	return out
}

// String describes the mapping in one line, for banners and logs.
func (k KafkaSource) String() string {
	retries := "retries until success"
	switch {
	case k.MaximumRetryAttempts >= 0:
		retries = fmt.Sprintf("%d retries", k.MaximumRetryAttempts)
	case k.OnFailure != "":
		retries = fmt.Sprintf("%d retries", KafkaRetriesWithDestination)
	}
	s := fmt.Sprintf("%s %s (batch %d, window %s, %s, %s", k.Kind, strings.Join(k.Topics, ","), k.BatchSize, k.BatchingWindow, k.StartingPosition, retries)
	if k.ReportBatchItemFailures {
		s += ", ReportBatchItemFailures"
	}
	if k.OnFailure != "" {
		s += ", on failure: local DLQ"
	}
	return s + ")"
}
