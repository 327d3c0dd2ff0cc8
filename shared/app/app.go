// Package app wires the functions: it turns the configuration into a
// logger, metrics, tracing, the System A store, the System B client and the
// report store, and adapts them to the small interfaces the handlers and
// the reconciler define. The functions' main.go files are this plus
// lambda.Start.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/systema"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/telemetry/logging"
	"github.com/acme/unified-customer-service/shared/telemetry/tracing"
	"github.com/acme/unified-customer-service/shared/unified"
)

// App holds what a function needs, built once per execution environment.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Hasher  *logging.EmailHasher
	Metrics *emf.Metrics
	Store   *systema.Store
	Client  *systemb.Client
	Reports report.Store // nil unless config.Need.Report
	// Producer publishes change events; nil unless config.Need.Kafka.
	Producer *kafka.Producer
	// WebhookSecret returns System B's webhook signing secret (the setting,
	// or the Secrets Manager secret read at most every 5 minutes); nil
	// unless config.Need.Webhook.
	WebhookSecret func(ctx context.Context) (string, error)

	source systema.Source // the snapshot's source (SNAPSHOT_URI), for the capture
	awsCfg aws.Config     // loaded when something needs AWS, for the sync worker's DynamoDB store
}

// Options are the process-level inputs of New.
type Options struct {
	Function string              // the function's short name, e.g. "lookup"; the metrics dimension falls back to it
	Need     config.Need         // optional parts the function requires
	Getenv   func(string) string // os.Getenv in main
	Stdout   io.Writer           // where logs and EMF lines go (os.Stdout in main)
}

