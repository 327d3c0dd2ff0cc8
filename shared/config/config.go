// Package config reads the functions' settings from environment variables.
// Every setting is documented in the README; a missing or malformed one is
// an error that names it, so a function stops at init instead of serving
// with a half-valid configuration.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/capturea"
	"github.com/acme/unified-customer-service/shared/dedup"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/location"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systema"
	"github.com/acme/unified-customer-service/shared/telemetry/logging"
	"github.com/acme/unified-customer-service/shared/writeback"
)

// The settings, by environment variable name.
const (
	EnvSnapshotURI            = "SNAPSHOT_URI"
	EnvSnapshotRefreshSeconds = "SNAPSHOT_REFRESH_SECONDS"
	EnvSnapshotRefreshReserve = "SNAPSHOT_REFRESH_RESERVE_MS"
	EnvSnapshotRefreshTimeout = "SNAPSHOT_REFRESH_TIMEOUT_SECONDS"
	EnvSnapshotMode           = "SNAPSHOT_MODE"
	EnvSnapshotCacheMB        = "SNAPSHOT_CACHE_MB"
	EnvSystemBURL             = "SYSTEM_B_URL"
	EnvSystemBToken           = "SYSTEM_B_TOKEN"
	EnvSystemBTokenSecretARN  = "SYSTEM_B_TOKEN_SECRET_ARN"
	EnvSystemBTimeoutMS       = "SYSTEM_B_TIMEOUT_MS"
	EnvReportURI              = "REPORT_URI"
	EnvReconcileLeaseSeconds  = "RECONCILE_LEASE_SECONDS"
	EnvMergeRules             = "MERGE_RULES"
	EnvMetricsNamespace       = "METRICS_NAMESPACE"
	EnvLogLevel               = "LOG_LEVEL"
	EnvLogHashKey             = "LOG_HASH_KEY"
	EnvKafkaBootstrapServers  = "KAFKA_BOOTSTRAP_SERVERS"
	EnvKafkaAuth              = "KAFKA_AUTH"
	EnvKafkaTLS               = "KAFKA_TLS"
	EnvKafkaSASLSecretARN     = "KAFKA_SASL_SECRET_ARN"
	EnvCaptureAFirstRun       = "CAPTURE_A_FIRST_RUN"
	// EnvSystemBWebhookSecret is the webhook signing secret itself (local
	// use); EnvSystemBWebhookSecretARN names it in Secrets Manager (AWS).
	EnvSystemBWebhookSecret    = "SYSTEM_B_WEBHOOK_SECRET"
	EnvSystemBWebhookSecretARN = "SYSTEM_B_WEBHOOK_SECRET_ARN"
	EnvWriteBack               = "WRITE_BACK"
	EnvDedupStore              = "DEDUP_STORE"
	EnvSyncWorkerConcurrency   = "SYNC_WORKER_CONCURRENCY"
)

// Settings lists every setting the functions read, for tests that check the
// template sets each of them.
var Settings = []string{
	EnvSnapshotURI, EnvSnapshotRefreshSeconds, EnvSnapshotRefreshReserve, EnvSnapshotRefreshTimeout,
	EnvSnapshotMode, EnvSnapshotCacheMB, EnvSystemBURL, EnvSystemBToken,
	EnvSystemBTokenSecretARN, EnvSystemBTimeoutMS, EnvReportURI, EnvReconcileLeaseSeconds, EnvMergeRules,
	EnvMetricsNamespace, EnvLogLevel, EnvLogHashKey,
	EnvKafkaBootstrapServers, EnvKafkaAuth, EnvKafkaTLS, EnvKafkaSASLSecretARN,
	EnvCaptureAFirstRun,
	EnvSystemBWebhookSecret, EnvSystemBWebhookSecretARN, EnvWriteBack,
	EnvDedupStore, EnvSyncWorkerConcurrency,
}

