package changes_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/merge"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	t0       = time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC)
	exported = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	now      = time.Date(2026, 12, 1, 2, 5, 0, 123e6, time.UTC)
)

func record(t *testing.T, email, phone string, lastUpdated time.Time) *merge.Record {
	t.Helper()
	r := &merge.Record{LastUpdated: lastUpdated}
	r.Values[merge.FieldEmail] = email
	r.Values[merge.FieldFirstName] = "Zoë"
	r.Values[merge.FieldLastName] = "Ångström"
	r.Values[merge.FieldPhone] = phone
	r.Values[merge.FieldCity] = "Malmö"
	r.Values[merge.FieldCountry] = "SE"
	r.Values[merge.FieldMarketingOptIn] = "true"
	r.Values[merge.FieldLoyaltyTier] = "gold"
	return r
}

func headers(ev changes.Event) []changes.Header {
	var hs []changes.Header
	for _, h := range ev.Headers() {
		hs = append(hs, changes.Header{Key: h[0], Value: []byte(h[1])})
	}
	return hs
}

// TestGolden pins the envelope of each operation byte for byte and reads
// it back (go test -update rewrites the files).
func TestGolden(t *testing.T) {
	before := record(t, "Zoe.Angstrom@Example.com", "+46 8 123 45 67", t0)
	after := record(t, "Zoe.Angstrom@Example.com", "+46 8 765 43 21", t0.Add(time.Hour))
	tests := []struct {
		name          string
		src           merge.Source
		before, after *merge.Record
		version       string
		exportedAt    time.Time
		wantOp        changes.Op
	}{
		{"create-system-a", merge.SystemA, nil, after, "3HL4kqtJlcpXroDTDmJ", exported, changes.OpCreate},
		{"update-system-a", merge.SystemA, before, after, "3HL4kqtJlcpXroDTDmJ", exported, changes.OpUpdate},
		{"delete-system-a", merge.SystemA, before, nil, "3HL4kqtJlcpXroDTDmJ", exported, changes.OpDelete},
		{"update-system-b", merge.SystemB, before, after, "webhook:d-41", time.Time{}, changes.OpUpdate},
		{"upsert-system-b", merge.SystemB, nil, after, "poll:2026-11-30T09:00:00Z", time.Time{}, changes.OpUpdate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newEvent := changes.New
			if tt.before == nil && tt.wantOp == changes.OpUpdate {
				newEvent = func(src merge.Source, _, after *merge.Record, version string, exportedAt, now time.Time) (changes.Event, error) {
					return changes.NewUpsert(src, after, version, exportedAt, now)
				}
			}
			ev, err := newEvent(tt.src, tt.before, tt.after, tt.version, tt.exportedAt, now)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Op != tt.wantOp || ev.Key != "zoe.angstrom@example.com" || len(ev.ID) != 32 {
				t.Errorf("op %q key %q id %q, want %q, the join key, 32 hex digits", ev.Op, ev.Key, ev.ID, tt.wantOp)
			}
			got := ev.Marshal()
			path := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got)+"\n" != string(want) {
				t.Errorf("envelope differs from %s:\n got %s\nwant %s", path, got, want)
			}
			back, err := changes.Decode([]byte(ev.Key), got, headers(ev))
			if err != nil {
				t.Fatalf("Decode of its own envelope: %v", err)
			}
			if back.ID != ev.ID || back.Op != ev.Op || !back.TS.Equal(ev.TS) || back.Source.Version != ev.Source.Version {
				t.Errorf("round trip: %+v, want %+v", back, ev)
			}
			if (back.After == nil) != (ev.After == nil) || ev.After != nil && *back.After != *ev.After {
				t.Errorf("round trip after: %+v, want %+v", back.After, ev.After)
			}
		})
	}
}

