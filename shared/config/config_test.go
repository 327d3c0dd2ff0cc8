package config_test

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/location"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systema"
	"github.com/acme/unified-customer-service/shared/telemetry/logging"
	"github.com/acme/unified-customer-service/shared/writeback"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func valid() map[string]string {
	return map[string]string{
		config.EnvSnapshotURI:           "s3://snapshots/customers.db",
		config.EnvSystemBURL:            "https://systemb.example.com/v1",
		config.EnvSystemBToken:          "t0ken",
		config.EnvReportURI:             "s3://reports/runs",
		config.EnvMergeRules:            "",
		config.EnvLogLevel:              "",
		config.EnvSystemBTimeoutMS:      "",
		config.EnvKafkaBootstrapServers: "b-1.msk.example.com:9098,b-2.msk.example.com:9098",
		config.EnvSystemBWebhookSecret:  "whsec-local",
		config.EnvDedupStore:            "dynamodb://ucs-dedup",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load(env(valid()), config.Need{Report: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.SnapshotRefresh != 60*time.Second || c.SystemBTimeout != 2*time.Second || c.MetricsNamespace != "UnifiedCustomerService" || c.ReconcileLease != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if c.SnapshotRefreshReserve != time.Second || c.SnapshotRefreshTimeout != 60*time.Second {
		t.Errorf("snapshot refresh defaults: reserve %v, timeout %v", c.SnapshotRefreshReserve, c.SnapshotRefreshTimeout)
	}
	if c.Rules.For(merge.FieldLoyaltyTier) != merge.RuleSystemA || c.Rules.For(merge.FieldPhone) != merge.RuleNewest {
		t.Errorf("default rules = %s", c.Rules)
	}
	if c.WriteBack != writeback.ModeOff {
		t.Errorf("default WriteBack = %q, want off (read-only)", c.WriteBack)
	}
}

func TestLoadWriteBack(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  writeback.Mode
	}{{"", writeback.ModeOff}, {"off", writeback.ModeOff}, {" systemB ", writeback.ModeSystemB}} {
		t.Run(fmt.Sprintf("%q", tt.value), func(t *testing.T) {
			m := valid()
			m[config.EnvWriteBack] = tt.value
			c, err := config.Load(env(m), config.Need{})
			if err != nil || c.WriteBack != tt.want {
				t.Errorf("Load = %q, %v; want %q", c.WriteBack, err, tt.want)
			}
		})
	}
}

func TestLoadErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]string
		need    config.Need
		setting string
	}{
		{"missing snapshot", map[string]string{config.EnvSnapshotURI: ""}, config.Need{}, config.EnvSnapshotURI},
		{"snapshot without key", map[string]string{config.EnvSnapshotURI: "s3://bucket"}, config.Need{}, config.EnvSnapshotURI},
		{"relative file snapshot", map[string]string{config.EnvSnapshotURI: "file://rel/x.db"}, config.Need{}, config.EnvSnapshotURI},
		{"http snapshot", map[string]string{config.EnvSnapshotURI: "https://x/y.db"}, config.Need{}, config.EnvSnapshotURI},
		{"missing System B URL", map[string]string{config.EnvSystemBURL: ""}, config.Need{}, config.EnvSystemBURL},
		{"relative System B URL", map[string]string{config.EnvSystemBURL: "systemb/v1"}, config.Need{}, config.EnvSystemBURL},
		{"no token at all", map[string]string{config.EnvSystemBToken: ""}, config.Need{}, config.EnvSystemBTokenSecretARN},
		{"secret that is no ARN", map[string]string{config.EnvSystemBToken: "", config.EnvSystemBTokenSecretARN: "mysecret"}, config.Need{}, config.EnvSystemBTokenSecretARN},
		{"timeout not a number", map[string]string{config.EnvSystemBTimeoutMS: "2s"}, config.Need{}, config.EnvSystemBTimeoutMS},
		{"negative refresh", map[string]string{config.EnvSnapshotRefreshSeconds: "-5"}, config.Need{}, config.EnvSnapshotRefreshSeconds},
		{"zero refresh reserve", map[string]string{config.EnvSnapshotRefreshReserve: "0"}, config.Need{}, config.EnvSnapshotRefreshReserve},
		{"refresh reserve in seconds", map[string]string{config.EnvSnapshotRefreshReserve: "1s"}, config.Need{}, config.EnvSnapshotRefreshReserve},
		{"negative refresh timeout", map[string]string{config.EnvSnapshotRefreshTimeout: "-1"}, config.Need{}, config.EnvSnapshotRefreshTimeout},
		{"unknown snapshot mode", map[string]string{config.EnvSnapshotMode: "stream"}, config.Need{}, config.EnvSnapshotMode},
		{"range mode on a file", map[string]string{config.EnvSnapshotMode: "range", config.EnvSnapshotURI: "file:///tmp/x.db"}, config.Need{}, config.EnvSnapshotMode},
		{"cache of zero MiB", map[string]string{config.EnvSnapshotCacheMB: "0"}, config.Need{}, config.EnvSnapshotCacheMB},
		{"cache past the bound", map[string]string{config.EnvSnapshotCacheMB: "5000"}, config.Need{}, config.EnvSnapshotCacheMB},
		{"bad rules", map[string]string{config.EnvMergeRules: "phone=oldest"}, config.Need{}, config.EnvMergeRules},
		{"bad log level", map[string]string{config.EnvLogLevel: "verbose"}, config.Need{}, config.EnvLogLevel},
		{"unknown write-back", map[string]string{config.EnvWriteBack: "systemA"}, config.Need{}, config.EnvWriteBack},
		{"write-back in the wrong case", map[string]string{config.EnvWriteBack: "systemb"}, config.Need{}, config.EnvWriteBack},
		{"lease not a number", map[string]string{config.EnvReconcileLeaseSeconds: "30s"}, config.Need{Report: true}, config.EnvReconcileLeaseSeconds},
		{"lease zero", map[string]string{config.EnvReconcileLeaseSeconds: "0"}, config.Need{Report: true}, config.EnvReconcileLeaseSeconds},
		{"lease as long as Lambda's retry gap", map[string]string{config.EnvReconcileLeaseSeconds: "60"}, config.Need{Report: true}, config.EnvReconcileLeaseSeconds},
		{"lease without a margin before Lambda's retry", map[string]string{config.EnvReconcileLeaseSeconds: "41"}, config.Need{Report: true}, config.EnvReconcileLeaseSeconds},
		{"report needed and missing", map[string]string{config.EnvReportURI: ""}, config.Need{Report: true}, config.EnvReportURI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			for k, v := range tt.set {
				m[k] = v
			}
			_, err := config.Load(env(m), tt.need)
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.setting) {
				t.Errorf("err = %v, want one naming %s", err, tt.setting)
			}
			if err != nil && strings.Contains(err.Error(), "t0ken") {
				t.Errorf("the error leaks the token: %v", err)
			}
		})
	}
}

