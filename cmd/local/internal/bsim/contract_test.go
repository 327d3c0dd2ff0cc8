package bsim

import (
	"context"
	"errors"
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