// MaxReconcileLease bounds RECONCILE_LEASE_SECONDS (exclusive): Lambda
// retries a failed asynchronous invocation after about a minute, and a
// killed run's lease (which runs up to its whole length past the kill: it
// was renewed just before) must have expired by then for the retry to take
// the night over. 40 s at most leaves 20 s for the retry's own jitter and
// for clocks that disagree; the default is 30 s.
const MaxReconcileLease = 41 * time.Second

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("config: invalid setting")

// Config is the functions' configuration.
type Config struct {
	SnapshotURI      string        // s3://bucket/key or file:///abs/path.db (location.Object)
	SnapshotRefresh  time.Duration // how often a warm function looks for a newer snapshot
	SystemBURL       string        // System B base URL
	SystemBToken     string        // static bearer token (local use)
	SystemBSecretARN string        // Secrets Manager secret holding the token (AWS use)
	SystemBTimeout   time.Duration // per call
	ReportURI        string        // s3://bucket/prefix or file:///abs/dir (location.Prefix); reconcile only
	ReconcileLease   time.Duration // how long a reconciliation's claim holds unrenewed; reconcile only
	Rules            merge.Rules
	MetricsNamespace string
	LogLevel         string
	LogHashKey       string // key of the email hash in logs; random per process when empty

	// SnapshotRefreshReserve is the time before its deadline that a request
	// stops waiting for a snapshot refresh and is served the current one.
	SnapshotRefreshReserve time.Duration
	// Kafka is where change events go; read only when Need.Kafka.
	Kafka Kafka
	// WebhookSecret is System B's webhook signing secret (local use; a
	// comma separates the current and the previous one during a rotation);
	// WebhookSecretARN names it in Secrets Manager (AWS use). One of them is
	// required when Need.Webhook.
	WebhookSecret    string
	WebhookSecretARN string

	// SnapshotRefreshTimeout bounds one snapshot refresh (stat, download,
	// validation), which runs on its own, outliving the request that started it.
	SnapshotRefreshTimeout time.Duration
	// CaptureAFirstRun is what System A's capture does with no state yet
	// (CAPTURE_A_FIRST_RUN: snapshot, the default, or baseline).
	CaptureAFirstRun capturea.FirstRun
	// WriteBack is the sync worker's write-back (WRITE_BACK: off, the
	// default, or systemB).
	WriteBack writeback.Mode
	// SnapshotMode is how System A's snapshot is read: systema.ModeRange
	// (in place on S3, the default for s3://) or systema.ModeDownload.
	SnapshotMode systema.Mode
	// SnapshotCacheBytes bounds the range mode's page cache.
	SnapshotCacheBytes int64
	// DedupStore is the sync worker's idempotency store (DEDUP_STORE:
	// dynamodb://table or file:///abs/path); read only when Need.SyncWorker.
	DedupStore string
	// SyncWorkerConcurrency bounds the partitions of one batch the sync
	// worker processes at once (SYNC_WORKER_CONCURRENCY, default 4).
	SyncWorkerConcurrency int
}

// Kafka is the Kafka connection of the functions that publish or consume
// change events.
type Kafka struct {
	Brokers       []string   // KAFKA_BOOTSTRAP_SERVERS, host:port, comma-separated
	Auth          kafka.Auth // KAFKA_AUTH: none, iam or scram-sha-512
	TLS           bool       // KAFKA_TLS (implied by iam)
	SASLSecretARN string     // KAFKA_SASL_SECRET_ARN: the SCRAM user and password (scram-sha-512)
}

// MaxSnapshotCacheMB bounds SNAPSHOT_CACHE_MB: the cache lives in the
// function's memory (MemorySize in template.yaml).
const MaxSnapshotCacheMB = 4096

// Need says which optional parts a function requires.
type Need struct {
	Report bool // REPORT_URI is required (reconcile)
	Kafka  bool // KAFKA_BOOTSTRAP_SERVERS is required (change capture, sync worker)
	// Webhook: SYSTEM_B_WEBHOOK_SECRET or SYSTEM_B_WEBHOOK_SECRET_ARN is
	// required (System B's webhook receiver).
	Webhook bool
	// SyncWorker: DEDUP_STORE is required and SYNC_WORKER_CONCURRENCY read (the sync worker).
	SyncWorker bool
}

