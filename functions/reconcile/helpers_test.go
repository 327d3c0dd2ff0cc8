package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/testkit"
)

func fileStore(dir string) report.Store { return &report.FileStore{Dir: dir} }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// realEngine returns a Handler over the real engine with sys and a file
// report store, the store's directory, and the scheduled event fixture.
func realEngine(t *testing.T, sys *testkit.Systems) (*Handler, string, json.RawMessage) {
	t.Helper()
	dir := t.TempDir()
	h := &Handler{Runner: &reconcile.Reconciler{
		A: sys.ReconcileA(), B: sys.ReconcileB(), Reports: fileStore(dir),
		Log: discard(), Metrics: testkit.NewMetrics(), TempDir: t.TempDir(),
	}}
	var payload json.RawMessage
	testkit.Event(t, "reconcile-scheduled.json", &payload)
	return h, dir, payload
}