// TestLoadURIErrors: SNAPSHOT_URI and REPORT_URI are checked by
// location.Parse, the parser the adapters open them with, and the error
// says what it says.
func TestLoadURIErrors(t *testing.T) {
	tests := []struct {
		name, setting, value string
		kind                 location.Kind
	}{
		{"snapshot missing", config.EnvSnapshotURI, "", location.Object},
		{"snapshot without key", config.EnvSnapshotURI, "s3://bucket", location.Object},
		{"snapshot with a query", config.EnvSnapshotURI, "s3://bucket/k.db?versionId=2", location.Object},
		{"snapshot relative file", config.EnvSnapshotURI, "file://rel/x.db", location.Object},
		{"report without bucket", config.EnvReportURI, "s3:///runs", location.Prefix},
		{"report on http", config.EnvReportURI, "http://x/runs", location.Prefix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			m[tt.setting] = tt.value
			_, err := config.Load(env(m), config.Need{Report: true})
			_, want := location.Parse(tt.setting, tt.value, tt.kind)
			if want == nil {
				t.Fatalf("location.Parse(%q) accepted it", tt.value)
			}
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), want.Error()) {
				t.Errorf("err = %v, want config.ErrInvalid and %q", err, want)
			}
		})
	}
	m := valid()
	m[config.EnvReportURI] = "s3://reports"
	if _, err := config.Load(env(m), config.Need{Report: true}); err != nil {
		t.Errorf("a bucket as REPORT_URI: %v", err)
	}
}

