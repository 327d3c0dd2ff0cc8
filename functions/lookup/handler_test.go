package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
)

type fixture struct {
	status int
	check  func(t *testing.T, body decoded)
}

// decoded is a 200 body as a client reads it.
type decoded struct {
	Response
	raw struct {
		Customer map[string]any `json:"customer"`
	}
}

func decode(t *testing.T, body string) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal([]byte(body), &d.Response); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(body), &d.raw); err != nil {
		t.Fatal(err)
	}
	return d
}

func newHandler(t *testing.T, sys *testkit.Systems) (*Handler, *bytes.Buffer, *testkit.Metrics) {
	t.Helper()
	var logs bytes.Buffer
	m := testkit.NewMetrics()
	return &Handler{
		Reader:    sys.Reader(),
		Rules:     merge.DefaultRules(),
		Log:       slog.New(slog.NewJSONHandler(&logs, nil)),
		Metrics:   m,
		EmailAttr: func(string) slog.Attr { return slog.String("emailHash", "h") },
		Now:       func() time.Time { return testkit.ReadAt },
	}, &logs, m
}

func conflict(body decoded, field string) *Conflict {
	for i := range body.Conflicts {
		if body.Conflicts[i].Field == field {
			return &body.Conflicts[i]
		}
	}
	return nil
}

func TestHandleFixtures(t *testing.T) {
	want := map[string]fixture{
		"lookup-found.json": {200, func(t *testing.T, b decoded) {
			if len(b.Conflicts) != 0 || b.Partial || len(b.Degraded) != 0 {
				t.Errorf("in-sync customer: conflicts %v partial %v degraded %v", b.Conflicts, b.Partial, b.Degraded)
			}
			if b.Email != demodata.ShowcaseInSync {
				t.Errorf("email = %q", b.Email)
			}
		}},
		"lookup-conflict.json": {200, func(t *testing.T, b decoded) {
			phone := conflict(b, "phone")
			if phone == nil || phone.NewerSource != merge.SystemB || phone.ResolvedFrom != merge.SystemB || phone.Rule != merge.RuleNewest {
				t.Fatalf("phone conflict = %+v, want newer and resolved from systemB by newest", phone)
			}
			if phone.SystemA != demodata.ShowcaseConflictPhoneA || phone.SystemB != demodata.ShowcaseConflictPhoneB {
				t.Errorf("phone values = %v / %v", phone.SystemA, phone.SystemB)
			}
			tier := conflict(b, "loyaltyTier")
			if tier == nil || tier.ResolvedFrom != merge.SystemA || tier.Rule != merge.RuleSystemA {
				t.Errorf("loyaltyTier conflict = %+v, want resolved from systemA by rule systemA", tier)
			}
			if b.Sources["phone"] != merge.SystemB || b.Sources["loyaltyTier"] != merge.SystemA {
				t.Errorf("sources = %v", b.Sources)
			}
			if b.raw.Customer["phone"] != demodata.ShowcaseConflictPhoneB || b.raw.Customer["loyaltyTier"] != "gold" {
				t.Errorf("unified phone, tier = %v, %v; want System B's phone and System A's tier", b.raw.Customer["phone"], b.raw.Customer["loyaltyTier"])
			}
		}},
		"lookup-not-found.json":     {404, nil},
		"lookup-invalid-email.json": {400, nil},
		"lookup-non-ascii.json": {200, func(t *testing.T, b decoded) {
			if b.LastUpdated.SystemA == nil || b.LastUpdated.SystemB == nil {
				t.Errorf("the mixed-case non-ASCII email must match in both systems: %+v", b.LastUpdated)
			}
		}},
		"lookup-only-in-system-b.json": {200, func(t *testing.T, b decoded) {
			for path, src := range b.Sources {
				if src != merge.SystemB {
					t.Errorf("sources[%s] = %s, want systemB", path, src)
				}
			}
			if b.LastUpdated.SystemA != nil {
				t.Errorf("lastUpdated.systemA = %v, want null", b.LastUpdated.SystemA)
			}
		}},
	}
	sys := testkit.NewSystems(t, 50)
	names := testkit.Events(t, "lookup-")
	if len(names) == 0 {
		t.Fatal("no events/lookup-*.json fixtures")
	}
	for _, name := range names {
		w, ok := want[name]
		if !ok {
			t.Errorf("events/%s has no expectation in this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			h, logs, _ := newHandler(t, sys)
			req, resp := testkit.ServeFixture(t, name, w.status, h.Handle)
			if w.check != nil {
				w.check(t, decode(t, resp.Body))
			}
			if email := req.PathParameters["email"]; strings.Contains(strings.ToLower(logs.String()), strings.ToLower(email)) {
				t.Errorf("logs contain the email in clear: %s", logs.String())
			}
		})
	}
}

func TestHandleMetrics(t *testing.T) {
	h, _, m := newHandler(t, testkit.NewSystems(t, 0))
	_, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{
		PathParameters: map[string]string{"email": demodata.ShowcaseConflict},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Counts[emf.SyncConflicts] < 2 {
		t.Errorf("%s = %d, want the phone and tier conflicts", emf.SyncConflicts, m.Counts[emf.SyncConflicts])
	}
	lag := m.Values[emf.SyncLag]
	if want := testkit.ReadAt.Sub(testkit.ExportedAt).Seconds(); len(lag) != 1 || lag[0] != want {
		t.Errorf("%s = %v, want [%v]", emf.SyncLag, lag, want)
	}
}
