package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
)

func newHandler(t *testing.T, sys *testkit.Systems) (*Handler, *bytes.Buffer, *testkit.Metrics) {
	t.Helper()
	var logs bytes.Buffer
	m := testkit.NewMetrics()
	return &Handler{
		Reader:    sys.Reader(),
		Log:       slog.New(slog.NewJSONHandler(&logs, nil)),
		Metrics:   m,
		EmailAttr: func(string) slog.Attr { return slog.String("emailHash", "h") },
		Now:       func() time.Time { return testkit.ReadAt },
	}, &logs, m
}

func decode(t *testing.T, body string) Response {
	t.Helper()
	var r Response
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return r
}

func TestHandleFixtures(t *testing.T) {
	want := map[string]struct {
		status int
		check  func(t *testing.T, r Response)
	}{
		"sync-conflicts.json": {200, func(t *testing.T, r Response) {
			res := r.Results[0]
			if res.InSync || len(res.Conflicts) != 2 {
				t.Fatalf("want 2 conflicts (phone, tier), got inSync=%v %+v", res.InSync, res.Conflicts)
			}
			c := res.Conflicts[0]
			if c.Field != "phone" || c.Kind != merge.Mismatch || c.NewerSource != merge.SystemB ||
				c.SystemA.Value != demodata.ShowcaseConflictPhoneA || c.SystemB.Value != demodata.ShowcaseConflictPhoneB ||
				c.SystemA.LastUpdated == nil || c.SystemB.LastUpdated == nil || !c.SystemB.LastUpdated.After(*c.SystemA.LastUpdated) {
				t.Errorf("phone conflict = %+v", c)
			}
		}},
		"sync-in-sync.json": {200, func(t *testing.T, r Response) {
			res := r.Results[0]
			if !res.InSync || len(res.Conflicts) != 0 || len(res.PresentIn) != 2 {
				t.Errorf("in-sync customer: %+v", res)
			}
		}},
		"sync-batch.json": {200, func(t *testing.T, r Response) {
			got := map[string]Result{}
			for _, res := range r.Results {
				got[merge.Key(res.Email)] = res
			}
			if len(r.Results) != 6 {
				t.Fatalf("want 6 results, got %d", len(r.Results))
			}
			for email, wantSync := range map[string]bool{
				demodata.ShowcaseInSync: true, demodata.ShowcaseConflict: false,
				demodata.ShowcaseOnlyInSystemA: false, demodata.ShowcaseOnlyInSystemB: false,
				demodata.ShowcaseNonASCII: true, demodata.ShowcaseCosmetic: true,
			} {
				if res := got[merge.Key(email)]; res.InSync != wantSync {
					t.Errorf("%s: inSync = %v, want %v (%+v)", email, res.InSync, wantSync, res)
				}
			}
			if p := got[merge.Key(demodata.ShowcaseOnlyInSystemA)].PresentIn; len(p) != 1 || p[0] != merge.SystemA {
				t.Errorf("only-in-A presentIn = %v", p)
			}
		}},
		"sync-not-found.json": {200, func(t *testing.T, r Response) {
			if len(r.Results) != 2 || r.Partial || len(r.Degraded) != 0 {
				t.Fatalf("want two answered results, not partial: %+v", r)
			}
			missing, found := r.Results[0], r.Results[1]
			if missing.Status != StatusNotFound || len(missing.PresentIn) != 0 || len(missing.Conflicts) != 0 || missing.Problem != nil {
				t.Errorf("a customer in neither system: %+v", missing)
			}
			if found.Status != StatusInSync || !found.InSync {
				t.Errorf("the in-sync customer beside it: %+v", found)
			}
		}},
		"sync-bad-body.json":      {400, nil},
		"sync-unknown-field.json": {400, nil},
	}
	sys := testkit.NewSystems(t, 20)
	for _, name := range testkit.Events(t, "sync-") {
		w, ok := want[name]
		if !ok {
			t.Errorf("events/%s has no expectation in this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			h, logs, _ := newHandler(t, sys)
			_, resp := testkit.ServeFixture(t, name, w.status, h.Handle)
			if w.check != nil {
				w.check(t, decode(t, resp.Body))
			}
			if strings.Contains(logs.String(), "@") {
				t.Errorf("logs contain an email: %s", logs.String())
			}
		})
	}
}