// TestLoadLogLevel: LOG_LEVEL is checked by logging.ParseLevel, the
// parser the loggers use, so a value passes both or neither.
func TestLoadLogLevel(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{"", true}, {"debug", true}, {"info", true}, {"warn", true}, {"error", true}, {" warn ", true},
		{"warning", false}, {"WARN", false}, {"verbose", false}, {"0", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.value), func(t *testing.T) {
			m := valid()
			m[config.EnvLogLevel] = tt.value
			_, err := config.Load(env(m), config.Need{})
			_, parseErr := logging.ParseLevel(tt.value)
			if (err == nil) != tt.ok || (parseErr == nil) != tt.ok {
				t.Fatalf("Load: %v; ParseLevel: %v; want accepted=%v by both", err, parseErr, tt.ok)
			}
			if !tt.ok && (!errors.Is(err, logging.ErrInvalidLevel) || !strings.Contains(err.Error(), config.EnvLogLevel)) {
				t.Errorf("err = %v, want one naming %s and wrapping logging.ErrInvalidLevel", err, config.EnvLogLevel)
			}
		})
	}
}

func TestLoadReportNotNeeded(t *testing.T) {
	m := valid()
	m[config.EnvReportURI] = ""
	if _, err := config.Load(env(m), config.Need{}); err != nil {
		t.Errorf("lookup and sync do not need REPORT_URI: %v", err)
	}
}

// TestSettingsListsWhatLoadReads keeps config.Settings (which the template
// test checks against template.yaml) equal to what Load really reads.
func TestSettingsListsWhatLoadReads(t *testing.T) {
	read := map[string]bool{}
	m := valid()
	getenv := func(k string) string { read[k] = true; return m[k] }
	if _, err := config.Load(getenv, config.Need{Report: true, Kafka: true, Webhook: true, SyncWorker: true}); err != nil {
		t.Fatal(err)
	}
	for k := range read {
		if !slices.Contains(config.Settings, k) {
			t.Errorf("Load reads %s, which config.Settings does not list", k)
		}
	}
	for _, k := range config.Settings {
		if !read[k] {
			t.Errorf("config.Settings lists %s, which Load never reads", k)
		}
	}
}

func TestLoadSnapshotRefreshSettings(t *testing.T) {
	m := valid()
	m[config.EnvSnapshotRefreshReserve] = "2500"
	m[config.EnvSnapshotRefreshTimeout] = "120"
	c, err := config.Load(env(m), config.Need{})
	if err != nil {
		t.Fatal(err)
	}
	if c.SnapshotRefreshReserve != 2500*time.Millisecond || c.SnapshotRefreshTimeout != 2*time.Minute {
		t.Errorf("reserve %v, timeout %v; want 2.5s and 2m", c.SnapshotRefreshReserve, c.SnapshotRefreshTimeout)
	}
}

func TestLoadKafka(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]string
		want    config.Kafka
		wantErr string // the setting the error names; "" for none
	}{
		{"defaults", nil, config.Kafka{Brokers: []string{"b-1.msk.example.com:9098", "b-2.msk.example.com:9098"}, Auth: kafka.AuthNone}, ""},
		{"iam", map[string]string{config.EnvKafkaAuth: "iam"}, config.Kafka{Brokers: []string{"b-1.msk.example.com:9098", "b-2.msk.example.com:9098"}, Auth: kafka.AuthIAM}, ""},
		{"scram with its secret and TLS", map[string]string{config.EnvKafkaAuth: "scram-sha-512", config.EnvKafkaTLS: "true",
			config.EnvKafkaSASLSecretARN: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_ucs"},
			config.Kafka{Brokers: []string{"b-1.msk.example.com:9098", "b-2.msk.example.com:9098"}, Auth: kafka.AuthSCRAMSHA512, TLS: true,
				SASLSecretARN: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_ucs"}, ""},
		{"no brokers", map[string]string{config.EnvKafkaBootstrapServers: ""}, config.Kafka{}, config.EnvKafkaBootstrapServers},
		{"a broker without a port", map[string]string{config.EnvKafkaBootstrapServers: "b-1.msk.example.com"}, config.Kafka{}, config.EnvKafkaBootstrapServers},
		{"a bad port", map[string]string{config.EnvKafkaBootstrapServers: "b:99999"}, config.Kafka{}, config.EnvKafkaBootstrapServers},
		{"unknown auth", map[string]string{config.EnvKafkaAuth: "IAM"}, config.Kafka{}, config.EnvKafkaAuth},
		{"bad TLS", map[string]string{config.EnvKafkaTLS: "yes"}, config.Kafka{}, config.EnvKafkaTLS},
		{"scram without a secret", map[string]string{config.EnvKafkaAuth: "scram-sha-512"}, config.Kafka{}, config.EnvKafkaSASLSecretARN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			maps.Copy(m, tt.set)
			c, err := config.Load(env(m), config.Need{Kafka: true})
			if tt.wantErr != "" {
				if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Kafka, tt.want) {
				t.Errorf("Kafka = %+v, want %+v", c.Kafka, tt.want)
			}
		})
	}
	m := valid()
	m[config.EnvKafkaBootstrapServers] = ""
	if _, err := config.Load(env(m), config.Need{}); err != nil {
		t.Errorf("a function that does not need Kafka refused its missing settings: %v", err)
	}
}

func TestLoadWebhookSecret(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ucs-systemb-webhook"
	tests := []struct {
		name    string
		set     map[string]string
		need    bool
		wantErr bool
	}{
		{"the secret itself", nil, true, false},
		{"its ARN", map[string]string{config.EnvSystemBWebhookSecret: "", config.EnvSystemBWebhookSecretARN: arn}, true, false},
		{"neither", map[string]string{config.EnvSystemBWebhookSecret: ""}, true, true},
		{"not an ARN", map[string]string{config.EnvSystemBWebhookSecret: "", config.EnvSystemBWebhookSecretARN: "ucs-systemb-webhook"}, true, true},
		{"neither, not needed", map[string]string{config.EnvSystemBWebhookSecret: ""}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			maps.Copy(m, tt.set)
			_, err := config.Load(env(m), config.Need{Webhook: tt.need})
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && (!errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), config.EnvSystemBWebhookSecretARN)) {
				t.Errorf("err = %v, want one naming %s", err, config.EnvSystemBWebhookSecretARN)
			}
		})
	}
}