// Load reads the configuration through getenv (os.Getenv in main).
func Load(getenv func(string) string, need Need) (Config, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w %s: %s", ErrInvalid, name, fmt.Sprintf(format, args...)))
	}
	badErr := func(name string, err error) { errs = append(errs, fmt.Errorf("%w %s: %w", ErrInvalid, name, err)) }
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	c := Config{
		SnapshotURI:      get(EnvSnapshotURI),
		SystemBURL:       get(EnvSystemBURL),
		SystemBToken:     get(EnvSystemBToken),
		SystemBSecretARN: get(EnvSystemBTokenSecretARN),
		ReportURI:        get(EnvReportURI),
		MetricsNamespace: get(EnvMetricsNamespace),
		LogLevel:         get(EnvLogLevel),
		LogHashKey:       get(EnvLogHashKey),
		WebhookSecret:    get(EnvSystemBWebhookSecret),
		WebhookSecretARN: get(EnvSystemBWebhookSecretARN),
	}
	if u, err := location.Parse(EnvSnapshotURI, c.SnapshotURI, location.Object); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalid, err))
	} else if c.SnapshotMode, err = systema.ParseMode(get(EnvSnapshotMode), u.Scheme); err != nil {
		badErr(EnvSnapshotMode, err)
	}
	if need.Report {
		if _, err := location.Parse(EnvReportURI, c.ReportURI, location.Prefix); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrInvalid, err))
		}
	}
	if u, err := url.Parse(c.SystemBURL); c.SystemBURL == "" {
		bad(EnvSystemBURL, "required (the System B base URL, e.g. https://systemb.example.com/v1)")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(EnvSystemBURL, "want an absolute http(s) URL")
	}
	if c.SystemBToken == "" && c.SystemBSecretARN == "" {
		bad(EnvSystemBTokenSecretARN, "one of %s or %s is required", EnvSystemBToken, EnvSystemBTokenSecretARN)
	} else if c.SystemBToken == "" && !strings.HasPrefix(c.SystemBSecretARN, "arn:") {
		bad(EnvSystemBTokenSecretARN, "want a Secrets Manager ARN (arn:aws:secretsmanager:...)")
	}
	var err error
	if c.SnapshotRefresh, err = seconds(get(EnvSnapshotRefreshSeconds), 60*time.Second, time.Second); err != nil {
		bad(EnvSnapshotRefreshSeconds, "%v", err)
	}
	if c.SnapshotRefreshReserve, err = seconds(get(EnvSnapshotRefreshReserve), time.Second, time.Millisecond); err != nil {
		bad(EnvSnapshotRefreshReserve, "%v", err)
	}
	if c.SnapshotRefreshTimeout, err = seconds(get(EnvSnapshotRefreshTimeout), 60*time.Second, time.Second); err != nil {
		bad(EnvSnapshotRefreshTimeout, "%v", err)
	}
	if mb, err := wholeNumber(get(EnvSnapshotCacheMB), 32); err != nil || mb > MaxSnapshotCacheMB {
		bad(EnvSnapshotCacheMB, "want whole MiB from 1 to %d, got %q", MaxSnapshotCacheMB, get(EnvSnapshotCacheMB))
	} else {
		c.SnapshotCacheBytes = mb << 20
	}
	if c.SystemBTimeout, err = seconds(get(EnvSystemBTimeoutMS), 2*time.Second, time.Millisecond); err != nil {
		bad(EnvSystemBTimeoutMS, "%v", err)
	}
	if c.ReconcileLease, err = seconds(get(EnvReconcileLeaseSeconds), 30*time.Second, time.Second); err != nil || c.ReconcileLease >= MaxReconcileLease {
		bad(EnvReconcileLeaseSeconds, "want whole seconds from 1 to %d (under the minute Lambda waits before retrying a failed run), got %q",
			int(MaxReconcileLease/time.Second)-1, get(EnvReconcileLeaseSeconds))
	}
	if c.Rules, err = merge.ParseRules(get(EnvMergeRules)); err != nil {
		bad(EnvMergeRules, "%v", err)
	}
	if c.CaptureAFirstRun, err = capturea.ParseFirstRun(get(EnvCaptureAFirstRun)); err != nil {
		bad(EnvCaptureAFirstRun, "%v", err)
	}
	if c.WriteBack, err = writeback.ParseMode(get(EnvWriteBack)); err != nil {
		bad(EnvWriteBack, "%v", err)
	}
	if need.Webhook {
		if c.WebhookSecret == "" && c.WebhookSecretARN == "" {
			bad(EnvSystemBWebhookSecretARN, "one of %s or %s is required", EnvSystemBWebhookSecret, EnvSystemBWebhookSecretARN)
		} else if c.WebhookSecret == "" && !strings.HasPrefix(c.WebhookSecretARN, "arn:") {
			bad(EnvSystemBWebhookSecretARN, "want a Secrets Manager ARN (arn:aws:secretsmanager:...)")
		}
	}
	if need.Kafka {
		c.Kafka.load(get, bad)
	}
	if need.SyncWorker {
		c.DedupStore = get(EnvDedupStore)
		if _, err := dedup.ParseLocation(c.DedupStore); err != nil {
			bad(EnvDedupStore, "want dynamodb://table or file:///abs/path, got %q", c.DedupStore)
		}
		c.SyncWorkerConcurrency = 4
		if v := get(EnvSyncWorkerConcurrency); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 64 {
				bad(EnvSyncWorkerConcurrency, "want a whole number from 1 to 64, got %q", v)
			} else {
				c.SyncWorkerConcurrency = n
			}
		}
	}
	if c.MetricsNamespace == "" {
		c.MetricsNamespace = "UnifiedCustomerService"
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		badErr(EnvLogLevel, err)
	}
	return c, errors.Join(errs...)
}

