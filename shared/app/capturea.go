package app

import (
	"fmt"
	"os"

	"github.com/acme/unified-customer-service/shared/capturea"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/systema"
)

// CaptureA returns System A's change capture: the snapshot's versions from
// SNAPSHOT_URI, its state below REPORT_URI, its events through the Kafka
// producer. The App must have been built with config.Need{Report: true,
// Kafka: true}.
func (a *App) CaptureA() (*capturea.Capturer, error) {
	if a.Reports == nil || a.Producer == nil {
		return nil, fmt.Errorf("capturea: the app was built without REPORT_URI or Kafka")
	}
	u, err := systema.ParseURI(a.Config.SnapshotURI)
	if err != nil {
		return nil, fmt.Errorf("capturea: %s: %w", config.EnvSnapshotURI, err)
	}
	return &capturea.Capturer{
		Snapshot: u, Source: a.source, State: a.Reports, Publisher: a.Producer,
		Log: a.Log, Metrics: a.Metrics, FirstRun: a.Config.CaptureAFirstRun, TempDir: os.TempDir(),
	}, nil
}
