// Package stack runs the local loop's embedded services: the S3 server
// (s3local) with the template's buckets, the System B simulator (bsim), the
// Kafka broker (kafkalocal), and the demo data (demo) seeded into the services it started. A service that
// already listens on its address (another `local up`) is used as it is.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/demo"
	"github.com/acme/unified-customer-service/cmd/local/internal/kafkalocal"
	"github.com/acme/unified-customer-service/cmd/local/internal/s3local"
)

// Mode says whether to start an embedded service.
type Mode string

// The modes.
const (
	// Auto starts the service unless something already listens on its
	// address, which is then used as it is.
	Auto Mode = "auto"
	// On starts the service; its address must be free.
	On Mode = "on"
	// Off starts nothing.
	Off Mode = "off"
)

// ParseMode parses --embedded.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Auto, On, Off:
		return m, nil
	}
	return "", fmt.Errorf("stack: --embedded must be auto, on or off, not %q", s)
}

// Config says which services to run and where.
type Config struct {
	S3    Mode // the embedded S3 server
	BSim  Mode // the System B simulator
	Kafka Mode // the embedded Kafka broker (kfake)

	S3Addr   string   // default s3local.DefaultAddr
	S3Dir    string   // the S3 store; default s3local.DefaultDir
	Buckets  []string // created (versioned) in a started S3
	BSimAddr string   // default bsim.DefaultAddr
	// BSimLatency is the simulator's per-request latency (bsim.Config.Latency).
	BSimLatency time.Duration

	KafkaAddr string // default kafkalocal.DefaultAddr
	KafkaDir  string // the broker's log; in memory when empty

	// Seed loads the demo data into the services this call starts: the
	// snapshot to SnapshotBucket/SnapshotKey, the customers into the
	// simulator.
	Seed           bool
	DemoDir        string // default demo.DefaultDir
	SnapshotBucket string
	SnapshotKey    string

	Log io.Writer // progress lines; default io.Discard
	// OnObjectCreated is told of every object version written to a
	// started S3 (the demo snapshot's upload included); see
	// s3local.Config.OnObjectCreated.
	OnObjectCreated func(s3local.ObjectCreated)
}

// Stack is the running (or found) services.
type Stack struct {
	S3URL        string // "" when S3 is Off
	S3Started    bool
	SystemBURL   string // "" when BSim is Off
	SystemBToken string
	// SystemBWebhookSecret signs the simulator's change notifications
	// (bsim.DefaultWebhookSecret); "" when BSim is Off.
	SystemBWebhookSecret string
	SimStarted           bool
	// Sim is the simulator this call started (nil otherwise), for fault
	// injection in-process.
	Sim  *bsim.Sim
	Demo *demo.Summary // nil when nothing was seeded
	// KafkaBrokers is the Kafka bootstrap address ("" when Kafka is Off).
	KafkaBrokers string
	KafkaStarted bool
	// Kafka is the broker this call started (nil otherwise), for fault
	// injection in-process.
	Kafka *kafkalocal.Broker

	s3   *s3local.Server
	bsrv *bsim.Server
}

