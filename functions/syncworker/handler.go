package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/syncworker"
)

// AnswerReserve is the time before the invocation's deadline at which the
// processing of a batch is cut (a system or the broker hanging), so the
// handler still answers with the records to retry instead of timing out.
const AnswerReserve = time.Second

// Handler turns the event source mapping's events into the worker's
// records and its failures into a partial batch response.
type Handler struct {
	Worker *syncworker.Worker
	Log    *slog.Logger
}

// Handle processes one batch. It never returns an error: records to retry
// are answered as batch item failures (the mapping has
// ReportBatchItemFailures), so the rest of the batch is not retried.
func (h *Handler) Handle(ctx context.Context, ev events.KafkaEvent) (syncworker.BatchResponse, error) {
	recs := Records(ev)
	pctx := ctx
	if dl, ok := ctx.Deadline(); ok { // stop in time to answer which records to retry
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(ctx, dl.Add(-AnswerReserve))
		defer cancel()
	}
	failures := h.Worker.Process(pctx, recs)
	for _, f := range failures {
		if !errors.Is(f.Err, syncworker.ErrAfterFailure) { // the first failure of each sequence
			h.Log.WarnContext(ctx, "change record to retry, with the rest of its sequence", "partition", f.Record.Lane(), "offset", f.Record.Offset, "err", f.Err.Error())
		}
	}
	h.Log.InfoContext(ctx, "sync batch", "records", len(recs), "failed", len(failures))
	return syncworker.Response(failures), nil
}

// Records flattens the event's records, partition by partition in a
// stable order, each partition's in the order delivered. A key or value
// that is not base64 makes the record Unreadable.
func Records(ev events.KafkaEvent) []syncworker.Record {
	lanes := make([]string, 0, len(ev.Records))
	for k := range ev.Records {
		lanes = append(lanes, k)
	}
	sort.Strings(lanes)
	var out []syncworker.Record
	for _, lane := range lanes {
		for _, kr := range ev.Records[lane] {
			r := syncworker.Record{
				Topic: kr.Topic, Partition: int32(kr.Partition), Offset: kr.Offset,
				Timestamp: time.UnixMilli(kr.Timestamp.UnixMilli()),
			}
			var err error
			if r.Key, err = base64.StdEncoding.DecodeString(kr.Key); err != nil {
				r.Unreadable = fmt.Errorf("the record key is not base64")
			} else if r.Value, err = base64.StdEncoding.DecodeString(kr.Value); err != nil {
				r.Unreadable = fmt.Errorf("the record value is not base64")
			}
			for _, hs := range kr.Headers {
				keys := make([]string, 0, len(hs))
				for k := range hs {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					r.Headers = append(r.Headers, changes.Header{Key: k, Value: hs[k]})
				}
			}
			out = append(out, r)
		}
	}
	return out
}
