package app_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/capturea"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
)

// TestCaptureAWiring: the capture gets the snapshot URI, the report store,
// the producer and CAPTURE_A_FIRST_RUN; an app built without Kafka or
// REPORT_URI has none, and a bad first-run mode stops the init.
func TestCaptureAWiring(t *testing.T) {
	c := kafkatest.Broker(t, 1)
	snap, _ := writeSnapshot(t, 10)
	env := map[string]string{
		config.EnvSnapshotURI: "file://" + snap, config.EnvSystemBURL: "http://127.0.0.1:1", config.EnvSystemBToken: "tok",
		config.EnvKafkaBootstrapServers: strings.Join(c.ListenAddrs(), ","), config.EnvReportURI: "file://" + t.TempDir(),
		config.EnvCaptureAFirstRun: "baseline",
	}
	newApp := func(need config.Need) (*app.App, error) {
		t.Helper()
		a, err := app.New(context.Background(), app.Options{Function: "capturea", Need: need, Getenv: func(k string) string { return env[k] }, Stdout: &bytes.Buffer{}})
		if err == nil {
			t.Cleanup(func() { a.Store.Close() })
			if a.Producer != nil {
				t.Cleanup(a.Producer.Close)
			}
		}
		return a, err
	}
	a, err := newApp(config.Need{Report: true, Kafka: true})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := a.CaptureA()
	if err != nil {
		t.Fatal(err)
	}
	if cp.FirstRun != capturea.FirstRunBaseline || cp.Publisher == nil || cp.State == nil || cp.Snapshot.Path != snap {
		t.Errorf("capturer = %+v, want baseline mode, a publisher, a state store and the snapshot %s", cp, snap)
	}
	for _, need := range []config.Need{{Report: true}, {Kafka: true}} {
		a, err := newApp(need)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.CaptureA(); err == nil {
			t.Errorf("CaptureA with %+v: no error", need)
		}
	}
	env[config.EnvCaptureAFirstRun] = "everything"
	if _, err := newApp(config.Need{Report: true, Kafka: true}); err == nil || !strings.Contains(err.Error(), config.EnvCaptureAFirstRun) {
		t.Errorf("CAPTURE_A_FIRST_RUN=everything: err = %v, want one naming the setting", err)
	}
}