// Start starts (or finds) the services cfg asks for.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.S3Addr == "" {
		cfg.S3Addr = s3local.DefaultAddr
	}
	if cfg.BSimAddr == "" {
		cfg.BSimAddr = bsim.DefaultAddr
	}
	if cfg.KafkaAddr == "" {
		cfg.KafkaAddr = kafkalocal.DefaultAddr
	}
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	st := &Stack{}
	if cfg.S3 != Off {
		if cfg.S3 == Auto && listening(cfg.S3Addr) {
			st.S3URL = "http://" + cfg.S3Addr
			fmt.Fprintf(log, "S3: using the server already listening on %s\n", st.S3URL)
		} else {
			srv, err := s3local.Start(ctx, s3local.Config{Addr: cfg.S3Addr, Dir: cfg.S3Dir, Buckets: cfg.Buckets, OnObjectCreated: cfg.OnObjectCreated})
			if err != nil {
				return nil, fmt.Errorf("stack: embedded S3 on %s: %w", cfg.S3Addr, err)
			}
			st.s3, st.S3URL, st.S3Started = srv, srv.URL(), true
			fmt.Fprintf(log, "S3: embedded server on %s (data in %s; buckets %s)\n", srv.URL(), srv.Dir(), strings.Join(cfg.Buckets, ", "))
		}
	}
	if cfg.BSim != Off {
		if cfg.BSim == Auto && listening(cfg.BSimAddr) {
			st.SystemBURL, st.SystemBToken = "http://"+cfg.BSimAddr, bsim.DefaultToken
			st.SystemBWebhookSecret = bsim.DefaultWebhookSecret
			fmt.Fprintf(log, "System B: using the simulator already listening on %s\n", st.SystemBURL)
		} else {
			sim := bsim.New(bsim.Config{Latency: cfg.BSimLatency})
			srv, err := sim.Serve(cfg.BSimAddr)
			if err != nil {
				st.Close()
				return nil, fmt.Errorf("stack: System B simulator on %s: %w", cfg.BSimAddr, err)
			}
			st.Sim, st.bsrv, st.SimStarted = sim, srv, true
			st.SystemBURL, st.SystemBToken = srv.URL(), sim.Token()
			st.SystemBWebhookSecret = bsim.DefaultWebhookSecret
			fmt.Fprintf(log, "System B: simulator on %s (faults: %s/_sim/; latency %s a request)\n", srv.URL(), srv.URL(), sim.Latency())
		}
	}
	if cfg.Kafka != Off && cfg.Kafka != "" {
		if cfg.Kafka == Auto && listening(cfg.KafkaAddr) {
			st.KafkaBrokers = cfg.KafkaAddr
			fmt.Fprintf(log, "Kafka: using the broker already listening on %s\n", st.KafkaBrokers)
		} else {
			b, err := kafkalocal.Start(kafkalocal.Config{Addr: cfg.KafkaAddr, Dir: cfg.KafkaDir})
			if err != nil {
				st.Close()
				return nil, fmt.Errorf("stack: embedded Kafka broker on %s: %w", cfg.KafkaAddr, err)
			}
			st.Kafka, st.KafkaBrokers, st.KafkaStarted = b, b.Addr(), true
			fmt.Fprintf(log, "Kafka: embedded broker (kfake) on %s (topics %s)\n", b.Addr(), strings.Join(kafkalocal.Topics(), ", "))
		}
	}
	if cfg.Seed && (st.S3Started || st.SimStarted) {
		dc := demo.Config{Dir: cfg.DemoDir}
		if st.S3Started && cfg.SnapshotBucket != "" && cfg.SnapshotKey != "" {
			dc.S3, dc.Bucket, dc.Key = st.s3.Client(), cfg.SnapshotBucket, cfg.SnapshotKey
		}
		if st.SimStarted {
			dc.Sim = st.Sim
		}
		sum, err := demo.Seed(ctx, dc)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("stack: demo data: %w", err)
		}
		st.Demo = &sum
		what := "reused"
		if sum.Generated {
			what = "generated"
		}
		fmt.Fprintf(log, "Demo data: %s in %s", what, sum.Dir)
		if dc.S3 != nil {
			up := "already there"
			if sum.Uploaded {
				up = "uploaded"
			}
			fmt.Fprintf(log, "; snapshot s3://%s/%s %s", sum.Bucket, sum.Key, up)
		}
		if dc.Sim != nil {
			fmt.Fprintf(log, "; %d System B customers loaded", sum.Loaded)
		}
		fmt.Fprintln(log)
	}
	return st, nil
}

// Close stops what Start started.
func (st *Stack) Close() error {
	var errs []error
	if st.Sim != nil {
		st.Sim.Close()
	}
	if st.bsrv != nil {
		errs = append(errs, st.bsrv.Close())
		st.bsrv = nil
	}
	if st.s3 != nil {
		errs = append(errs, st.s3.Close())
		st.s3 = nil
	}
	if st.Kafka != nil {
		st.Kafka.Close()
		st.Kafka = nil
	}
	return errors.Join(errs...)
}

// listening reports whether something accepts TCP connections on addr.
func listening(addr string) bool {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		return false
	}
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
