// Package kafka is the adapter over Apache Kafka (github.com/twmb/franz-go):
// it publishes change events (shared/changes) with an idempotent producer
// and acks=all, to Amazon MSK (IAM or SASL/SCRAM auth, TLS) in AWS and to
// the embedded broker (franz-go's kfake) locally and in tests. Its errors
// are of the merge kinds: a broker that cannot be reached is
// merge.ErrUnavailable.
package kafka

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/merge"
)

// Auth names how the client authenticates to the brokers.
type Auth string

// The authentication modes KAFKA_AUTH may name.
const (
	AuthNone        Auth = "none"          // plaintext, no SASL (local, or a private self-managed cluster)
	AuthIAM         Auth = "iam"           // MSK IAM access control (SASL AWS_MSK_IAM) over TLS
	AuthSCRAMSHA512 Auth = "scram-sha-512" // SASL/SCRAM-SHA-512 (MSK with a Secrets Manager secret, or self-managed)
)

// ParseAuth parses a KAFKA_AUTH value.
func ParseAuth(s string) (Auth, error) {
	switch a := Auth(strings.TrimSpace(s)); a {
	case AuthNone, AuthIAM, AuthSCRAMSHA512:
		return a, nil
	case "":
		return AuthNone, nil
	}
	return "", fmt.Errorf("want one of %s, %s, %s", AuthNone, AuthIAM, AuthSCRAMSHA512)
}

// Credentials supplies what Auth needs, read when the client connects (and
// again on reconnects, so rotated credentials are picked up).
type Credentials struct {
	// AWS returns the AWS credentials for AuthIAM.
	AWS func(ctx context.Context) (accessKey, secretKey, sessionToken string, err error)
	// SCRAM returns the user name and password for AuthSCRAMSHA512.
	SCRAM func(ctx context.Context) (user, pass string, err error)
}

// Config configures a Producer. Zero values take the documented defaults.
type Config struct {
	Brokers []string // host:port, at least one
	Auth    Auth
	TLS     bool // TLS to the brokers (implied by AuthIAM)
	Creds   Credentials
	// ClientID names the client in the brokers' logs; "unified-customer-service" when empty.
	ClientID string
	// DeliveryTimeout bounds how long one event may wait for its
	// acknowledgement, retries included, when the context has no earlier
	// deadline; 30 s when zero.
	DeliveryTimeout time.Duration
	// Log receives the client's warnings and errors; nothing when nil.
	Log *slog.Logger
}

// Producer publishes change events. It implements changes.Publisher.
type Producer struct {
	cl *kgo.Client
}

var _ changes.Publisher = (*Producer)(nil)

// NewProducer returns a producer for cfg. It does not connect: the first
// Publish does, so a function starts even while the brokers are down.
func NewProducer(cfg Config) (*Producer, error) {
	opts, err := clientOpts(cfg)
	if err != nil {
		return nil, err
	}
	timeout := cfg.DeliveryTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts = append(opts,
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes need acks=all; stated, not assumed
		kgo.RecordDeliveryTimeout(timeout),
		kgo.ProducerLinger(0),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new producer: %w: %w", merge.ErrInvalid, err)
	}
	return &Producer{cl: cl}, nil
}

// NewAdmin returns an admin client for cfg (the same brokers, auth and TLS
// as a Producer's), for the topic set-up tool. Close it.
func NewAdmin(cfg Config) (*kadm.Client, error) {
	opts, err := clientOpts(cfg)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new admin: %w: %w", merge.ErrInvalid, err)
	}
	return kadm.NewClient(cl), nil
}

// clientOpts are the options every client of the service shares.
func clientOpts(cfg Config) ([]kgo.Opt, error) {
	if len(cfg.Brokers) == 0 {
		return nil, fmt.Errorf("kafka: %w: no bootstrap brokers", merge.ErrInvalid)
	}
	id := cfg.ClientID
	if id == "" {
		id = "unified-customer-service"
	}
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(id)}
	if cfg.Log != nil {
		opts = append(opts, kgo.WithLogger(slogAdapter{cfg.Log}))
	}
	var mech sasl.Mechanism
	switch cfg.Auth {
	case AuthNone, "":
	case AuthIAM:
		if cfg.Creds.AWS == nil {
			return nil, fmt.Errorf("kafka: %w: auth %s needs AWS credentials", merge.ErrInvalid, cfg.Auth)
		}
		get := cfg.Creds.AWS
		mech = saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
			ak, sk, tok, err := get(ctx)
			if err != nil {
				return saslaws.Auth{}, fmt.Errorf("kafka: aws credentials: %w", err)
			}
			return saslaws.Auth{AccessKey: ak, SecretKey: sk, SessionToken: tok, UserAgent: id}, nil
		})
		cfg.TLS = true
	case AuthSCRAMSHA512:
		if cfg.Creds.SCRAM == nil {
			return nil, fmt.Errorf("kafka: %w: auth %s needs a user and password", merge.ErrInvalid, cfg.Auth)
		}
		get := cfg.Creds.SCRAM
		mech = scram.Sha512(func(ctx context.Context) (scram.Auth, error) {
			u, p, err := get(ctx)
			if err != nil {
				return scram.Auth{}, fmt.Errorf("kafka: scram credentials: %w", err)
			}
			return scram.Auth{User: u, Pass: p}, nil
		})
	default:
		return nil, fmt.Errorf("kafka: %w: unknown auth %q", merge.ErrInvalid, cfg.Auth)
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	if cfg.TLS {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	return opts, nil
}

// Publish implements changes.Publisher: every event to its system's topic,
// keyed by the join key, with the event id and schema version headers. It
// waits for every acknowledgement. An event the broker did not take is an
// error of kind merge.ErrUnavailable that names how many of the events were
// not acknowledged.
func (p *Producer) Publish(ctx context.Context, events ...changes.Event) error {
	if len(events) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(events))
	for i := range events {
		r, err := Record(&events[i])
		if err != nil {
			return err
		}
		recs[i] = r
	}
	return p.produce(ctx, "publish", "events", recs)
}

// Record renders one event as the Kafka record the contract describes.
func Record(ev *changes.Event) (*kgo.Record, error) {
	topic, err := changes.Topic(ev.Source.System)
	if err != nil {
		return nil, fmt.Errorf("kafka: record: %w", err)
	}
	r := &kgo.Record{Topic: topic, Key: []byte(ev.Key), Value: ev.Marshal()} // the broker-side timestamp is the publish time; ts_ms carries the capture time
	for _, h := range ev.Headers() {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
	}
	return r, nil
}

// Headers converts a record's headers for changes.Decode.
func Headers(r *kgo.Record) []changes.Header {
	hs := make([]changes.Header, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = changes.Header{Key: h.Key, Value: h.Value}
	}
	return hs
}

// Close flushes nothing (Publish waits for its records) and closes the
// connections.
func (p *Producer) Close() { p.cl.Close() }

// slogAdapter sends the client's warnings and errors to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (a slogAdapter) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	a.l.Log(context.Background(), lvl, "kafka: "+msg, keyvals...)
}
