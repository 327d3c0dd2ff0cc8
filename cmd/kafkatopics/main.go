// Command kafkatopics creates the change-event topics (shared/changes:
// customer.changes.system-a and customer.changes.system-b) and the sync
// worker's (shared/syncworker: customer.unified, compacted,
// customer.conflicts and customer.changes.dead-letter) on a Kafka
// cluster, once, before the first capture: Amazon MSK (IAM or SASL/SCRAM
// auth, TLS) or self-managed brokers, through the service's own client
// options (shared/kafka).
//
//	go run ./cmd/kafkatopics -brokers b-1.example:9098,b-2.example:9098 -auth iam -partitions 12 -replication 3
//
// A topic that exists already is left as it is (its partition count is
// reported; adding partitions later moves keys between partitions, so the
// tool never does). -replication -1 and -min-insync 0 leave them to the
// cluster (MSK Serverless).
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
