package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/unified-customer-service/cmd/local/internal/esm"
	"github.com/acme/unified-customer-service/cmd/local/internal/localtest"
)

var brokerRE = regexp.MustCompile(`Kafka: embedded broker \(kfake\) on (\S+)`)

func TestStartLambdaRunsKafkaMappings(t *testing.T) {
	dir := t.TempDir()
	_, logs := serveInBackground(t, "start-lambda", "--embedded", "on", "--no-seed", "--data-dir", dir,
		"--s3-addr", "127.0.0.1:0", "--bsim-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0")
	waitLog(t, logs, "Kafka event source mapping: KafkaFunction <- SelfManagedKafka")
	m := brokerRE.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no broker in the log:\n%s", logs)
	}
	t.Run("the mappings are announced", func(t *testing.T) {
		for _, want := range []string{
			"Kafka event source mapping: KafkaFunction <- MSK test.orders (batch 10, window 1s, TRIM_HORIZON, 10 retries, on failure: local DLQ), group kafka-function-orders",
			"Kafka event source mapping: KafkaFunction <- SelfManagedKafka test.audit (batch 5, window 500ms, LATEST, 2 retries, ReportBatchItemFailures, on failure: local DLQ), group kafka-function-audit",
		} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs)
			}
		}
	})
	t.Run("a record is delivered and committed", func(t *testing.T) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(m[1]), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "test.orders", Value: []byte(`{"n":1}`)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		adm := kadm.NewClient(cl)
		for ctx.Err() == nil {
			offs, err := adm.FetchOffsets(ctx, "kafka-function-orders")
			var total int64
			if err == nil {
				offs.Each(func(o kadm.OffsetResponse) { total += o.At })
			}
			if total == 1 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if ctx.Err() != nil {
			t.Fatalf("the group never committed the record; log:\n%s", logs)
		}
		if !strings.Contains(logs.String(), "START RequestId: ") {
			t.Errorf("no invocation in the log:\n%s", logs)
		}
	})
}

// waitLog waits (up to 30 s) for the log to hold want.
func waitLog(t *testing.T, logs *localtest.Buffer, want string) {
	t.Helper()
	for range 600 {
		if strings.Contains(logs.String(), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the log never had %q:\n%s", want, logs)
}

func TestDLQList(t *testing.T) {
	dir := t.TempDir()
	store := &esm.Store{Dir: dlqDir(&options{dataDir: dir})}
	rec := func(fn, mapping string, first, last string) esm.Record {
		return esm.Record{
			RequestContext: esm.RequestContext{RequestID: "r", FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:" + fn,
				Condition: esm.ConditionRetriesExhausted, ApproximateInvokeCount: 3},
			Version: "1.0", Timestamp: "2026-12-02T01:02:03.004Z",
			KafkaBatchInfo: esm.KafkaBatchInfo{BatchSize: 2, BootstrapServers: "127.0.0.1:9092",
				RecordsInfo: map[string]esm.PartitionRecord{"test.orders-0": {FirstRecordOffset: first, LastRecordOffset: last,
					FirstRecordTimestamp: "2026-12-02T01:02:00.000Z", LastRecordTimestamp: "2026-12-02T01:02:01.000Z"}}},
			Function: fn, Mapping: mapping, Error: &esm.ErrorInfo{Type: "errorString", Message: "boom"},
		}
	}
	for _, r := range []esm.Record{rec("KafkaFunction", "Orders", "4", "5"), rec("EchoFunction", "Other", "7", "8")} {
		if err := store.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
		notWant  []string
	}{
		{"all", []string{"dlq", "list"}, 0, []string{
			"2026-12-02T01:02:03.004Z  KafkaFunction  Orders  2 records  test.orders-0@4..5  attempts=3  RetryAttemptsExhausted: errorString: boom",
			"EchoFunction  Other"}, nil},
		{"one function", []string{"dlq", "list", "KafkaFunction"}, 0, []string{"test.orders-0@4..5"}, []string{"EchoFunction"}},
		{"json", []string{"dlq", "list", "KafkaFunction", "--json"}, 0, []string{`"KafkaBatchInfo":{"batchSize":2`, `"condition":"RetryAttemptsExhausted"`}, nil},
		{"a function with none", []string{"dlq", "list", "SlowFunction"}, 0, nil, []string{"records"}},
		{"unknown function", []string{"dlq", "list", "Nope"}, ExitUsage, nil, nil},
		{"no subcommand", []string{"dlq"}, ExitUsage, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, "", append(tt.args, "--data-dir", dir)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, tt.wantCode, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(stdout, w) {
					t.Errorf("stdout has %q:\n%s", w, stdout)
				}
			}
		})
	}
	t.Run("json lines parse", func(t *testing.T) {
		_, stdout, _ := run(t, "", "dlq", "list", "--json", "--data-dir", dir)
		for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
			var r esm.Record
			if err := json.Unmarshal([]byte(line), &r); err != nil || r.KafkaBatchInfo.RecordsInfo["test.orders-0"].FirstRecordOffset == "" {
				t.Fatalf("line %s: %v", line, err)
			}
		}
	})
}

func TestInvokeKafkaFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "events", "kafka-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events/kafka-*.json: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			fixture, err := filepath.Abs(file)
			if err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := run(t, "", "invoke", "KafkaFunction", "-e", fixture)
			// testfn reads a Kafka event record by record and reports no failures.
			if code != 0 || strings.TrimSpace(stdout) != `{"batchItemFailures":null}` {
				t.Fatalf("exit %d, stdout %s\n%s", code, stdout, stderr)
			}
		})
	}
}

func TestBannerListsMappings(t *testing.T) {
	var out strings.Builder
	printBanner(&out, banner{API: "http://127.0.0.1:3000", Lambda: "http://127.0.0.1:3001", Kafka: "127.0.0.1:9092", Template: "t.yaml",
		Mappings: []string{"WorkerFunction <- MSK a,b (batch 100, ...), group g1", "WorkerFunction <- SelfManagedKafka c (...), group g2"},
		DLQ:      ".local/dlq"})
	tests := []struct{ name, want string }{
		{"first mapping, labelled", "  Kafka event source mappings         WorkerFunction <- MSK a,b (batch 100, ...), group g1\n"},
		{"second mapping, aligned", "\n                                      WorkerFunction <- SelfManagedKafka c (...), group g2\n"},
		{"dlq command", "  go run ./cmd/local dlq list -t t.yaml\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(out.String(), tt.want) {
				t.Fatalf("banner lacks %q:\n%s", tt.want, out.String())
			}
		})
	}
	t.Run("no mappings, no lines", func(t *testing.T) {
		var none strings.Builder
		printBanner(&none, banner{API: "a", Lambda: "l"})
		if strings.Contains(none.String(), "event source mappings") || strings.Contains(none.String(), "dlq list") {
			t.Fatalf("banner:\n%s", none.String())
		}
	})
}
