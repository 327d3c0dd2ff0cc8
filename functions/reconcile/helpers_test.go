package main

import (
	"io"
	"log/slog"

	"github.com/acme/unified-customer-service/shared/report"
)

func fileStore(dir string) report.Store { return &report.FileStore{Dir: dir} }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