// New builds the App or says which setting is wrong.
func New(ctx context.Context, o Options) (*App, error) {
	cfg, err := config.Load(o.Getenv, o.Need)
	if err != nil {
		return nil, fmt.Errorf("%s: configuration: %w", o.Function, err)
	}
	a := &App{Config: cfg}
	a.Log, err = logging.New(o.Stdout, cfg.LogLevel, logging.WithRequestID(requestID))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Function, config.EnvLogLevel, err)
	}
	a.Log = a.Log.With("function", o.Function)
	a.Hasher = logging.NewEmailHasher([]byte(cfg.LogHashKey))
	name := o.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	if name == "" {
		name = o.Function
	}
	a.Metrics, err = emf.New(o.Stdout, cfg.MetricsNamespace, map[string]string{"Function": name}, time.Now)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Function, config.EnvMetricsNamespace, err)
	}
	if err := tracing.Configure(); err != nil {
		return nil, fmt.Errorf("%s: AWS_XRAY_DAEMON_ADDRESS: %w", o.Function, err)
	}

	snapURI, err := systema.ParseURI(cfg.SnapshotURI)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Function, config.EnvSnapshotURI, err)
	}
	needAWS := snapURI.Scheme == "s3" || cfg.SystemBToken == "" ||
		(o.Need.Report && strings.HasPrefix(cfg.ReportURI, "s3://")) ||
		(o.Need.Kafka && cfg.Kafka.Auth != kafka.AuthNone) ||
		(o.Need.Webhook && cfg.WebhookSecret == "") ||
		(o.Need.SyncWorker && strings.HasPrefix(cfg.DedupStore, "dynamodb://"))
	var awsCfg aws.Config
	var s3Client *s3.Client // nil when nothing is read from S3
	if needAWS {
		awsCfg, err = awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: AWS configuration: %w", o.Function, err)
		}
		tracing.InstrumentAWS(&awsCfg)
		a.awsCfg = awsCfg
		// A local or S3-compatible endpoint (AWS_ENDPOINT_URL_S3, read by the
		// SDK itself) is addressed path-style: bucket.127.0.0.1 does not resolve.
		customEndpoint := o.Getenv("AWS_ENDPOINT_URL_S3") != "" || o.Getenv("AWS_ENDPOINT_URL") != ""
		s3Client = s3.NewFromConfig(awsCfg, func(so *s3.Options) {
			so.UsePathStyle = customEndpoint
			// S3-compatible servers may send no checksum; the SDK would print a plain-text line per GET.
			so.DisableLogOutputChecksumValidationSkipped = true
		})
	}

	src, err := systema.NewSource(snapURI, s3Client)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Function, config.EnvSnapshotURI, err)
	}
	a.source = src
	a.Store, err = systema.New(systema.Config{
		Source:         src,
		Dir:            os.TempDir(),
		RefreshEvery:   cfg.SnapshotRefresh,
		RefreshReserve: cfg.SnapshotRefreshReserve,
		RefreshTimeout: cfg.SnapshotRefreshTimeout,
		Mode:           cfg.SnapshotMode,
		CacheBytes:     cfg.SnapshotCacheBytes,
		Logger:         a.Log,
		OnRefresh:      func(r systema.RefreshResult) { countRefresh(a.Metrics, r) },
	})
	if err != nil {
		return nil, fmt.Errorf("%s: System A store: %w", o.Function, err)
	}

	bcfg := systemb.Config{
		BaseURL: cfg.SystemBURL,
		Token:   systemb.StaticToken(cfg.SystemBToken),
		Timeout: cfg.SystemBTimeout,
		// Four attempts ride out three consecutive 5xx (a rolling restart of
		// System B); the retry budget still caps retries during an outage.
		MaxAttempts: 4,
		// Tracing wraps the tuned transport (MaxIdleConnsPerHost), never
		// http.DefaultTransport with its 2 idle connections per host.
		HTTPClient: tracing.HTTPClient(&http.Client{Transport: systemb.NewTransport()}),
		OnCall: func(c systemb.Call) {
			a.Metrics.Observe(emf.SystemBLatency, float64(c.Duration.Microseconds())/1000, emf.Milliseconds)
		},
	}
	if cfg.SystemBToken == "" {
		sec := &secretToken{client: secretsmanager.NewFromConfig(awsCfg), arn: cfg.SystemBSecretARN, ttl: time.Hour, now: time.Now}
		bcfg.Token, bcfg.RefreshToken = sec.Token, sec.Refresh
		bcfg.OnTokenRefresh = func(ctx context.Context, err error) {
			a.Metrics.Count(emf.SystemBTokenRefreshes, 1)
			if err != nil {
				a.Log.WarnContext(ctx, "System B refused its token; reading it again from Secrets Manager failed", "err", err.Error())
				return
			}
			a.Log.InfoContext(ctx, "System B refused its token; read it again from Secrets Manager")
		}
	}
	a.Client, err = systemb.New(bcfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Function, config.EnvSystemBURL, err)
	}

	if o.Need.Kafka {
		a.Producer, err = kafka.NewProducer(kafka.Config{
			Brokers: cfg.Kafka.Brokers, Auth: cfg.Kafka.Auth, TLS: cfg.Kafka.TLS, Log: a.Log,
			Creds: kafkaCredentials(awsCfg, cfg.Kafka), ClientID: "unified-customer-service-" + o.Function,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", o.Function, config.EnvKafkaBootstrapServers, err)
		}
	}

	if o.Need.Webhook {
		if cfg.WebhookSecret != "" {
			a.WebhookSecret = func(context.Context) (string, error) { return cfg.WebhookSecret, nil }
		} else {
			sec := &secretToken{client: secretsmanager.NewFromConfig(awsCfg), arn: cfg.WebhookSecretARN, ttl: 5 * time.Minute, now: time.Now,
				setting: config.EnvSystemBWebhookSecretARN}
			a.WebhookSecret = sec.Token
		}
	}

	if o.Need.Report {
		var client report.S3API
		if s3Client != nil {
			client = s3Client
		}
		a.Reports, err = report.Open(cfg.ReportURI, client)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", o.Function, config.EnvReportURI, err)
		}
	}
	return a, nil
}

// kafkaCredentials reads what the Kafka auth mode needs when the client
// connects: the function's AWS credentials for MSK IAM, the SCRAM user and
// password from Secrets Manager (MSK's {"username","password"} secret).
func kafkaCredentials(awsCfg aws.Config, k config.Kafka) kafka.Credentials {
	var c kafka.Credentials
	switch k.Auth {
	case kafka.AuthIAM:
		c.AWS = func(ctx context.Context) (string, string, string, error) {
			cr, err := awsCfg.Credentials.Retrieve(ctx)
			if err != nil {
				return "", "", "", fmt.Errorf("app: kafka: %w", err)
			}
			return cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken, nil
		}
	case kafka.AuthSCRAMSHA512:
		client := secretsmanager.NewFromConfig(awsCfg)
		c.SCRAM = func(ctx context.Context) (string, string, error) {
			out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(k.SASLSecretARN)})
			if err != nil {
				return "", "", fmt.Errorf("app: read %s: %w", config.EnvKafkaSASLSecretARN, err)
			}
			var up struct{ Username, Password string }
			if out.SecretString == nil || json.Unmarshal([]byte(*out.SecretString), &up) != nil || up.Username == "" || up.Password == "" {
				return "", "", fmt.Errorf("app: %s: want a JSON secret with username and password", config.EnvKafkaSASLSecretARN)
			}
			return up.Username, up.Password, nil
		}
	}
	return c
}

