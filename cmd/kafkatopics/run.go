package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/syncworker"
	"github.com/acme/unified-customer-service/shared/writeback"
)

// envPassword names the variable that holds the SCRAM password (never a flag:
// flags show in the process list).
const envPassword = "KAFKA_SASL_PASSWORD"

// run parses args, creates the topics and returns the exit code: 0 when
// every topic exists with at least the partitions asked for, 1 on a
// failure, 2 on bad usage.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kafkatopics", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "bootstrap brokers, host:port, comma-separated (required)")
	auth := fs.String("auth", "none", "none, iam (MSK IAM, AWS credentials from the default chain) or scram-sha-512")
	useTLS := fs.Bool("tls", false, "TLS to the brokers (always on with -auth iam)")
	user := fs.String("user", "", "SCRAM user (-auth scram-sha-512; the password is read from "+envPassword+")")
	partitions := fs.Int("partitions", 12, "partitions of each topic (bounds the consumers' parallelism; every change of one customer stays in one)")
	replication := fs.Int("replication", 3, "replication factor; -1 for the cluster's default (MSK Serverless)")
	minISR := fs.Int("min-insync", 2, "min.insync.replicas of each topic (acks=all waits for that many); 0 to leave the cluster's")
	timeout := fs.Duration("timeout", 30*time.Second, "bound of the whole run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "kafkatopics: "+format+"\n", a...)
		return 2
	}
	a, err := kafka.ParseAuth(*auth)
	switch {
	case fs.NArg() > 0:
		return usage("no arguments expected, got %q", fs.Args())
	case strings.TrimSpace(*brokers) == "":
		return usage("-brokers is required")
	case err != nil:
		return usage("-auth: %v", err)
	case *partitions < 1 || *partitions > 10000:
		return usage("-partitions must be 1 to 10000")
	case *replication == 0 || *replication < -1 || *replication > 32:
		return usage("-replication must be -1 or 1 to 32")
	case *minISR < 0 || (*replication > 0 && *minISR > *replication):
		return usage("-min-insync must be 0 to -replication")
	case a == kafka.AuthSCRAMSHA512 && (*user == "" || getenv(envPassword) == ""):
		return usage("-auth scram-sha-512 needs -user and %s", envPassword)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg := kafka.Config{Brokers: strings.Split(*brokers, ","), Auth: a, TLS: *useTLS, ClientID: "unified-customer-service-kafkatopics"}
	switch a {
	case kafka.AuthIAM:
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "kafkatopics: AWS configuration: %v\n", err)
			return 1
		}
		cfg.Creds.AWS = func(ctx context.Context) (string, string, string, error) {
			c, err := awsCfg.Credentials.Retrieve(ctx)
			if err != nil {
				return "", "", "", fmt.Errorf("kafkatopics: aws credentials: %w", err)
			}
			return c.AccessKeyID, c.SecretAccessKey, c.SessionToken, nil
		}
	case kafka.AuthSCRAMSHA512:
		pass := getenv(envPassword)
		cfg.Creds.SCRAM = func(context.Context) (string, string, error) { return *user, pass, nil }
	}
	adm, err := kafka.NewAdmin(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "kafkatopics: %v\n", err)
		return 2
	}
	defer adm.Close()
	configs := map[string]*string{}
	if *minISR > 0 {
		configs["min.insync.replicas"] = kadm.StringPtr(strconv.Itoa(*minISR))
	}
	// The change topics and the sync worker's outputs; customer.unified is
	// compacted: the latest unified record (or tombstone) per customer.
	compacted := maps.Clone(configs)
	compacted["cleanup.policy"] = kadm.StringPtr("compact")
	var errs []error
	for _, set := range []struct {
		topics  []string
		configs map[string]*string
	}{
		{[]string{changes.TopicSystemA, changes.TopicSystemB, syncworker.TopicConflicts, syncworker.TopicDeadLetter, writeback.TopicCorrections}, configs},
		{[]string{syncworker.TopicUnified}, compacted},
	} {
		if err := create(ctx, adm, set.topics, int32(*partitions), int16(*replication), set.configs, stdout); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "kafkatopics: %v\n", err)
		return 1
	}
	return 0
}

// create creates the topics that do not exist and reports each one; it
// fails when a topic could not be created or exists with fewer partitions
// than asked for.
func create(ctx context.Context, adm *kadm.Client, topics []string, partitions int32, replication int16, configs map[string]*string, out io.Writer) error {
	resp, err := adm.CreateTopics(ctx, partitions, replication, configs, topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	var existing []string
	for _, t := range topics {
		r, ok := resp[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: no answer from the cluster", t))
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
			existing = append(existing, t)
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("%s: %w %s", t, r.Err, r.ErrMessage))
		default:
			fmt.Fprintf(out, "%s: created, %d partitions, replication factor %d\n", t, r.NumPartitions, r.ReplicationFactor)
		}
	}
	if len(existing) > 0 {
		details, err := adm.ListTopics(ctx, existing...)
		if err != nil {
			return fmt.Errorf("describe existing topics: %w", err)
		}
		for _, t := range existing {
			d := details[t]
			if d.Err != nil {
				errs = append(errs, fmt.Errorf("%s: exists, but describing it failed: %w", t, d.Err))
				continue
			}
			n := int32(len(d.Partitions))
			fmt.Fprintf(out, "%s: exists, %d partitions, replication factor %d (left as it is)\n", t, n, d.Partitions.NumReplicas())
			if n < partitions {
				errs = append(errs, fmt.Errorf("%s has %d partitions, fewer than the %d asked for; adding partitions moves keys, so this tool does not (kafka-topics.sh --alter does)", t, n, partitions))
			}
		}
	}
	return errors.Join(errs...)
}
