package writeback_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/writeback"
)

var (
	tA = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // System A's lastUpdated
	tB = time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC) // System B's, older
)

// rec builds a record of ada@example.com with lastUpdated at and the
// given path=value pairs over a common base.
func rec(at time.Time, kv ...string) *merge.Record {
	var r merge.Record
	r.Values[merge.FieldEmail] = "Ada@Example.com"
	r.Values[merge.FieldFirstName] = "Ada"
	r.Values[merge.FieldCity] = "London"
	r.Values[merge.FieldMarketingOptIn] = "true"
	r.Values[merge.FieldLoyaltyTier] = "gold"
	for i := 0; i+1 < len(kv); i += 2 {
		id, ok := merge.FieldByPath(kv[i])
		if !ok {
			panic("unknown path " + kv[i])
		}
		r.Values[id] = kv[i+1]
	}
	r.LastUpdated = at
	return &r
}

// The sync worker's WriteBack interface (shared/syncworker), restated:
// *Writer must keep satisfying it.
var _ interface {
	Apply(ctx context.Context, key string, res merge.Result, ev changes.Event) error
} = (*writeback.Writer)(nil)

func fields(ids ...merge.FieldID) (s systemb.FieldSet) {
	for _, id := range ids {
		s[id] = true
	}
	return s
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    writeback.Mode
		wantErr bool
	}{
		{"", writeback.ModeOff, false},
		{"off", writeback.ModeOff, false},
		{" systemB ", writeback.ModeSystemB, false},
		{"systemb", "", true},
		{"systemA", "", true},
		{"on", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := writeback.ParseMode(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseMode(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestPlanOf is the table of what to write: A wins and differs -> PATCH
// those fields; B wins and differs -> a correction for A; no conflict,
// or a customer in one system only -> nothing.
func TestPlanOf(t *testing.T) {
	rules := merge.DefaultRules() // loyaltyTier=systemA,*=newest
	tests := []struct {
		name   string
		a, b   *merge.Record
		rules  merge.Rules
		toB    systemb.FieldSet
		toA    systemb.FieldSet
		ruleOf map[merge.FieldID]merge.Rule
	}{
		{"in sync", rec(tA), rec(tB), rules, fields(), fields(), nil},
		{"equivalent values are no conflict", rec(tA, "address.city", " LONDON "), rec(tB), rules, fields(), fields(), nil},
		{"A newer: its differing fields go to B", rec(tA, "firstName", "Ada", "phone", "+44 1"), rec(tB, "firstName", "Adeline"), rules,
			fields(merge.FieldFirstName, merge.FieldPhone), fields(), map[merge.FieldID]merge.Rule{merge.FieldFirstName: merge.RuleNewest, merge.FieldPhone: merge.RuleNewest}},
		{"B newer: its differing fields go to A", rec(tB, "firstName", "Ada"), rec(tA, "firstName", "Adeline", "phone", "+44 2"), rules,
			fields(), fields(merge.FieldFirstName, merge.FieldPhone), map[merge.FieldID]merge.Rule{merge.FieldFirstName: merge.RuleNewest}},
		{"B newer but loyaltyTier=systemA: tier to B, the rest to A", rec(tB, "loyaltyTier", "platinum"), rec(tA, "firstName", "Adeline"), rules,
			fields(merge.FieldLoyaltyTier), fields(merge.FieldFirstName), map[merge.FieldID]merge.Rule{merge.FieldLoyaltyTier: merge.RuleSystemA}},
		{"A's absent value never goes to B: B's fills it and A is corrected", rec(tA), rec(tB, "phone", "+44 3"), rules,
			fields(), fields(merge.FieldPhone), nil},
		{"only in System A: nothing", rec(tA), nil, rules, fields(), fields(), nil},
		{"only in System B: nothing", nil, rec(tB), rules, fields(), fields(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := merge.Merge(tt.a, tt.b, tt.rules)
			p := writeback.PlanOf(&res)
			if p.ToB != tt.toB || p.ToA != tt.toA {
				t.Errorf("PlanOf: ToB %v ToA %v; want %v %v", p.ToB, p.ToA, tt.toB, tt.toA)
			}
			for id, want := range tt.ruleOf {
				if p.RuleFor[id] != want {
					t.Errorf("RuleFor[%s] = %q, want %q", id.Path(), p.RuleFor[id], want)
				}
			}
		})
	}
}

// TestStillToWrite is the decision made again on the read that precedes
// each PATCH.
func TestStillToWrite(t *testing.T) {
	a := rec(tA, "firstName", "Ada", "loyaltyTier", "platinum")
	b := rec(tB, "firstName", "Adeline")
	res := merge.Merge(a, b, merge.DefaultRules())
	plan := writeback.PlanOf(&res)
	if plan.ToB != fields(merge.FieldFirstName, merge.FieldLoyaltyTier) {
		t.Fatalf("plan ToB = %v", plan.ToB)
	}
	later := tA.Add(time.Hour)
	tests := []struct {
		name string
		cur  *merge.Record
		want systemb.FieldSet
	}{
		{"B as merged: both", b, fields(merge.FieldFirstName, merge.FieldLoyaltyTier)},
		{"B holds both already (idempotent re-apply)", rec(later, "firstName", "ada", "loyaltyTier", "Platinum "), fields()},
		{"B holds one", rec(tB, "loyaltyTier", "platinum", "firstName", "Adeline"), fields(merge.FieldFirstName)},
		{"B changed, not newer than A: both", rec(tA, "firstName", "Addy"), fields(merge.FieldFirstName, merge.FieldLoyaltyTier)},
		{"B now newer than A: newest no longer picks A, systemA still does", rec(later, "firstName", "Addy"), fields(merge.FieldLoyaltyTier)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := writeback.StillToWrite(&res, &plan, tt.cur); got != tt.want {
				t.Errorf("StillToWrite = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCorrectionMessage(t *testing.T) {
	a := rec(tB, "firstName", "Ada")
	b := rec(tA, "firstName", " Adeline ", "marketingOptIn", "false", "address.city", "Paris")
	res := merge.Merge(a, b, merge.DefaultRules())
	plan := writeback.PlanOf(&res)
	decided := time.Date(2026, 3, 2, 8, 0, 0, 0, time.FixedZone("x", 3600))
	msg, err := writeback.CorrectionMessage("ada@example.com", &res, &plan, "0123456789abcdef0123456789abcdef", decided)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Topic != writeback.TopicCorrections || string(msg.Key) != "ada@example.com" {
		t.Errorf("topic %q key %q", msg.Topic, msg.Key)
	}
	const want = `{"email":"ada@example.com","fields":{"address.city":"Paris","firstName":"Adeline","marketingOptIn":false},` +
		`"rules":{"address.city":"newest","firstName":"newest","marketingOptIn":"newest"},` +
		`"systemBLastUpdated":"2026-03-01T12:00:00Z","sourceEventId":"0123456789abcdef0123456789abcdef","decidedAt":"2026-03-02T07:00:00Z"}`
	if string(msg.Value) != want {
		t.Errorf("value\n got %s\nwant %s", msg.Value, want)
	}
	id := writeback.CorrectionID("0123456789abcdef0123456789abcdef")
	wantHeaders := [][2]string{{"event-id", id}, {"schema-version", "1"}, {"source-event-id", "0123456789abcdef0123456789abcdef"}}
	if len(msg.Headers) != len(wantHeaders) {
		t.Fatalf("headers %v, want %v", msg.Headers, wantHeaders)
	}
	for i := range wantHeaders {
		if msg.Headers[i] != wantHeaders[i] {
			t.Errorf("header %d = %v, want %v", i, msg.Headers[i], wantHeaders[i])
		}
	}
	var c writeback.Correction
	if err := json.Unmarshal(msg.Value, &c); err != nil || c.Fields["marketingOptIn"] != false {
		t.Errorf("decode: %+v, %v", c, err)
	}
}

func TestCorrectionID(t *testing.T) {
	a, b := writeback.CorrectionID("e1"), writeback.CorrectionID("e2")
	if a != writeback.CorrectionID("e1") || a == b || len(a) != 32 {
		t.Errorf("CorrectionID: %q %q; want 32 hex digits, the same for the same source, else different", a, b)
	}
	if a == "e1" || a == writeback.CorrectionID("e1correction") {
		t.Errorf("CorrectionID(e1) = %q collides", a)
	}
}

func TestApplyNeedsItsParts(t *testing.T) {
	res := merge.Merge(rec(tA, "firstName", "Ada"), rec(tB, "firstName", "Adeline"), merge.DefaultRules())
	ev := changes.Event{ID: "e1", Key: "ada@example.com"}
	t.Run("off does nothing, even without parts", func(t *testing.T) {
		for _, m := range []writeback.Mode{"", writeback.ModeOff} {
			if err := (&writeback.Writer{Mode: m}).Apply(context.Background(), ev.Key, res, ev); err != nil {
				t.Errorf("mode %q: %v", m, err)
			}
		}
		var none *writeback.Writer
		if err := none.Apply(context.Background(), ev.Key, res, ev); err != nil {
			t.Errorf("nil Writer: %v", err)
		}
	})
	t.Run("a key that is not the customer's join key is invalid", func(t *testing.T) {
		w := &writeback.Writer{Mode: writeback.ModeSystemB, SystemB: unusedSystemB{t}, Publisher: unusedPublisher{t}}
		for _, key := range []string{"", "Ada@Example.com", "bob@example.com"} {
			if err := w.Apply(context.Background(), key, res, ev); !errors.Is(err, merge.ErrInvalid) {
				t.Errorf("key %q: err = %v, want kind invalid", key, err)
			}
		}
		if err := w.Apply(context.Background(), ev.Key, res, changes.Event{Key: ev.Key}); !errors.Is(err, merge.ErrInvalid) {
			t.Errorf("an event without id: err = %v, want kind invalid", err)
		}
	})
	t.Run("systemB without a client or a publisher is invalid", func(t *testing.T) {
		err := (&writeback.Writer{Mode: writeback.ModeSystemB}).Apply(context.Background(), ev.Key, res, ev)
		if !errors.Is(err, merge.ErrInvalid) {
			t.Errorf("err = %v, want kind invalid", err)
		}
	})
}

// unusedSystemB and unusedPublisher fail the test when called: the Apply
// must refuse before any I/O.
type unusedSystemB struct{ t *testing.T }

func (u unusedSystemB) GetWithETag(context.Context, string) (*merge.Record, string, error) {
	u.t.Error("System B read")
	return nil, "", errors.New("unused")
}

func (u unusedSystemB) Patch(context.Context, string, string, *merge.Record, systemb.FieldSet) (*merge.Record, string, error) {
	u.t.Error("System B written")
	return nil, "", errors.New("unused")
}

type unusedPublisher struct{ t *testing.T }

func (u unusedPublisher) Send(context.Context, ...kafka.Message) error {
	u.t.Error("correction published")
	return errors.New("unused")
}