// load reads the Kafka settings through get, reporting each bad one to bad.
func (k *Kafka) load(get func(string) string, bad func(name, format string, args ...any)) {
	list := get(EnvKafkaBootstrapServers)
	if list == "" {
		bad(EnvKafkaBootstrapServers, "required (host:port of the brokers, comma-separated)")
	}
	for b := range strings.SplitSeq(list, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || !isPort(port) {
			bad(EnvKafkaBootstrapServers, "want host:port entries, got %q", b)
			continue
		}
		k.Brokers = append(k.Brokers, b)
	}
	var err error
	if k.Auth, err = kafka.ParseAuth(get(EnvKafkaAuth)); err != nil {
		bad(EnvKafkaAuth, "%v", err)
	}
	switch v := get(EnvKafkaTLS); v {
	case "", "false":
	case "true":
		k.TLS = true
	default:
		bad(EnvKafkaTLS, "want true or false, got %q", v)
	}
	k.SASLSecretARN = get(EnvKafkaSASLSecretARN)
	if k.Auth == kafka.AuthSCRAMSHA512 && !strings.HasPrefix(k.SASLSecretARN, "arn:") {
		bad(EnvKafkaSASLSecretARN, "%s=%s needs the ARN of a Secrets Manager secret holding {\"username\",\"password\"}", EnvKafkaAuth, k.Auth)
	}
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// seconds parses a positive whole number of units, def when empty.
func seconds(s string, def, unit time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	n, err := wholeNumber(s, 0)
	if err != nil {
		return 0, err
	}
	return time.Duration(n) * unit, nil
}

// wholeNumber parses a positive whole number up to 86,400,000 (a day in
// milliseconds), def when empty.
func wholeNumber(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > 86400*1000 {
		return 0, fmt.Errorf("want a positive whole number, got %q", s)
	}
	return n, nil
}