func TestHandleHostileBodies(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("c%d@example.com", i)
	}
	manyJSON, _ := json.Marshal(map[string]any{"emails": many})
	huge := make([]string, 10000)
	for i := range huge {
		huge[i] = "x"
	}
	hugeJSON, _ := json.Marshal(map[string]any{"emails": huge})
	tests := []struct {
		name   string
		body   string
		b64    bool
		status int
		reason string
	}{
		{"malformed JSON", `{"email": `, false, 400, "not valid JSON"},
		{"not an object", `["a@example.com"]`, false, 400, "wrong type"},
		{"empty body", ``, false, 400, "empty"},
		{"both email and emails", `{"email":"a@example.com","emails":["b@example.com"]}`, false, 400, "not both"},
		{"neither", `{}`, false, 400, `needs "email"`},
		{"empty list", `{"emails":[]}`, false, 400, "empty"},
		{"101 emails", string(manyJSON), false, 400, "at most 100"},
		{"10,000 emails", string(hugeJSON), false, 400, "at most 100"},
		{"body over 64 KiB", `{"email":"` + strings.Repeat("a", 70<<10) + `@example.com"}`, false, 413, "larger than"},
		{"duplicate keys", `{"email":"a@example.com","email":"b@example.com"}`, false, 400, "repeats the key"},
		{"deep nesting", strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40), false, 400, "nests deeper"},
		{"trailing data", `{"email":"a@example.com"} {}`, false, 400, "after the JSON value"},
		{"invalid email in list", `{"emails":["a@example.com","nope"]}`, false, 400, `"emails"[1]`},
		{"SQL-looking email", `{"email":"' OR 1=1 --@example.com"}`, false, 400, "invalid email"},
		{"NUL byte", `{"email":"a\u0000b@example.com"}`, false, 400, "invalid email"},
		{"invalid base64", `%%%`, true, 400, "base64"},
		{"wrong type", `{"email": 42}`, false, 400, "wrong type"},
	}
	sys := testkit.NewSystems(t, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _ := newHandler(t, sys)
			before := sys.Calls.Load()
			resp, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{Body: tt.body, IsBase64Encoded: tt.b64})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
			}
			if resp.Headers["Content-Type"] != "application/problem+json" {
				t.Errorf("Content-Type = %q", resp.Headers["Content-Type"])
			}
			var p struct{ Detail string }
			if err := json.Unmarshal([]byte(resp.Body), &p); err != nil || !strings.Contains(p.Detail, tt.reason) {
				t.Errorf("detail %q does not give the reason %q (%v)", p.Detail, tt.reason, err)
			}
			if sys.Calls.Load() != before {
				t.Errorf("a rejected request called System B")
			}
		})
	}
}

func TestHandleBase64Body(t *testing.T) {
	h, _, _ := newHandler(t, testkit.NewSystems(t, 0))
	body := base64.StdEncoding.EncodeToString([]byte(`{"email":"` + demodata.ShowcaseInSync + `"}`))
	resp, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{Body: body, IsBase64Encoded: true})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d err %v: %s", resp.StatusCode, err, resp.Body)
	}
	if r := decode(t, resp.Body); !r.Results[0].InSync {
		t.Errorf("result = %+v", r.Results[0])
	}
}

func TestHandleDuplicatesCollapse(t *testing.T) {
	h, _, _ := newHandler(t, testkit.NewSystems(t, 0))
	body := `{"emails":["Grace.Hopper@example.com"," grace.hopper@EXAMPLE.com ","ada.lovelace@example.com"]}`
	resp, _ := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{Body: body})
	if r := decode(t, resp.Body); len(r.Results) != 2 {
		t.Errorf("want 2 distinct results, got %d", len(r.Results))
	}
}

func TestHandleUnavailable(t *testing.T) {
	down := fmt.Errorf("connection refused: %w", merge.ErrUnavailable)
	tests := []struct {
		name       string
		aErr, bErr error
		names      string
		degraded   []string
	}{
		{"System B down", nil, down, "unavailable: System B", []string{"systemB"}},
		{"System A down", down, nil, "unavailable: System A", []string{"systemA"}},
		{"both down", down, down, "unavailable: System A and System B", []string{"systemA", "systemB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := testkit.NewSystems(t, 0)
			sys.AErr, sys.BErr = tt.aErr, tt.bErr
			h, logs, m := newHandler(t, sys)
			resp, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{
				Body: `{"emails":["` + demodata.ShowcaseConflict + `","` + demodata.ShowcaseInSync + `"]}`,
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 503 || !strings.Contains(resp.Body, tt.names) {
				t.Fatalf("status %d body %s, want 503 naming %q", resp.StatusCode, resp.Body, tt.names)
			}
			testkit.CheckHeaders(t, resp)
			testkit.ProblemDetail(t, resp)
			var p struct{ Degraded []string }
			if err := json.Unmarshal([]byte(resp.Body), &p); err != nil || !slices.Equal(p.Degraded, tt.degraded) {
				t.Errorf("degraded = %v (%v), want %v", p.Degraded, err, tt.degraded)
			}
			if resp.Headers["Retry-After"] != "30" {
				t.Errorf("Retry-After = %q, want 30", resp.Headers["Retry-After"])
			}
			if strings.Contains(logs.String(), "@") {
				t.Errorf("email leaked: logs %s", logs.String())
			}
			if m.Counts[emf.SyncPartialResults] != 1 {
				t.Errorf("partial results metric = %d", m.Counts[emf.SyncPartialResults])
			}
		})
	}
}
