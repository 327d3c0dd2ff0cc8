package app_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/reconcile"
	"github.com/acme/unified-customer-service/shared/systema"
)

// systemBWithNobody is a System B that holds no customer.
func systemBWithNobody(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/customers" {
			w.Write([]byte(`{"items":[],"nextCursor":null}`))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeSnapshot(t *testing.T, n int) (string, demodata.Truth) {
	t.Helper()
	cfg := demodata.NewConfig(7, n)
	g, err := demodata.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "customers.db")
	if err := systema.WriteSnapshot(context.Background(), path, cfg.ExportedAt, g.SystemA()); err != nil {
		t.Fatal(err)
	}
	return path, g.Truth()
}

func TestNewRefusesBadSettings(t *testing.T) {
	env := map[string]string{config.EnvSnapshotURI: "ftp://x/y", config.EnvSystemBURL: "http://127.0.0.1:1", config.EnvSystemBToken: "tok"}
	_, err := app.New(context.Background(), app.Options{Function: "lookup", Getenv: func(k string) string { return env[k] }, Stdout: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), config.EnvSnapshotURI) {
		t.Fatalf("err = %v, want one naming %s", err, config.EnvSnapshotURI)
	}
}

func TestWiringEndToEnd(t *testing.T) {
	snap, truth := writeSnapshot(t, 300)
	b := systemBWithNobody(t)
	reports := t.TempDir()
	env := map[string]string{
		config.EnvSnapshotURI:           "file://" + snap,
		config.EnvSystemBURL:            b.URL,
		config.EnvSystemBToken:          "tok",
		config.EnvReportURI:             "file://" + reports,
		config.EnvReconcileLeaseSeconds: "7",
	}
	var out bytes.Buffer
	a, err := app.New(context.Background(), app.Options{
		Function: "reconcile", Need: config.Need{Report: true},
		Getenv: func(k string) string { return env[k] }, Stdout: &out,
	})
	if err != nil {
		t.Fatal(err)
	}

	// One customer of System A through the two-system reader.
	s, err := systema.Open(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	var key string
	for rec, err := range s.All(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		key = rec.Key()
		break
	}
	read := a.Reader().Read(context.Background(), key)
	if read.AErr != nil || read.BErr != nil || read.A == nil || read.B != nil {
		t.Fatalf("read = A %v (%v), B %v (%v); want A's record and B's 404 as not found", read.A != nil, read.AErr, read.B != nil, read.BErr)
	}

	// A whole reconciliation against a System B holding nobody.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "0d4e6a1c-req"})
	rec := a.Reconciler()
	if rec.LeaseTTL != 7*time.Second {
		t.Errorf("lease %s, want %s's 7 s", rec.LeaseTTL, config.EnvReconcileLeaseSeconds)
	}
	sum, err := rec.Run(ctx, reconcile.Event{ID: "e-1", Time: time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sum.Attempt, "0d4e6a1c-req-") {
		t.Errorf("attempt token %q does not start with the request id", sum.Attempt)
	}
	if sum.Counts.SystemA != truth.SystemA || sum.Counts.OnlyInSystemA != truth.SystemA || sum.Counts.SystemB != 0 {
		t.Errorf("counts = %+v, want all %d of System A only in System A", sum.Counts, truth.SystemA)
	}
	if _, err := os.Stat(filepath.Join(reports, "2026-11-24", "e-1", "summary.json")); err != nil {
		t.Error(err)
	}
	a.Flush()
	if !strings.Contains(out.String(), `"CloudWatchMetrics"`) || !strings.Contains(out.String(), "reconcile.customers.total") {
		t.Errorf("no EMF metrics line after Flush:\n%s", out.String())
	}
	if strings.Contains(out.String(), "@example.") {
		t.Errorf("an email reached the logs:\n%s", out.String())
	}
}
