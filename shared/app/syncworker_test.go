package app_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/dedup"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/writeback"
)

// TestSyncWorkerWiring: the worker gets the reader, the rules, the
// producer, SYNC_WORKER_CONCURRENCY and the store DEDUP_STORE names (a
// working SQLite file); an app built without Kafka has no worker.
func TestSyncWorkerWiring(t *testing.T) {
	c := kafkatest.Broker(t, 1)
	snap, _ := writeSnapshot(t, 10)
	store := filepath.Join(t.TempDir(), "dedup", "worker.db")
	env := map[string]string{
		config.EnvSnapshotURI: "file://" + snap, config.EnvSystemBURL: "http://127.0.0.1:1", config.EnvSystemBToken: "tok",
		config.EnvKafkaBootstrapServers: strings.Join(c.ListenAddrs(), ","), config.EnvDedupStore: "file://" + store,
		config.EnvSyncWorkerConcurrency: "6", config.EnvMergeRules: "*=systemB",
	}
	newApp := func(need config.Need) *app.App {
		t.Helper()
		a, err := app.New(context.Background(), app.Options{Function: "syncworker", Need: need, Getenv: func(k string) string { return env[k] }, Stdout: &bytes.Buffer{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Store.Close() })
		if a.Producer != nil {
			t.Cleanup(a.Producer.Close)
		}
		return a
	}
	w, err := newApp(config.Need{Kafka: true, SyncWorker: true}).SyncWorker(nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Concurrency != 6 || w.Out == nil || w.Reader == nil || w.WriteBack != nil || w.Rules.For(merge.FieldPhone) != merge.RuleSystemB {
		t.Errorf("worker = %+v, want concurrency 6, a producer, a reader, no write-back and MERGE_RULES", w)
	}
	ctx := context.Background()
	if err := w.Dedup.Record(ctx, time.Hour, dedup.Entry{ID: "e1"}); err != nil {
		t.Fatalf("the store: %v", err)
	}
	if seen, err := w.Dedup.Seen(ctx, "e1"); err != nil || !seen {
		t.Errorf("Seen = %v, %v; want the id recorded in %s", seen, err, store)
	}
	if _, err := newApp(config.Need{SyncWorker: true}).SyncWorker(nil); err == nil {
		t.Errorf("SyncWorker without Kafka: no error")
	}

	// WRITE_BACK: off by default (no writer), systemB gives the Writer.
	if wb := newApp(config.Need{Kafka: true, SyncWorker: true}).WriteBack(); wb != nil {
		t.Errorf("WriteBack() = %T with WRITE_BACK unset, want none", wb)
	}
	env[config.EnvWriteBack] = "systemB"
	wb := newApp(config.Need{Kafka: true, SyncWorker: true}).WriteBack()
	if w, ok := wb.(*writeback.Writer); !ok || w.Mode != writeback.ModeSystemB || w.SystemB == nil || w.Publisher == nil {
		t.Errorf("WriteBack() = %#v with WRITE_BACK=systemB, want a writeback.Writer to System B with a publisher", wb)
	}
}
