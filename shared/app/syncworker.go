package app

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/dedup"
	"github.com/acme/unified-customer-service/shared/syncworker"
	"github.com/acme/unified-customer-service/shared/writeback"
)

// DedupStore opens the sync worker's idempotency store named by
// DEDUP_STORE: the DynamoDB table (the SDK's endpoint settings apply, e.g.
// AWS_ENDPOINT_URL_DYNAMODB) or the SQLite file. The App must have been
// built with config.Need{SyncWorker: true}.
func (a *App) DedupStore() (dedup.Store, error) {
	loc, err := dedup.ParseLocation(a.Config.DedupStore)
	if err != nil {
		return nil, fmt.Errorf("syncworker: %s: %w", config.EnvDedupStore, err)
	}
	if loc.Scheme == "dynamodb" {
		return dedup.NewDynamoDB(dynamodb.NewFromConfig(a.awsCfg), loc.Table, nil), nil
	}
	st, err := dedup.OpenFile(loc.Path, nil)
	if err != nil {
		return nil, fmt.Errorf("syncworker: %s: %w", config.EnvDedupStore, err)
	}
	return st, nil
}

// SyncWorker returns the sync worker: both systems through the unified
// reader, MERGE_RULES, the Kafka producer for its outputs, the dedup store
// of DEDUP_STORE and wb as the write-back (nil: WRITE_BACK=off). The App
// must have been built with config.Need{Kafka: true, SyncWorker: true}.
func (a *App) SyncWorker(wb syncworker.WriteBack) (*syncworker.Worker, error) {

	if a.Producer == nil {
		return nil, fmt.Errorf("syncworker: the app was built without Kafka")
	}
	st, err := a.DedupStore()
	if err != nil {
		return nil, err
	}
	w := &syncworker.Worker{
		Reader: a.Reader(), Rules: a.Config.Rules, Out: a.Producer, Dedup: st,
		Metrics: a.Metrics, Log: a.Log, Concurrency: a.Config.SyncWorkerConcurrency,
	}
	if wb != nil {
		w.WriteBack = wb
	}
	return w, nil
}

// WriteBack returns the write-back WRITE_BACK asks for: nil when off (the
// default: the worker writes to neither system), else the Writer that
// PATCHes System B conditionally and publishes corrections for System A.
func (a *App) WriteBack() syncworker.WriteBack {
	if a.Config.WriteBack != writeback.ModeSystemB || a.Producer == nil {
		return nil
	}
	return &writeback.Writer{
		SystemB: a.Client, Publisher: a.Producer, Mode: a.Config.WriteBack,
		Log: a.Log, Metrics: a.Metrics, Now: time.Now,
	}
}
