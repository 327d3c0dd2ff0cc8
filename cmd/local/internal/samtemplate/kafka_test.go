package samtemplate

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const kafkaTemplate = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  Topic:
    Type: String
    Default: customer.changes
  Source:
    Type: String
    Default: selfManaged
Conditions:
  UseMsk: !Equals [!Ref Source, msk]
Resources:
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        Changes:
          Type: MSK
          Properties:
            Stream: arn:aws:kafka:us-east-1:123456789012:cluster/c/1
            Topics: [!Ref Topic]
            StartingPosition: LATEST
            AmazonManagedKafkaEventSourceConfig:
              ConsumerGroupId: worker
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt DLQ.Arn
        Self:
          Type: SelfManagedKafka
          Properties:
            KafkaBootstrapServers: [127.0.0.1:9092]
            Topics: [other]
            BatchSize: 7
            MaximumBatchingWindowInSeconds: 0
            Enabled: false
        NoTopics:
          Type: MSK
          Properties:
            Stream: arn:aws:kafka:us-east-1:123456789012:cluster/c/1
        TooBig:
          Type: SelfManagedKafka
          Properties:
            KafkaBootstrapServers: [127.0.0.1:9092]
            Topics: [t]
            BatchSize: 20000
  ByRef:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Worker
      EventSourceArn: arn:aws:kafka:us-east-1:123456789012:cluster/c/1
      Topics: [a]
      BatchSize: 50
      MaximumBatchingWindowInSeconds: 2
      MaximumRetryAttempts: 3
      FunctionResponseTypes: [ReportBatchItemFailures]
      AmazonManagedKafkaEventSourceConfig:
        ConsumerGroupId: by-ref
  ByArn:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !GetAtt Worker.Arn
      SelfManagedEventSource:
        Endpoints:
          KafkaBootstrapServers: [broker:9092]
      Topics: [b]
      SelfManagedKafkaEventSourceConfig:
        ConsumerGroupId: by-arn
  Queue:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Worker
      EventSourceArn: arn:aws:sqs:us-east-1:123456789012:q
  OffByCondition:
    Type: AWS::Lambda::EventSourceMapping
    Condition: UseMsk
    Properties:
      FunctionName: !Ref Worker
      EventSourceArn: arn:aws:kafka:us-east-1:123456789012:cluster/c/1
      Topics: [a]
  Orphan:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: Nobody
      EventSourceArn: arn:aws:kafka:us-east-1:123456789012:cluster/c/1
      Topics: [a]
  DLQ:
    Type: AWS::SQS::Queue
`

func TestKafkaSources(t *testing.T) {
	tpl, err := Parse([]byte(kafkaTemplate), t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	f, ok := tpl.Function("Worker")
	if !ok {
		t.Fatal("no Worker")
	}
	got := map[string]KafkaSource{}
	for _, k := range f.Kafka {
		got[k.Name] = k
	}
	arn := "arn:aws:kafka:us-east-1:123456789012:cluster/c/1"
	tests := []struct {
		name string
		want KafkaSource
	}{
		{"Changes", KafkaSource{Name: "Changes", Kind: KafkaMSK, EventSourceARN: arn, Topics: []string{"customer.changes"},
			StartingPosition: "LATEST", ConsumerGroupID: "worker", BatchSize: 100, BatchingWindow: 500 * time.Millisecond,
			MaximumRetryAttempts: -1, OnFailure: "DLQ", Enabled: true}},
		{"Self", KafkaSource{Name: "Self", Kind: KafkaSelfManaged, BootstrapServers: []string{"127.0.0.1:9092"}, Topics: []string{"other"},
			StartingPosition: "TRIM_HORIZON", BatchSize: 7, MaximumRetryAttempts: -1}},
		{"ByRef", KafkaSource{Name: "ByRef", Kind: KafkaMSK, EventSourceARN: arn, Topics: []string{"a"}, StartingPosition: "TRIM_HORIZON",
			ConsumerGroupID: "by-ref", BatchSize: 50, BatchingWindow: 2 * time.Second, ReportBatchItemFailures: true,
			MaximumRetryAttempts: 3, Enabled: true}},
		{"ByArn", KafkaSource{Name: "ByArn", Kind: KafkaSelfManaged, BootstrapServers: []string{"broker:9092"}, Topics: []string{"b"},
			StartingPosition: "TRIM_HORIZON", ConsumerGroupID: "by-arn", BatchSize: 100, BatchingWindow: 500 * time.Millisecond,
			MaximumRetryAttempts: -1, Enabled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(got[tt.name], tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got[tt.name], tt.want)
			}
		})
	}
	t.Run("only Kafka mappings whose condition holds are read", func(t *testing.T) {
		if len(f.Kafka) != len(tests) {
			t.Fatalf("%d mappings, want %d: %v", len(f.Kafka), len(tests), f.Kafka)
		}
	})
	t.Run("the invalid ones are warned about", func(t *testing.T) {
		w := strings.Join(tpl.Warnings, "\n")
		for _, want := range []string{"NoTopics has no Topics", "TooBig: BatchSize 20000", "Orphan: FunctionName names no function"} {
			if !strings.Contains(w, want) {
				t.Errorf("warnings lack %q:\n%s", want, w)
			}
		}
	})
	t.Run("KafkaFunctions skips disabled mappings only", func(t *testing.T) {
		if fns := tpl.KafkaFunctions(); len(fns) != 1 || fns[0].LogicalID != "Worker" {
			t.Fatalf("KafkaFunctions = %v", fns)
		}
	})
	t.Run("String", func(t *testing.T) {
		if s := got["Changes"].String(); !strings.Contains(s, "10 retries") || !strings.Contains(s, "local DLQ") {
			t.Fatalf("String = %s", s)
		}
	})
}
