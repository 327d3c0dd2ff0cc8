package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/systema"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		args      []string
		wantCode  int
		wantOut   string
		wantErr   string
		wantFiles bool
	}{
		{name: "summary", args: []string{"-n", "200", "-seed", "3", "-out", filepath.Join(dir, "a"), "-showcase"}, wantOut: "withConflicts", wantFiles: true},
		{name: "mix and times", args: []string{"-n", "50", "-out", filepath.Join(dir, "b"), "-mix", "conflictBNewer=50%", "-exported-at", "2024-03-01T00:00:00Z", "-now", "2024-03-02T00:00:00Z"}, wantOut: "systemB", wantFiles: true},
		{name: "help", args: []string{"-h"}, wantErr: "usage: gendata"},
		{name: "no out", args: []string{"-n", "5"}, wantCode: exitUsage, wantErr: "-out DIR is required"},
		{name: "negative n", args: []string{"-n", "-1", "-out", dir}, wantCode: exitUsage, wantErr: "-n -1"},
		{name: "bad n", args: []string{"-n", "many", "-out", dir}, wantCode: exitUsage, wantErr: "invalid value"},
		{name: "bad mix", args: []string{"-out", dir, "-mix", "sync=1"}, wantCode: exitUsage, wantErr: `-mix: demodata: invalid config: mix entry "sync=1"`},
		{name: "bad time", args: []string{"-out", dir, "-exported-at", "yesterday"}, wantCode: exitUsage, wantErr: `-exported-at "yesterday": not RFC 3339`},
		{name: "now before export", args: []string{"-out", dir, "-now", "2001-01-01T00:00:00Z"}, wantCode: exitUsage, wantErr: "before exportedAt"},
		{name: "stray argument", args: []string{"-out", dir, "extra"}, wantCode: exitUsage, wantErr: `unexpected argument "extra"`},
		{name: "out is a file", args: []string{"-n", "3", "-out", filepath.Join(dir, "file")}, wantCode: exitError, wantErr: "gendata: demodata: write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "out is a file" {
				if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.wantOut)
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantErr)
			}
			if tc.wantFiles {
				out := tc.args[slices.Index(tc.args, "-out")+1]
				for _, f := range []string{demodata.SnapshotFile, demodata.SystemBFile, demodata.TruthFile} {
					if _, err := os.Stat(filepath.Join(out, f)); err != nil {
						t.Error(err)
					}
				}
				// The export contract's manifest describes the snapshot.
				snap := filepath.Join(out, demodata.SnapshotFile)
				want, err := systema.ManifestOf(snap)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := os.ReadFile(systema.ManifestFile(snap))
				var got systema.Manifest
				if err != nil || json.Unmarshal(raw, &got) != nil || got != want {
					t.Errorf("manifest file %q (%v), want %+v", raw, err, want)
				}
			}
		})
	}
}

func TestRunJSONMatchesTruthFile(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-n", "300", "-out", dir, "-json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var printed, stored demodata.Truth
	if err := json.Unmarshal(stdout.Bytes(), &printed); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, demodata.TruthFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	if printed.N != 300 || printed.SystemA != stored.SystemA || printed.WithConflicts != stored.WithConflicts {
		t.Errorf("printed truth %+v differs from %s %+v", printed, demodata.TruthFile, stored)
	}
}
