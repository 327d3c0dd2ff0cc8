package bsim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
)

// TestSystemBClientContract runs the real System B client against the
// simulator: both sides of the API v1 contract agree.
func TestSystemBClientContract(t *testing.T) {
	recs := append(manyCustomers(50), customer("JÖRG@Example.com", "Jörg"))
	sim, srv := newTestServer(t, Config{}, recs...)
	newClient := func(token string) *systemb.Client {
		t.Helper()
		c, err := systemb.New(systemb.Config{
			BaseURL: srv.URL,
			Token:   systemb.StaticToken(token),
			Sleep:   func(context.Context, time.Duration) error { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	c := newClient(testToken)

	t.Run("get", func(t *testing.T) {
		r, err := c.Get(ctx, "jörg@example.com")
		if err != nil || r.Get(merge.FieldFirstName) != "Jörg" || !r.LastUpdated.Equal(testTime) {
			t.Fatalf("Get = %+v, %v", r, err)
		}
		if _, err := c.Get(ctx, "nobody@example.com"); !errors.Is(err, systemb.ErrNotFound) {
			t.Errorf("Get missing = %v, want ErrNotFound", err)
		}
		if _, err := newClient("wrong").Get(ctx, "jörg@example.com"); !errors.Is(err, systemb.ErrUnauthorized) {
			t.Errorf("Get with a wrong token = %v, want ErrUnauthorized", err)
		}
	})
	t.Run("list", func(t *testing.T) {
		p := c.List(ctx, 7)
		defer p.Close()
		var keys []string
		for p.Next() {
			keys = append(keys, p.Record().Key())
		}
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		if len(keys) != len(recs) || p.Pages() != 8 {
			t.Fatalf("listed %d customers in %d pages, want %d in 8", len(keys), p.Pages(), len(recs))
		}
		for i := 1; i < len(keys); i++ {
			if keys[i-1] >= keys[i] {
				t.Fatalf("keys %d and %d out of order", i-1, i)
			}
		}
	})
	t.Run("retries 503 twice then succeeds", func(t *testing.T) {
		if err := sim.SetFaults(Faults{FailNext: 2}); err != nil {
			t.Fatal(err)
		}
		sim.ResetStats()
		if _, err := c.Get(ctx, "jörg@example.com"); err != nil {
			t.Fatalf("Get = %v", err)
		}
		if st := sim.Stats(); st.Requests != 3 || st.Injected != 2 {
			t.Errorf("stats %+v, want 3 requests of which 2 injected", st)
		}
	})
}

// TestSystemBClientBadItemAndRotation checks the two faults the fault
// matrix drives against the real client: one bad item among good ones,
// and a token rotation.
func TestSystemBClientBadItemAndRotation(t *testing.T) {
	recs := manyCustomers(20)
	sim, srv := newTestServer(t, Config{}, recs...)
	bad := recs[9].Email()
	tok := testToken
	c, err := systemb.New(systemb.Config{
		BaseURL:      srv.URL,
		Token:        func(context.Context) (string, error) { return tok, nil },
		RefreshToken: func(context.Context) (string, error) { tok = "rotated-token"; return tok, nil },
		Sleep:        func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Run("bad item", func(t *testing.T) {
		if err := sim.SetFaults(Faults{BadItem: strings.ToUpper(bad)}); err != nil {
			t.Fatal(err)
		}
		defer sim.SetFaults(Faults{}) //nolint:errcheck // valid
		p := c.List(ctx, 7)
		defer p.Close()
		var good, bads int
		for r, err := range p.All() {
			var be *merge.BadRecordError
			switch {
			case err == nil:
				good++
				if r.Key() == merge.Key(bad) {
					t.Errorf("the bad item was served intact")
				}
			case errors.As(err, &be):
				bads++
				if be.Position != "page 2 item 3" || !strings.Contains(be.Reason, "lastUpdated") {
					t.Errorf("bad record %v, want page 2 item 3, lastUpdated", be)
				}
			default:
				t.Fatal(err)
			}
		}
		if good != len(recs)-1 || bads != 1 {
			t.Errorf("%d good, %d bad; want %d, 1", good, bads, len(recs)-1)
		}
		if _, err := c.Get(ctx, bad); !errors.Is(err, merge.ErrBadData) {
			t.Errorf("Get of the bad item = %v, want bad data", err)
		}
		if _, err := c.Get(ctx, recs[10].Email()); err != nil {
			t.Errorf("Get of another customer = %v", err)
		}
	})
	t.Run("rotation", func(t *testing.T) {
		if err := sim.SetToken(""); err == nil {
			t.Error("SetToken accepted an empty token")
		}
		if err := sim.SetToken("rotated-token"); err != nil {
			t.Fatal(err)
		}
		sim.ResetStats()
		if _, err := c.Get(ctx, recs[0].Email()); err != nil {
			t.Fatalf("Get after the rotation = %v", err)
		}
		if st := sim.Stats(); st.Requests != 2 || st.Unauthorized != 1 || sim.Token() != "rotated-token" {
			t.Errorf("stats %+v, token %q; want 2 requests, 1 refused", st, sim.Token())
		}
	})
}
