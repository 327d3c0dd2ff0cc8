package dedup_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/dedup"
	"github.com/acme/unified-customer-service/shared/merge"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// testStore runs the Store contract against st, whose TTL clock is c.
func testStore(t *testing.T, st dedup.Store, c *clock) {
	t.Helper()
	ctx := context.Background()
	t.Run("seen honours the TTL", func(t *testing.T) {
		if seen, err := st.Seen(ctx, "id-1"); err != nil || seen {
			t.Fatalf("Seen before Mark = %v, %v", seen, err)
		}
		if err := st.Record(ctx, time.Hour, dedup.Entry{ID: "id-1"}); err != nil {
			t.Fatal(err)
		}
		if seen, err := st.Seen(ctx, "id-1"); err != nil || !seen {
			t.Fatalf("Seen after Mark = %v, %v", seen, err)
		}
		c.now = c.now.Add(59 * time.Minute)
		if seen, _ := st.Seen(ctx, "id-1"); !seen {
			t.Errorf("not seen before the TTL ran out")
		}
		c.now = c.now.Add(time.Minute)
		if seen, _ := st.Seen(ctx, "id-1"); seen {
			t.Errorf("seen after the TTL ran out")
		}
	})
	t.Run("applied only moves forward", func(t *testing.T) {
		if got, err := st.Applied(ctx, "ann@example.com", merge.SystemA); err != nil || !got.IsZero() {
			t.Fatalf("Applied of nothing = %v, %v", got, err)
		}
		steps := []struct {
			set, want time.Time
		}{
			{t0, t0},
			{t0.Add(-time.Second), t0},
			{t0, t0},
			{t0.Add(time.Nanosecond * 1500), t0.Add(time.Nanosecond * 1500)},
		}
		for _, s := range steps {
			e := dedup.Entry{ID: "id-" + s.set.String(), Key: "ann@example.com", System: merge.SystemA, LastUpdated: s.set}
			if err := st.Record(ctx, time.Hour, e); err != nil {
				t.Fatalf("Record(%v): %v", s.set, err)
			}
			got, err := st.Applied(ctx, "ann@example.com", merge.SystemA)
			if err != nil || !got.Equal(s.want) {
				t.Errorf("after Record(%v): Applied = %v, %v; want %v", s.set, got, err, s.want)
			}
		}
		if got, _ := st.Applied(ctx, "ann@example.com", merge.SystemB); !got.IsZero() {
			t.Errorf("System B's watermark = %v, want none (kept per system)", got)
		}
	})
	t.Run("one Record of several entries", func(t *testing.T) {
		err := st.Record(ctx, time.Hour,
			dedup.Entry{ID: "b-1", Key: "bob@example.com", System: merge.SystemB, LastUpdated: t0},
			dedup.Entry{ID: "b-2", Key: "bob@example.com", System: merge.SystemB, LastUpdated: t0.Add(-time.Minute)},
			dedup.Entry{ID: "b-3"},
		)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"b-1", "b-2", "b-3"} {
			if seen, err := st.Seen(ctx, id); err != nil || !seen {
				t.Errorf("Seen(%s) = %v, %v", id, seen, err)
			}
		}
		if got, _ := st.Applied(ctx, "bob@example.com", merge.SystemB); !got.Equal(t0) {
			t.Errorf("watermark = %v, want %v (the newer of the two)", got, t0)
		}
	})
}

func TestFile(t *testing.T) {
	c := &clock{now: t0}
	path := filepath.Join(t.TempDir(), "sub", "dedup.db")
	st, err := dedup.OpenFile(path, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, st, c)
	if err := st.Record(context.Background(), time.Hour, dedup.Entry{ID: "kept"}, dedup.Entry{ID: "kept-2"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	t.Run("reopened", func(t *testing.T) {
		st, err := dedup.OpenFile(path, c.Now)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if seen, err := st.Seen(context.Background(), "kept"); err != nil || !seen {
			t.Errorf("Seen after reopening = %v, %v", seen, err)
		}
	})
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in   string
		want dedup.Location
		ok   bool
	}{
		{"dynamodb://ucs-dedup", dedup.Location{Scheme: "dynamodb", Table: "ucs-dedup"}, true},
		{"file:///var/tmp/dedup.db", dedup.Location{Scheme: "file", Path: "/var/tmp/dedup.db"}, true},
		{"", dedup.Location{}, false},
		{"file://relative/x.db", dedup.Location{}, false},
		{"file:///dir/", dedup.Location{}, false},
		{"dynamodb://", dedup.Location{}, false},
		{"dynamodb://t/extra", dedup.Location{}, false},
		{"s3://b/k", dedup.Location{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := dedup.ParseLocation(tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("ParseLocation(%q) = %+v, %v", tt.in, got, err)
			}
			if err != nil && !errors.Is(err, merge.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
}