// countRefresh counts a snapshot refresh that did not take a new snapshot
// while the last good one keeps serving: refused as older than the one
// served, or failed. With no good snapshot at all, answers are partial and
// counted as such.
func countRefresh(m *emf.Metrics, r systema.RefreshResult) {
	switch {
	case errors.Is(r.Err, systema.ErrOlderSnapshot):
		m.Count(emf.SnapshotRejectedOlder, 1)
	case r.Err != nil && r.Kept:
		m.Count(emf.SnapshotRefreshFailures, 1)
	}
}

// EmailAttr renders an email for logs: a keyed hash, never the address.
func (a *App) EmailAttr(email string) slog.Attr { return a.Hasher.Attr(email) }

// Reader returns the two-system reader for lookup and sync.
func (a *App) Reader() *unified.Reader {
	return &unified.Reader{A: storeA{a.Store}, B: clientB{a.Client}, SystemBBudget: SystemBBudget(a.Config.SystemBTimeout)}
}

// SystemBBudget is the total time one lookup or sync gives System B for a
// customer: two whole attempts and a backoff. With the default 2 s per call
// a hanging System B yields a partial answer after 4.5 s, well inside the
// HTTP functions' 10 s Timeout, instead of four timed-out attempts.
func SystemBBudget(perCall time.Duration) time.Duration { return 2*perCall + 500*time.Millisecond }

// Reconciler returns the reconciliation engine.
func (a *App) Reconciler() *reconcile.Reconciler {
	return &reconcile.Reconciler{
		A: reconcileA{a.Store}, B: reconcileB{a.Client}, Reports: a.Reports,
		Log: a.Log, Metrics: a.Metrics, LeaseTTL: a.Config.ReconcileLease, InvocationID: requestID,
	}
}

// Flush writes the invocation's metrics; call it at the end of every invocation.
func (a *App) Flush() {
	if err := a.Metrics.Flush(); err != nil {
		a.Log.Error("metrics flush failed", "err", err.Error())
	}
}

func requestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}

// secretsAPI is the part of the Secrets Manager client secretToken uses.
type secretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// secretToken is System B's token (or webhook secret) in Secrets Manager,
// read once per ttl per execution environment (Token), or at once when
// System B refused the cached one (Refresh, after a rotation). It is safe
// for concurrent use.
type secretToken struct {
	client secretsAPI
	arn    string
	ttl    time.Duration
	now    func() time.Time
	// setting names the ARN's setting in errors; SYSTEM_B_TOKEN_SECRET_ARN when empty.
	setting string

	mu  sync.Mutex
	tok string
	at  time.Time // when tok was read
}

// Token returns the cached token, reading it when there is none or it is
// older than ttl.
func (s *secretToken) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != "" && s.now().Sub(s.at) < s.ttl {
		return s.tok, nil
	}
	return s.read(ctx)
}

// Refresh reads the token again, bypassing the cache, and caches it. On
// error the cached token is kept.
func (s *secretToken) Refresh(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(ctx)
}

// read reads the secret into the cache; s.mu is held.
func (s *secretToken) read(ctx context.Context) (string, error) {
	setting := s.setting
	if setting == "" {
		setting = config.EnvSystemBTokenSecretARN
	}
	ctx, end := tracing.Start(ctx, "secretsmanager."+strings.ToLower(strings.TrimSuffix(setting, "_SECRET_ARN")))
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.arn)})
	end(err)
	if err != nil {
		return "", fmt.Errorf("app: read %s: %w", setting, err)
	}
	if out.SecretString == nil || strings.TrimSpace(*out.SecretString) == "" {
		return "", fmt.Errorf("app: %s: the secret has no string value", setting)
	}
	s.tok, s.at = strings.TrimSpace(*out.SecretString), s.now()
	return s.tok, nil
}

