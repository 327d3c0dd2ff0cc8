package merge

import (
	"reflect"
	"testing"
	"time"
)

func TestMerge(t *testing.T) {
	tA, tB := t0, t0.Add(time.Hour)
	rulesOf := func(text string) Rules {
		t.Helper()
		r, err := ParseRules(text)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	type field struct {
		value string
		from  Source
	}
	tests := []struct {
		name      string
		a, b      *Record
		rules     Rules
		presence  Presence
		fields    map[FieldID]field // every other field must be absent with no source
		conflicts map[FieldID]Source
		rulesUsed map[FieldID]Rule
		last      time.Time
	}{
		{
			name:     "in sync: B newer wins equivalent values, tier from A by default",
			a:        rec(t, tA, "email", " Anna@Example.com ", "firstName", "ANNA", "loyaltyTier", "Gold"),
			b:        rec(t, tB, "email", "anna@example.com", "firstName", " anna ", "loyaltyTier", "gold"),
			rules:    DefaultRules(),
			presence: InBoth,
			fields: map[FieldID]field{
				FieldEmail:       {"anna@example.com", SystemB},
				FieldFirstName:   {"anna", SystemB},
				FieldLoyaltyTier: {"Gold", SystemA},
			},
			last: tB,
		},
		{
			name:     "conflicts: newest picks B, systemA rule keeps A, absent falls back",
			a:        rec(t, tA, "email", "a@x.io", "lastName", "Li", "phone", "+1 555", "loyaltyTier", "gold"),
			b:        rec(t, tB, "email", "a@x.io", "lastName", "Lee", "address.city", "Oslo", "loyaltyTier", "silver"),
			rules:    DefaultRules(),
			presence: InBoth,
			fields: map[FieldID]field{
				FieldEmail:       {"a@x.io", SystemB},
				FieldLastName:    {"Lee", SystemB},
				FieldPhone:       {"+1 555", SystemA},
				FieldCity:        {"Oslo", SystemB},
				FieldLoyaltyTier: {"gold", SystemA},
			},
			conflicts: map[FieldID]Source{FieldLastName: SystemB, FieldPhone: SystemA, FieldCity: SystemB, FieldLoyaltyTier: SystemA},
			rulesUsed: map[FieldID]Rule{FieldLastName: RuleNewest, FieldPhone: RuleNewest, FieldCity: RuleNewest, FieldLoyaltyTier: RuleSystemA},
			last:      tB,
		},
		{
			name:      "equal timestamps: newest ties go to System A",
			a:         rec(t, tA, "email", "a@x.io", "firstName", "Anna"),
			b:         rec(t, tA, "email", "A@x.io", "firstName", "Anne"),
			rules:     DefaultRules(),
			presence:  InBoth,
			fields:    map[FieldID]field{FieldEmail: {"a@x.io", SystemA}, FieldFirstName: {"Anna", SystemA}},
			conflicts: map[FieldID]Source{FieldFirstName: SystemA},
			rulesUsed: map[FieldID]Rule{FieldFirstName: RuleNewest},
			last:      tA,
		},
		{
			name:      "A newer wins newest",
			a:         rec(t, tB, "email", "a@x.io", "marketingOptIn", "true"),
			b:         rec(t, tA, "email", "a@x.io", "marketingOptIn", "false"),
			rules:     DefaultRules(),
			presence:  InBoth,
			fields:    map[FieldID]field{FieldEmail: {"a@x.io", SystemA}, FieldMarketingOptIn: {"true", SystemA}},
			conflicts: map[FieldID]Source{FieldMarketingOptIn: SystemA},
			rulesUsed: map[FieldID]Rule{FieldMarketingOptIn: RuleNewest},
			last:      tB,
		},
		{
			name:      "systemB rule beats a newer A; absent B falls back to A",
			a:         rec(t, tB, "email", "a@x.io", "firstName", "Anna", "lastName", "Li"),
			b:         rec(t, tA, "email", "a@x.io", "firstName", "Anne"),
			rules:     rulesOf("*=systemB"),
			presence:  InBoth,
			fields:    map[FieldID]field{FieldEmail: {"a@x.io", SystemB}, FieldFirstName: {"Anne", SystemB}, FieldLastName: {"Li", SystemA}},
			conflicts: map[FieldID]Source{FieldFirstName: SystemB, FieldLastName: SystemA},
			rulesUsed: map[FieldID]Rule{FieldFirstName: RuleSystemB, FieldLastName: RuleSystemB},
			last:      tB,
		},
		{
			name:     "only in A",
			a:        rec(t, tA, "email", " a@x.io", "firstName", "Anna "),
			rules:    DefaultRules(),
			presence: OnlyInSystemA,
			fields:   map[FieldID]field{FieldEmail: {"a@x.io", SystemA}, FieldFirstName: {"Anna", SystemA}},
			last:     tA,
		},
		{
			name:     "only in B",
			b:        rec(t, tB, "email", "a@x.io", "loyaltyTier", "gold"),
			rules:    DefaultRules(),
			presence: OnlyInSystemB,
			fields:   map[FieldID]field{FieldEmail: {"a@x.io", SystemB}, FieldLoyaltyTier: {"gold", SystemB}},
			last:     tB,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Merge(tt.a, tt.b, tt.rules)
			if res.Presence != tt.presence {
				t.Errorf("Presence = %q, want %q", res.Presence, tt.presence)
			}
			for i := range NumFields {
				id := FieldID(i)
				want := tt.fields[id]
				if got := res.Customer.Values[id]; got != want.value {
					t.Errorf("%v = %q, want %q", id, got, want.value)
				}
				if got := res.Sources[id]; got != want.from {
					t.Errorf("source of %v = %q, want %q", id, got, want.from)
				}
			}
			if !res.Customer.LastUpdated.Equal(tt.last) {
				t.Errorf("LastUpdated = %v, want %v", res.Customer.LastUpdated, tt.last)
			}
			var diffs []Difference
			if tt.a != nil && tt.b != nil {
				diffs = Diff(tt.a, tt.b)
			}
			if len(res.Conflicts) != len(diffs) || len(res.Conflicts) != len(tt.conflicts) {
				t.Fatalf("%d conflicts, %d differences, want %d", len(res.Conflicts), len(diffs), len(tt.conflicts))
			}
			for i, c := range res.Conflicts {
				if !reflect.DeepEqual(c.Difference, diffs[i]) {
					t.Errorf("conflict %d: %+v, difference %+v", i, c.Difference, diffs[i])
				}
				if want := tt.conflicts[c.Field]; c.ResolvedFrom != want {
					t.Errorf("conflict on %v resolved from %q, want %q", c.Field, c.ResolvedFrom, want)
				}
				if want := tt.rulesUsed[c.Field]; c.Rule != want {
					t.Errorf("conflict on %v by rule %q, want %q", c.Field, c.Rule, want)
				}
				if c.ResolvedFrom != res.Sources[c.Field] {
					t.Errorf("conflict on %v resolved from %q, source %q", c.Field, c.ResolvedFrom, res.Sources[c.Field])
				}
			}
			var wantA, wantB time.Time
			if tt.a != nil {
				wantA = tt.a.LastUpdated
			}
			if tt.b != nil {
				wantB = tt.b.LastUpdated
			}
			if !res.A.Equal(wantA) || !res.B.Equal(wantB) {
				t.Errorf("A, B = %v, %v; want %v, %v", res.A, res.B, wantA, wantB)
			}
			if got, want := res.InSync(), tt.presence == InBoth && len(tt.conflicts) == 0; got != want {
				t.Errorf("InSync() = %v, want %v", got, want)
			}
		})
	}
}

