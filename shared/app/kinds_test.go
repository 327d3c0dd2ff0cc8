package app_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/config"
	"github.com/acme/unified-customer-service/shared/merge"
)

// TestReaderErrorsCarryKinds: the reader the functions use maps each
// system's own errors to the merge kinds, whatever system answered, so the
// handlers decide by kind alone.
func TestReaderErrorsCarryKinds(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch local, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/customers/"), "@"); local {
		case "denied":
			w.WriteHeader(http.StatusUnauthorized)
		case "broken":
			w.WriteHeader(http.StatusBadRequest) // not retried: one request
		case "garbled":
			w.Write([]byte(`{"email": 42}`)) //nolint:errcheck // test server
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(b.Close)
	snap, _ := writeSnapshot(t, 10)
	newApp := func(t *testing.T, snapshotURI string) *app.App {
		t.Helper()
		env := map[string]string{config.EnvSnapshotURI: snapshotURI, config.EnvSystemBURL: b.URL, config.EnvSystemBToken: "tok"}
		a, err := app.New(context.Background(), app.Options{Function: "lookup", Getenv: func(k string) string { return env[k] }, Stdout: &bytes.Buffer{}})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name        string
		email       string
		snapshotURI string
		aKind       merge.ErrorKind // "-" for no failure
		bKind       merge.ErrorKind
	}{
		{"404 is not found, no failure", "nobody@example.com", "file://" + snap, "-", "-"},
		{"401 is unauthorized", "denied@example.com", "file://" + snap, "-", merge.ErrUnauthorized},
		{"400 is unavailable", "broken@example.com", "file://" + snap, "-", merge.ErrUnavailable},
		{"a record that breaks the contract is bad data", "garbled@example.com", "file://" + snap, "-", merge.ErrBadData},
		{"no snapshot is System A unavailable", "nobody@example.com", "file://" + filepath.Join(t.TempDir(), "missing.db"), merge.ErrUnavailable, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := newApp(t, tt.snapshotURI).Reader().Read(context.Background(), tt.email)
			for _, c := range []struct {
				sys  string
				err  error
				want merge.ErrorKind
			}{{"A", read.AErr, tt.aKind}, {"B", read.BErr, tt.bKind}} {
				switch {
				case c.want == "-" && c.err != nil:
					t.Errorf("System %s failed: %v", c.sys, c.err)
				case c.want != "-" && merge.ErrorKindOf(c.err) != c.want:
					t.Errorf("System %s: error %v has kind %q, want %q", c.sys, c.err, merge.ErrorKindOf(c.err), c.want)
				}
			}
			if read.A != nil || read.B != nil {
				t.Errorf("records read: A %v B %v", read.A != nil, read.B != nil)
			}
		})
	}
}
