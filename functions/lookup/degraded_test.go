package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// TestLookupEveryAnswerCombination looks a customer up with each system
// found / not found / unavailable / answering bad data: 200 (partial when a
// system failed) when a system holds the customer, 404 only when both
// answered "not found", else the failure's status: 503 (with Retry-After)
// when a system could not be asked, 502 when the only answer is bad data.
func TestLookupEveryAnswerCombination(t *testing.T) {
	testkit.EachPair(t, func(t *testing.T, a, b testkit.Answer) {
		email := testkit.CustomerFor(a, b)
		h, logs, m := newHandler(t, testkit.NewSystemsAnswering(t, email, a, b))
		resp, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{
			PathParameters: map[string]string{"email": email},
		})
		if err != nil {
			t.Fatal(err)
		}
		testkit.CheckHeaders(t, resp)

		var wantDegraded []string
		wantReasons := map[string]string{}
		for sys, s := range map[string]testkit.Answer{"systemA": a, "systemB": b} {
			if s == testkit.Unavailable || s == testkit.BadData {
				wantDegraded = append(wantDegraded, sys)
				wantReasons[sys] = string(s)
			}
		}
		slices.Sort(wantDegraded)
		wantStatus := http.StatusOK
		switch {
		case a == testkit.Found || b == testkit.Found:
		case a == testkit.Unavailable || b == testkit.Unavailable:
			wantStatus = http.StatusServiceUnavailable
		case a == testkit.BadData || b == testkit.BadData:
			wantStatus = http.StatusBadGateway
		default:
			wantStatus = http.StatusNotFound
		}
		if resp.StatusCode != wantStatus {
			t.Fatalf("status = %d, want %d: %s", resp.StatusCode, wantStatus, resp.Body)
		}
		if wantRetry := wantStatus == http.StatusServiceUnavailable; (resp.Headers["Retry-After"] == "30") != wantRetry {
			t.Errorf("Retry-After = %q with status %d", resp.Headers["Retry-After"], wantStatus)
		}
		if n := m.Counts[emf.SyncPartialResults]; (n == 1) != (len(wantDegraded) > 0) {
			t.Errorf("%s = %d with degraded %v", emf.SyncPartialResults, n, wantDegraded)
		}
		if strings.Contains(logs.String(), email) {
			t.Errorf("logs contain the email in clear")
		}
		for _, sys := range wantDegraded {
			if !strings.Contains(logs.String(), `"system":"`+sys+`"`) {
				t.Errorf("no warning names %s: %s", sys, logs.String())
			}
		}

		var body struct {
			Partial  bool              `json:"partial"`
			Degraded []string          `json:"degraded"`
			Reasons  map[string]string `json:"reasons"`
			Detail   string            `json:"detail"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
			t.Fatal(err)
		}
		if wantStatus == http.StatusOK && body.Partial != (len(wantDegraded) > 0) {
			t.Errorf("partial = %v with degraded %v", body.Partial, wantDegraded)
		}
		if wantStatus != http.StatusOK {
			testkit.ProblemDetail(t, resp)
		}
		if !slices.Equal(body.Degraded, wantDegraded) && len(body.Degraded)+len(wantDegraded) > 0 {
			t.Errorf("degraded = %v, want %v", body.Degraded, wantDegraded)
		}
		if len(body.Reasons)+len(wantReasons) > 0 && fmt.Sprint(body.Reasons) != fmt.Sprint(wantReasons) {
			t.Errorf("reasons = %v, want %v", body.Reasons, wantReasons)
		}
	})
}

// TestLookupUnknownIsNotAbsent: a customer System A does not hold, with
// System B down, may well exist (created in System B today): 503 naming
// System B, not 404; the 404 is for both systems answering "not found".
func TestLookupUnknownIsNotAbsent(t *testing.T) {
	tests := []struct {
		name       string
		email      string
		a, b       testkit.Answer
		status     int
		detail     string
		degraded   []string
		retryAfter string
	}{
		{"only in B, B down: unknown", demodata.ShowcaseOnlyInSystemB, testkit.NotFound, testkit.Unavailable, 503,
			"the customer is not in System A and System B could not be asked; try again later", []string{"systemB"}, "30"},
		{"only in A, A down: unknown", demodata.ShowcaseOnlyInSystemA, testkit.Unavailable, testkit.NotFound, 503,
			"System A could not be asked and the customer is not in System B; try again later", []string{"systemA"}, "30"},
		{"in neither, B down: unknown", testkit.MissingEmail, testkit.NotFound, testkit.Unavailable, 503,
			"the customer is not in System A and System B could not be asked; try again later", []string{"systemB"}, "30"},
		{"both down", demodata.ShowcaseConflict, testkit.Unavailable, testkit.Unavailable, 503,
			"System A and System B could not be asked; try again later", []string{"systemA", "systemB"}, "30"},
		{"only B's bad data: bad gateway", demodata.ShowcaseOnlyInSystemB, testkit.NotFound, testkit.BadData, 502,
			"the customer is not in System A and System B answered with data that breaks its contract", []string{"systemB"}, ""},
		{"A down, B bad data: unavailable decides", demodata.ShowcaseConflict, testkit.Unavailable, testkit.BadData, 503,
			"System A could not be asked and System B answered with data that breaks its contract; try again later", []string{"systemA", "systemB"}, "30"},
		{"in neither, both answered: absent", testkit.MissingEmail, testkit.NotFound, testkit.NotFound, 404,
			"no customer with this email", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _ := newHandler(t, testkit.NewSystemsAnswering(t, tt.email, tt.a, tt.b))
			resp, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{
				PathParameters: map[string]string{"email": tt.email},
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
			}
			testkit.CheckHeaders(t, resp)
			if d := testkit.ProblemDetail(t, resp); d != tt.detail {
				t.Errorf("detail = %q, want %q", d, tt.detail)
			}
			var p struct{ Degraded []string }
			if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Degraded, tt.degraded) {
				t.Errorf("degraded = %v, want %v", p.Degraded, tt.degraded)
			}
			if got := resp.Headers["Retry-After"]; got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

// TestLookupPartialAnswer: with one system failed and the other holding the
// customer, the answer is that system's record, partial, with no conflicts
// (they cannot be known), and the reason per degraded system.
func TestLookupPartialAnswer(t *testing.T) {
	tests := []struct {
		name   string
		a, b   testkit.Answer
		up     merge.Source
		reason string
	}{
		{"System B down", testkit.Found, testkit.Unavailable, merge.SystemA, "unavailable"},
		{"System A down", testkit.Unavailable, testkit.Found, merge.SystemB, "unavailable"},
		{"System B bad data", testkit.Found, testkit.BadData, merge.SystemA, "badData"},
		{"System A bad data", testkit.BadData, testkit.Found, merge.SystemB, "badData"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := testkit.NewSystemsAnswering(t, demodata.ShowcaseConflict, tt.a, tt.b)
			h, _, _ := newHandler(t, sys)
			resp, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{
				PathParameters: map[string]string{"email": demodata.ShowcaseConflict},
			})
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d err %v: %s", resp.StatusCode, err, resp.Body)
			}
			var body Response
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
				t.Fatal(err)
			}
			down := merge.SystemA
			if tt.up == merge.SystemA {
				down = merge.SystemB
			}
			if !body.Partial || !slices.Equal(body.Degraded, []merge.Source{down}) || body.Reasons[string(down)] != tt.reason || len(body.Reasons) != 1 {
				t.Errorf("partial %v degraded %v reasons %v, want true [%s] {%s: %s}", body.Partial, body.Degraded, body.Reasons, down, down, tt.reason)
			}
			if len(body.Conflicts) != 0 {
				t.Errorf("a partial answer cannot know conflicts: %+v", body.Conflicts)
			}
			for path, src := range body.Sources {
				if src != tt.up {
					t.Errorf("sources[%s] = %s, want only %s", path, src, tt.up)
				}
			}
		})
	}
}