func TestLoadSnapshotMode(t *testing.T) {
	tests := []struct {
		name, uri, mode, cache string
		want                   systema.Mode
		wantCache              int64
	}{
		{"s3 defaults to range", "s3://snapshots/customers.db", "", "", systema.ModeRange, 32 << 20},
		{"file defaults to download", "file:///tmp/customers.db", "auto", "", systema.ModeDownload, 32 << 20},
		{"download on s3 by choice", "s3://snapshots/customers.db", "download", "64", systema.ModeDownload, 64 << 20},
		{"range on s3", "s3://snapshots/customers.db", "range", "4096", systema.ModeRange, 4096 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			m[config.EnvSnapshotURI], m[config.EnvSnapshotMode], m[config.EnvSnapshotCacheMB] = tt.uri, tt.mode, tt.cache
			c, err := config.Load(env(m), config.Need{})
			if err != nil {
				t.Fatal(err)
			}
			if c.SnapshotMode != tt.want || c.SnapshotCacheBytes != tt.wantCache {
				t.Errorf("mode %q, cache %d; want %q, %d", c.SnapshotMode, c.SnapshotCacheBytes, tt.want, tt.wantCache)
			}
		})
	}
}

func TestLoadSyncWorker(t *testing.T) {
	tests := []struct {
		name        string
		set         map[string]string
		store       string
		concurrency int
		wantErr     string // the setting the error names; "" for none
	}{
		{"defaults", nil, "dynamodb://ucs-dedup", 4, ""},
		{"a file store and concurrency", map[string]string{config.EnvDedupStore: "file:///tmp/ucs/dedup.db", config.EnvSyncWorkerConcurrency: "16"}, "file:///tmp/ucs/dedup.db", 16, ""},
		{"no store", map[string]string{config.EnvDedupStore: ""}, "", 0, config.EnvDedupStore},
		{"a relative file", map[string]string{config.EnvDedupStore: "file://dedup.db"}, "", 0, config.EnvDedupStore},
		{"concurrency zero", map[string]string{config.EnvSyncWorkerConcurrency: "0"}, "", 0, config.EnvSyncWorkerConcurrency},
		{"concurrency not a number", map[string]string{config.EnvSyncWorkerConcurrency: "many"}, "", 0, config.EnvSyncWorkerConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			maps.Copy(m, tt.set)
			c, err := config.Load(env(m), config.Need{Kafka: true, SyncWorker: true})
			if tt.wantErr != "" {
				if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DedupStore != tt.store || c.SyncWorkerConcurrency != tt.concurrency {
				t.Errorf("store %q, concurrency %d; want %q, %d", c.DedupStore, c.SyncWorkerConcurrency, tt.store, tt.concurrency)
			}
		})
	}
	m := valid()
	m[config.EnvDedupStore] = ""
	if _, err := config.Load(env(m), config.Need{Kafka: true}); err != nil {
		t.Errorf("a function that is not the sync worker refused a missing %s: %v", config.EnvDedupStore, err)
	}
}
