package unified_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/unified"
)

var (
	errUnavailable = fmt.Errorf("connection refused: %w", merge.ErrUnavailable)
	errBadData     = &merge.BadRecordError{Source: merge.SystemB, Reason: "lastUpdated is not RFC 3339"}
	errUnauth      = fmt.Errorf("401: %w", merge.ErrUnauthorized)
	errInternal    = errors.New("nil map") // wraps no kind
)

func TestFailuresCarryTheirKind(t *testing.T) {
	tests := []struct {
		name string
		aErr error
		want merge.ErrorKind
	}{
		{"unavailable", errUnavailable, merge.ErrUnavailable},
		{"bad data", errBadData, merge.ErrBadData},
		{"unauthorized", errUnauth, merge.ErrUnauthorized},
		{"no kind: internal", errInternal, ""},
		{"a context deadline: unavailable", context.DeadlineExceeded, merge.ErrUnavailable},
		{"a cancellation: unavailable", context.Canceled, merge.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &unified.Reader{A: &fakeA{acquireErr: tt.aErr}, B: &fakeB{}, Now: func() time.Time { return readAt }}
			got := r.Read(context.Background(), "k")
			f := got.Failures()
			if len(f) != 1 || f[0].System != merge.SystemA || f[0].Kind != tt.want || !errors.Is(f[0].Err, tt.aErr) {
				t.Errorf("failures = %+v, want one of System A, kind %q, wrapping %v", f, tt.want, tt.aErr)
			}
		})
	}
}

func TestReadProblem(t *testing.T) {
	r := rec("k")
	tests := []struct {
		name       string
		read       unified.Read
		status     int
		detail     string
		degraded   []string
		reasons    map[string]string
		retryAfter time.Duration
	}{
		{"B down, not in A", unified.Read{BErr: errUnavailable}, 503,
			"the customer is not in System A and System B could not be asked; try again later",
			[]string{"systemB"}, map[string]string{"systemB": "unavailable"}, 30 * time.Second},
		{"B down, in A", unified.Read{A: r, BErr: errUnavailable}, 503,
			"the customer is in System A and System B could not be asked; try again later",
			[]string{"systemB"}, map[string]string{"systemB": "unavailable"}, 30 * time.Second},
		{"A down, not in B", unified.Read{AErr: errUnavailable}, 503,
			"System A could not be asked and the customer is not in System B; try again later",
			[]string{"systemA"}, map[string]string{"systemA": "unavailable"}, 30 * time.Second},
		{"both down", unified.Read{AErr: errUnavailable, BErr: errUnavailable}, 503,
			"System A and System B could not be asked; try again later",
			[]string{"systemA", "systemB"}, map[string]string{"systemA": "unavailable", "systemB": "unavailable"}, 30 * time.Second},
		{"B bad data, not in A", unified.Read{BErr: errBadData}, 502,
			"the customer is not in System A and System B answered with data that breaks its contract",
			[]string{"systemB"}, map[string]string{"systemB": "badData"}, 0},
		{"A bad data, B down: 503 decides", unified.Read{AErr: errBadData, BErr: errUnavailable}, 503,
			"System A answered with data that breaks its contract and System B could not be asked; try again later",
			[]string{"systemA", "systemB"}, map[string]string{"systemA": "badData", "systemB": "unavailable"}, 30 * time.Second},
		{"B refused the credentials", unified.Read{A: r, BErr: errUnauth}, 502,
			"the customer is in System A and System B refused this service's credentials",
			[]string{"systemB"}, map[string]string{"systemB": "unauthorized"}, 0},
		{"B internal", unified.Read{BErr: errInternal}, 500,
			"the customer is not in System A and System B failed unexpectedly",
			[]string{"systemB"}, map[string]string{"systemB": "internal"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.read.Problem("")
			if p == nil {
				t.Fatal("no problem for a read with a failure")
			}
			if p.Status != tt.status || p.Detail != tt.detail || p.RetryAfter != tt.retryAfter {
				t.Errorf("problem %d %q retry %v, want %d %q %v", p.Status, p.Detail, p.RetryAfter, tt.status, tt.detail, tt.retryAfter)
			}
			if !slices.Equal(p.Degraded, tt.degraded) || fmt.Sprint(p.Reasons) != fmt.Sprint(tt.reasons) {
				t.Errorf("degraded %v reasons %v, want %v %v", p.Degraded, p.Reasons, tt.degraded, tt.reasons)
			}
			if got := tt.read.Reasons(); fmt.Sprint(got) != fmt.Sprint(tt.reasons) {
				t.Errorf("Reasons() = %v, want %v", got, tt.reasons)
			}
		})
	}
	t.Run("no failure, no problem", func(t *testing.T) {
		for _, rd := range []unified.Read{{}, {A: r}, {A: r, B: r}} {
			if p := rd.Problem("prefix: "); p != nil || rd.Reasons() != nil {
				t.Errorf("read %+v: problem %+v reasons %v", rd, p, rd.Reasons())
			}
		}
	})
	t.Run("the prefix leads the detail", func(t *testing.T) {
		p := (&unified.Read{A: r, BErr: errUnavailable}).Problem("conflict detection needs both systems: ")
		if !strings.HasPrefix(p.Detail, "conflict detection needs both systems: the customer is in System A") {
			t.Errorf("detail = %q", p.Detail)
		}
	})
}

func TestLogFailures(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	rd := unified.Read{AErr: errUnavailable, BErr: errBadData}
	rd.LogFailures(context.Background(), log)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one warning per failed system, got:\n%s", buf.String())
	}
	for i, want := range []string{
		`"level":"WARN","msg":"system unavailable","system":"systemA","kind":"unavailable"`,
		`"level":"WARN","msg":"system degraded","system":"systemB","kind":"badData"`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %s, want %s", i, lines[i], want)
		}
	}
}