func TestMergeNeither(t *testing.T) {
	if res := Merge(nil, nil, DefaultRules()); !reflect.DeepEqual(res, Result{}) {
		t.Errorf("Merge(nil, nil) = %+v, want zero", res)
	}
}

func TestSourcesMap(t *testing.T) {
	res := Merge(rec(t, t0, "email", "a@x.io", "address.city", "Oslo"), rec(t, t0.Add(time.Second), "email", "a@x.io"), DefaultRules())
	want := map[string]Source{"email": SystemB, "address.city": SystemA}
	if got := res.SourcesMap(); !reflect.DeepEqual(got, want) {
		t.Errorf("SourcesMap() = %v, want %v", got, want)
	}
}

func TestNewFreshness(t *testing.T) {
	exported, read := t0, t0.Add(10*time.Hour)
	tests := []struct {
		name       string
		a, b, asOf time.Time
	}{
		{"A older", exported, read, exported},
		{"B older", read, exported, exported},
		{"equal", exported, exported, exported},
		{"A unknown", time.Time{}, read, read},
		{"B unknown", exported, time.Time{}, exported},
		{"both unknown", time.Time{}, time.Time{}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFreshness(tt.a, tt.b)
			if !f.SystemA.Equal(tt.a) || !f.SystemB.Equal(tt.b) || !f.AsOf.Equal(tt.asOf) {
				t.Errorf("NewFreshness = %+v, want asOf %v", f, tt.asOf)
			}
		})
	}
}

func TestFieldIDString(t *testing.T) {
	if got := FieldCity.String(); got != "address.city" {
		t.Errorf("FieldCity.String() = %q", got)
	}
	if got := FieldID(42).String(); got != "FieldID(42)" {
		t.Errorf("FieldID(42).String() = %q", got)
	}
}