// TestID: the id depends on the change, not on how or when it was captured.
func TestID(t *testing.T) {
	a := record(t, "ada@example.com", "+44 20 7946 0000", t0)
	b := record(t, "ada@example.com", "+44 20 7946 0999", t0.Add(time.Minute))
	base, _ := changes.New(merge.SystemB, a, b, "poll:2026-11-30T09:00:00Z", time.Time{}, now)
	tests := []struct {
		name string
		ev   func() changes.Event
		same bool
	}{
		{"another capture path and time", func() changes.Event {
			ev, _ := changes.New(merge.SystemB, a, b, "webhook:x", time.Time{}, now.Add(time.Hour))
			return ev
		}, true},
		{"an unknown before (the poller's fallback)", func() changes.Event {
			ev, _ := changes.New(merge.SystemB, a, b, "poll", time.Time{}, now)
			return ev
		}, true},
		{"an upsert of the same record", func() changes.Event {
			ev, _ := changes.NewUpsert(merge.SystemB, b, "webhook:x", time.Time{}, now)
			return ev
		}, true},
		{"a create of the same record", func() changes.Event {
			ev, _ := changes.New(merge.SystemB, nil, b, "webhook:x", time.Time{}, now)
			return ev
		}, false},
		{"other values", func() changes.Event {
			c := *b
			c.Values[merge.FieldCity] = "Leeds"
			ev, _ := changes.New(merge.SystemB, a, &c, "poll", time.Time{}, now)
			return ev
		}, false},
		{"another lastUpdated", func() changes.Event {
			c := *b
			c.LastUpdated = c.LastUpdated.Add(time.Nanosecond)
			ev, _ := changes.New(merge.SystemB, a, &c, "poll", time.Time{}, now)
			return ev
		}, false},
		{"the other system", func() changes.Event {
			ev, _ := changes.New(merge.SystemA, a, b, "poll", exported, now)
			return ev
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ev().ID == base.ID; got != tt.same {
				t.Errorf("same id = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	a := record(t, "ada@example.com", "", t0)
	other := record(t, "grace@example.com", "", t0)
	bad := record(t, "not an email", "", t0)
	tests := []struct {
		name          string
		src           merge.Source
		before, after *merge.Record
	}{
		{"neither side", merge.SystemA, nil, nil},
		{"two customers", merge.SystemA, a, other},
		{"bad email", merge.SystemB, nil, bad},
		{"unknown system", merge.Source("systemC"), nil, a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := changes.New(tt.src, tt.before, tt.after, "v", time.Time{}, now)
			if !errors.Is(err, merge.ErrInvalid) {
				t.Errorf("err = %v, want kind invalid", err)
			}
		})
	}
	t.Run("upsert of nothing", func(t *testing.T) {
		if _, err := changes.NewUpsert(merge.SystemB, nil, "v", time.Time{}, now); !errors.Is(err, merge.ErrInvalid) {
			t.Errorf("err = %v, want kind invalid", err)
		}
	})
}

// TestDecodeRefuses: a record that breaks the contract is bad data (a
// poison record for the consumer), and the error quotes no value.
func TestDecodeRefuses(t *testing.T) {
	ev, err := changes.New(merge.SystemA, nil, record(t, "ada@example.com", "+44 20 7946 0000", t0), "v1", exported, now)
	if err != nil {
		t.Fatal(err)
	}
	good := string(ev.Marshal())
	hs := headers(ev)
	tests := []struct {
		name    string
		key     string
		value   string
		headers []changes.Header
		want    string
	}{
		{"no schema header", ev.Key, good, hs[:1], "unknown schema version"},
		{"unknown schema", ev.Key, good, []changes.Header{hs[0], {Key: changes.HeaderSchemaVersion, Value: []byte("2")}}, "unknown schema version"},
		{"not JSON", ev.Key, "{", hs, "not an envelope"},
		{"trailing data", ev.Key, good + "{}", hs, "data after"},
		{"wrong op", ev.Key, strings.Replace(good, `"op":"c"`, `"op":"d"`, 1), hs, `"op"`},
		{"upsert with the id of a create", ev.Key, strings.Replace(good, `"op":"c"`, `"op":"u"`, 1), hs, "header event-id"},
		{"other key", "grace@example.com", good, hs, "record key"},
		{"tampered value", ev.Key, strings.Replace(good, "+44 20 7946 0000", "+44 20 7946 0001", 1), hs, "header event-id"},
		{"no source", ev.Key, strings.Replace(good, `"source":`, `"src":`, 1), hs, "missing"},
		{"bad lastUpdated", ev.Key, strings.Replace(good, `"lastUpdated":"2026-11-30T09:15:00Z"}`, `"lastUpdated":"yesterday"}`, 1), hs, `"after"`},
		{"field of the wrong type", ev.Key, strings.Replace(good, `"marketingOptIn":true`, `"marketingOptIn":7`, 1), hs, `marketingOptIn`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := changes.Decode([]byte(tt.key), []byte(tt.value), tt.headers)
			if !errors.Is(err, merge.ErrBadData) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want bad data mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "ada@") || strings.Contains(err.Error(), "7946") {
				t.Errorf("the error quotes customer data: %v", err)
			}
		})
	}
}
