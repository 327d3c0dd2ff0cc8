package systema

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
)

func TestSentinelKinds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sentinel error
		kind     merge.ErrorKind // "" for none
	}{
		{"not found", ErrNotFound, merge.ErrNotFound},
		{"unavailable", ErrUnavailable, merge.ErrUnavailable},
		{"no snapshot", ErrNoSnapshot, merge.ErrUnavailable},
		{"changed", ErrChanged, merge.ErrUnavailable},
		{"bad data", ErrBadData, merge.ErrBadData},
		{"invalid snapshot", ErrInvalidSnapshot, merge.ErrBadData},
		{"older snapshot", ErrOlderSnapshot, merge.ErrBadData},
		{"bad record to write", ErrBadRecord, merge.ErrInvalid},
		{"released", ErrReleased, ""},
		{"closed", ErrClosed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fmt.Errorf("systema: some operation: %w", tc.sentinel)
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(wrapped, sentinel) = false")
			}
			if got := merge.ErrorKindOf(err); got != tc.kind {
				t.Errorf("ErrorKindOf = %q, want %q", got, tc.kind)
			}
			if msg := tc.sentinel.Error(); msg == "" || msg == string(tc.kind) {
				t.Errorf("message %q does not say what happened", msg)
			}
		})
	}
}

// TestErrorKindsAtTheBoundary checks the kinds of the errors the adapter's
// operations answer, as a caller in another package sees them.
func TestErrorKindsAtTheBoundary(t *testing.T) {
	dir := t.TempDir()
	snap := openSnap(t, writeSnap(t, dir, sampleRecords(), snapOpts{sql: []string{
		"UPDATE customers SET last_updated = 'yesterday' WHERE email = 'alice@example.com'",
	}}))
	missing, err := New(Config{Source: NewFileSource(filepath.Join(dir, "missing.db")), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { missing.Close() })
	for _, tc := range []struct {
		name string
		do   func() error
		kind merge.ErrorKind
		also error // the package's sentinel, still matched
	}{
		{"lookup of an absent customer", func() error {
			_, err := snap.Lookup(context.Background(), "nobody@example.com")
			return err
		}, merge.ErrNotFound, ErrNotFound},
		{"lookup of a malformed row", func() error {
			_, err := snap.Lookup(context.Background(), "alice@example.com")
			return err
		}, merge.ErrBadData, ErrBadData},
		{"acquire without a snapshot", func() error {
			_, err := missing.Acquire(context.Background())
			return err
		}, merge.ErrUnavailable, ErrNoSnapshot},
		{"open of a missing file", func() error {
			_, err := Open(context.Background(), filepath.Join(dir, "missing.db"))
			return err
		}, merge.ErrUnavailable, ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if got := merge.ErrorKindOf(err); got != tc.kind {
				t.Errorf("ErrorKindOf(%v) = %q, want %q", err, got, tc.kind)
			}
			if !errors.Is(err, tc.also) {
				t.Errorf("%v does not wrap %v", err, tc.also)
			}
		})
	}
}
