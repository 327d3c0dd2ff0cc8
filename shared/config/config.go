// Package config reads the functions' settings from environment variables.
// Every setting is documented in the README; a missing or malformed one is
// an error that names it, so a function stops at init instead of serving
// with a half-valid configuration.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/location"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systema"
	"github.com/acme/unified-customer-service/shared/telemetry/logging"
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
)

// Settings lists every setting the functions read, for tests that check the
// template sets each of them.
var Settings = []string{
	EnvSnapshotURI, EnvSnapshotRefreshSeconds, EnvSnapshotRefreshReserve, EnvSnapshotRefreshTimeout,
	EnvSnapshotMode, EnvSnapshotCacheMB, EnvSystemBURL, EnvSystemBToken,
	EnvSystemBTokenSecretARN, EnvSystemBTimeoutMS, EnvReportURI, EnvReconcileLeaseSeconds, EnvMergeRules,
	EnvMetricsNamespace, EnvLogLevel, EnvLogHashKey,
}

// MaxReconcileLease bounds RECONCILE_LEASE_SECONDS (exclusive): Lambda
// retries a failed asynchronous invocation after about a minute, and a
// killed run's lease must have expired by then for the retry to take the
// night over. The default is half of it, 30 s.
const MaxReconcileLease = 60 * time.Second

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
	// SnapshotRefreshTimeout bounds one snapshot refresh (stat, download,
	// validation), which runs on its own, outliving the request that started it.
	SnapshotRefreshTimeout time.Duration
	// SnapshotMode is how System A's snapshot is read: systema.ModeRange
	// (in place on S3, the default for s3://) or systema.ModeDownload.
	SnapshotMode systema.Mode
	// SnapshotCacheBytes bounds the range mode's page cache.
	SnapshotCacheBytes int64
}

// MaxSnapshotCacheMB bounds SNAPSHOT_CACHE_MB: the cache lives in the
// function's memory (MemorySize in template.yaml).
const MaxSnapshotCacheMB = 4096

// Need says which optional parts a function requires.
type Need struct {
	Report bool // REPORT_URI is required (reconcile)
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
	if c.ReconcileLease, err = seconds(get(EnvReconcileLeaseSeconds), MaxReconcileLease/2, time.Second); err != nil || c.ReconcileLease >= MaxReconcileLease {
		bad(EnvReconcileLeaseSeconds, "want whole seconds from 1 to %d (under the minute Lambda waits before retrying a failed run), got %q",
			int(MaxReconcileLease/time.Second)-1, get(EnvReconcileLeaseSeconds))
	}
	if c.Rules, err = merge.ParseRules(get(EnvMergeRules)); err != nil {
		bad(EnvMergeRules, "%v", err)
	}
	if c.MetricsNamespace == "" {
		c.MetricsNamespace = "UnifiedCustomerService"
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		badErr(EnvLogLevel, err)
	}
	return c, errors.Join(errs...)
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