// Adapters from the concrete adapters to the interfaces of unified and
// reconcile. The adapters' errors already wrap their merge.ErrorKind (each
// sentinel of systema and systemb unwraps to its kind), so they pass
// through unchanged.

type storeA struct{ s *systema.Store }

func (a storeA) Acquire(ctx context.Context) (unified.Snapshot, error) {
	snap, err := acquire(ctx, a.s)
	if err != nil {
		return nil, err
	}
	return snapshotA{snap}, nil
}

// acquire pins the current snapshot in a subsegment: it covers the wait
// for a due refresh (at most until SNAPSHOT_REFRESH_RESERVE_MS before the
// deadline; the refresh itself runs on the Store's own context, untraced).
func acquire(ctx context.Context, s *systema.Store) (*systema.Snapshot, error) {
	ctx, end := tracing.Start(ctx, tracing.SpanSnapshotFetch)
	snap, err := s.Acquire(ctx)
	end(err)
	return snap, err
}

type snapshotA struct{ *systema.Snapshot }

// SystemABudget bounds one customer's System A lookup. In range mode a
// cold lookup makes up to a few ranged GETs of milliseconds each; when S3
// hangs, the lookup gives up after this and the answer is partial (from
// System B), well inside the HTTP functions' 10 s Timeout. A downloaded
// snapshot never comes near it.
const SystemABudget = 4 * time.Second

func (s snapshotA) Lookup(ctx context.Context, key string) (*merge.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, SystemABudget)
	defer cancel()
	ctx, end := tracing.Start(ctx, tracing.SpanSQLiteQuery)
	rec, err := s.Snapshot.Lookup(ctx, key)
	if errors.Is(err, merge.ErrNotFound) {
		end(nil) // "not found" is an answer, not a failure
		return nil, err
	}
	end(err)
	return rec, err
}

type clientB struct{ c *systemb.Client }

func (b clientB) Get(ctx context.Context, email string) (*merge.Record, error) {
	return b.c.Get(ctx, email)
}

type reconcileA struct{ s *systema.Store }

func (a reconcileA) Acquire(ctx context.Context) (reconcile.Snapshot, error) {
	snap, err := acquire(ctx, a.s)
	if err != nil {
		return nil, err
	}
	return reconcileSnapshot{snap}, nil
}

type reconcileSnapshot struct{ *systema.Snapshot }

func (s reconcileSnapshot) Version() reconcile.SnapshotVersion {
	v := s.Snapshot.Version()
	return reconcile.SnapshotVersion{URI: v.URI, VersionID: v.VersionID, ETag: v.ETag, ExportedAt: v.ExportedAt}
}

// PageSize is the System B page size reconciliation asks for (the API's maximum).
const PageSize = 1000

type reconcileB struct{ c *systemb.Client }

// List lists System B from the start.
func (b reconcileB) List(ctx context.Context) iter.Seq2[*merge.Record, error] {
	seq, _ := b.ListFrom(ctx, "")
	return seq
}

// ListFrom lists from pos, a position it gave before ("" is the start):
// the pager's Position as JSON. A continuation of a reconciliation fetches
// the page its checkpoint is in again, by its cursor, and goes on from the
// item it stopped at.
func (b reconcileB) ListFrom(ctx context.Context, pos string) (iter.Seq2[*merge.Record, error], func() string) {
	var p *systemb.Pager
	return func(yield func(*merge.Record, error) bool) {
			if pos == "" {
				p = b.c.List(ctx, PageSize)
			} else {
				var at systemb.Position
				if err := json.Unmarshal([]byte(pos), &at); err != nil {
					yield(nil, fmt.Errorf("app: System B position: %w", err))
					return
				}
				p = b.c.ListFrom(ctx, at)
			}
			defer p.Close()
			for rec, err := range p.All() {
				if !yield(rec, err) {
					return
				}
			}
		}, func() string {
			if p == nil {
				return ""
			}
			at, _ := json.Marshal(p.Position()) //nolint:errchkjson // a struct of strings and ints
			return string(at)
		}
}

var (
	_ reconcile.ResumableB = reconcileB{}
	_ unified.SystemA      = storeA{}
	_ unified.SystemB      = clientB{}
	_ reconcile.SystemA    = reconcileA{}
	_ reconcile.SystemB    = reconcileB{}
)
