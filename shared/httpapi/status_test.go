package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// TestStatusTableCoversEveryKind: a kind added to merge without a row here
// would silently answer 500.
func TestStatusTableCoversEveryKind(t *testing.T) {
	for _, k := range merge.ErrorKinds() {
		if _, ok := statuses[k]; !ok {
			t.Errorf("kind %q has no status in the table", k)
		}
	}
	if _, ok := statuses[KindInternal]; !ok {
		t.Error("the internal kind has no status in the table")
	}
	if len(statuses) != len(merge.ErrorKinds())+1 {
		t.Errorf("the table has %d rows, want one per kind and internal", len(statuses))
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name string
		kind merge.ErrorKind
		want int
	}{
		{"invalid input", merge.ErrInvalid, http.StatusBadRequest},
		{"not found", merge.ErrNotFound, http.StatusNotFound},
		{"unavailable", merge.ErrUnavailable, http.StatusServiceUnavailable},
		{"bad data", merge.ErrBadData, http.StatusBadGateway},
		{"unauthorized", merge.ErrUnauthorized, http.StatusBadGateway},
		{"internal", KindInternal, http.StatusInternalServerError},
		{"unknown kind", merge.ErrorKind("no such kind"), http.StatusInternalServerError},
		{"kind of a wrapped error", merge.ErrorKindOf(&merge.BadRecordError{Source: merge.SystemB}), http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Status(tt.kind); got != tt.want {
				t.Errorf("Status(%q) = %d, want %d", tt.kind, got, tt.want)
			}
		})
	}
}

func TestWorse(t *testing.T) {
	tests := []struct {
		name string
		a, b merge.ErrorKind
		want merge.ErrorKind
	}{
		{"unavailable beats bad data", merge.ErrBadData, merge.ErrUnavailable, merge.ErrUnavailable},
		{"unavailable beats internal", merge.ErrUnavailable, KindInternal, merge.ErrUnavailable},
		{"bad data beats internal", KindInternal, merge.ErrBadData, merge.ErrBadData},
		{"a tie keeps the first", merge.ErrBadData, merge.ErrUnauthorized, merge.ErrBadData},
		{"the same kind", merge.ErrUnavailable, merge.ErrUnavailable, merge.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Worse(tt.a, tt.b); got != tt.want {
				t.Errorf("Worse(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestReasonTokensAreDistinct(t *testing.T) {
	seen := map[string]merge.ErrorKind{}
	all := merge.ErrorKinds()
	for _, k := range append(all[:], KindInternal) {
		r := Reason(k)
		if prev, dup := seen[r]; dup {
			t.Errorf("kinds %q and %q share the reason %q", prev, k, r)
		}
		seen[r] = k
	}
	if Reason(merge.ErrBadData) != "badData" || Reason(KindInternal) != "internal" {
		t.Errorf("reasons changed: %q %q", Reason(merge.ErrBadData), Reason(KindInternal))
	}
}

func TestKindProblem(t *testing.T) {
	tests := []struct {
		name       string
		kind       merge.ErrorKind
		status     int
		detail     string
		retryAfter string
	}{
		{"unavailable: try again, with Retry-After", merge.ErrUnavailable, 503, "System B could not be asked; try again later", "30"},
		{"bad data: no Retry-After", merge.ErrBadData, 502, "System B could not be asked", ""},
		{"internal", KindInternal, 500, "System B could not be asked", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := KindProblem(tt.kind, "System B could not be asked").Response()
			var p Problem
			if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || p.Status != tt.status || p.Detail != tt.detail || p.Title != http.StatusText(tt.status) {
				t.Errorf("status %d problem %+v, want %d %q", resp.StatusCode, p, tt.status, tt.detail)
			}
			if got := resp.Headers["Retry-After"]; got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if resp.Headers["Content-Type"] != ContentTypeProblem {
				t.Errorf("Content-Type = %q", resp.Headers["Content-Type"])
			}
		})
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	p := NewProblem(503, "down")
	p.RetryAfter = 1500 * time.Millisecond
	if got := p.Response().Headers["Retry-After"]; got != "2" {
		t.Errorf("Retry-After = %q, want 2 (whole seconds, rounded up)", got)
	}
}
