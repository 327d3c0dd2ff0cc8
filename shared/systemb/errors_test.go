package systemb

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
)

func TestSentinelsWrapTheirKind(t *testing.T) {
	tests := []struct {
		name     string
		sentinel error
		kind     merge.ErrorKind
	}{
		{"not found", ErrNotFound, merge.ErrNotFound},
		{"unavailable", ErrUnavailable, merge.ErrUnavailable},
		{"unauthorized", ErrUnauthorized, merge.ErrUnauthorized},
		{"invalid argument", ErrInvalidArgument, merge.ErrInvalid},
		{"bad data", ErrBadData, merge.ErrBadData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := error(&Error{Op: OpGet, Attempts: 1, Err: tt.sentinel, Cause: context.DeadlineExceeded})
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(err, the sentinel) = false")
			}
			if !errors.Is(err, tt.kind) || merge.ErrorKindOf(err) != tt.kind {
				t.Errorf("kind of %v = %q, want %q", err, merge.ErrorKindOf(err), tt.kind)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("the cause is lost")
			}
			for _, other := range merge.ErrorKinds() {
				if other != tt.kind && errors.Is(err, other) {
					t.Errorf("%v also wraps %q", err, other)
				}
			}
		})
	}
}

// TestClientErrorKinds checks the kinds of real calls' errors.
func TestClientErrorKinds(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		email  string
		kind   merge.ErrorKind
	}{
		{"404", http.StatusNotFound, "", "ada@example.com", merge.ErrNotFound},
		{"401", http.StatusUnauthorized, "", "ada@example.com", merge.ErrUnauthorized},
		{"501", http.StatusNotImplemented, "", "ada@example.com", merge.ErrUnavailable},
		{"malformed body", http.StatusOK, `{"email":`, "ada@example.com", merge.ErrBadData},
		{"empty email", http.StatusOK, "", " ", merge.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			c, _ := newClient(t, srv.URL, nil)
			_, err := c.Get(context.Background(), tt.email)
			if got := merge.ErrorKindOf(err); got != tt.kind {
				t.Errorf("kind of %v = %q, want %q", err, got, tt.kind)
			}
		})
	}
}
