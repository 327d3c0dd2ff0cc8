package merge

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	// want lists the rule of every field, in field order.
	all := func(r Rule) [NumFields]Rule {
		var w [NumFields]Rule
		for i := range w {
			w[i] = r
		}
		return w
	}
	with := func(w [NumFields]Rule, id FieldID, r Rule) [NumFields]Rule { w[id] = r; return w }
	def := with(all(RuleNewest), FieldLoyaltyTier, RuleSystemA)
	tests := []struct {
		name, text string
		want       [NumFields]Rule
		str        string
	}{
		{"empty is default", "", def, DefaultRulesText},
		{"blank is default", "  ", def, DefaultRulesText},
		{"default text", DefaultRulesText, def, DefaultRulesText},
		{"spaces around tokens", " loyaltyTier = systemA , * = newest ", def, DefaultRulesText},
		{"no star means newest", "loyaltyTier=systemA", def, DefaultRulesText},
		{"star only", "*=systemB", all(RuleSystemB), "*=systemB"},
		{"star first", "*=systemB,email=systemA", with(all(RuleSystemB), FieldEmail, RuleSystemA), "email=systemA,*=systemB"},
		{"nested path", "address.city=systemB", with(all(RuleNewest), FieldCity, RuleSystemB), "address.city=systemB,*=newest"},
		{"every field named", "email=systemA,firstName=systemA,lastName=systemA,phone=systemA,address.line1=systemA," +
			"address.city=systemA,address.postalCode=systemA,address.country=systemA,marketingOptIn=systemA,loyaltyTier=systemB",
			with(all(RuleSystemA), FieldLoyaltyTier, RuleSystemB), "loyaltyTier=systemB,*=systemA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRules(tt.text)
			if err != nil {
				t.Fatalf("ParseRules(%q): %v", tt.text, err)
			}
			for i := range tt.want {
				if got := r.For(FieldID(i)); got != tt.want[i] {
					t.Errorf("For(%v) = %q, want %q", FieldID(i), got, tt.want[i])
				}
			}
			if got := r.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			back, err := ParseRules(r.String())
			if err != nil || back != r {
				t.Errorf("ParseRules(String()) = %v, %v; want %v", back, err, r)
			}
		})
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name, text string
		mention    []string // substrings the error must contain
	}{
		{"unknown rule", "loyaltyTier=systemC", []string{`"systemC"`, "newest, systemA, systemB"}},
		{"unknown field", "tier=systemA", []string{`"tier"`, "loyaltyTier", "address.city", "*"}},
		{"field case matters", "LoyaltyTier=systemA", []string{`"LoyaltyTier"`}},
		{"rule case matters", "loyaltyTier=SystemA", []string{`"SystemA"`}},
		{"no equals", "loyaltyTier", []string{`"loyaltyTier"`, "field=rule"}},
		{"empty rule", "loyaltyTier=", []string{`""`, "newest, systemA, systemB"}},
		{"empty field", "=newest", []string{`""`, "allowed fields"}},
		{"field twice", "email=systemA,email=systemB", []string{`"email"`, "twice"}},
		{"star twice", "*=newest,*=systemA", []string{`"*"`, "twice"}},
		{"empty entry", "email=systemA,,*=newest", []string{"empty entry"}},
		{"trailing comma", "email=systemA,", []string{"empty entry"}},
		{"two equals", "email=systemA=systemB", []string{`"systemA=systemB"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules(tt.text)
			if err == nil {
				t.Fatalf("ParseRules(%q) succeeded, want an error", tt.text)
			}
			if !errors.Is(err, ErrInvalidRules) {
				t.Errorf("error %v does not wrap ErrInvalidRules", err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
		})
	}
}

func TestDefaultRules(t *testing.T) {
	r, err := ParseRules(DefaultRulesText)
	if err != nil {
		t.Fatal(err)
	}
	if DefaultRules() != r {
		t.Errorf("DefaultRules() = %v, ParseRules(DefaultRulesText) = %v", DefaultRules(), r)
	}
	var zero Rules
	for i := range NumFields {
		if got := zero.For(FieldID(i)); got != RuleNewest {
			t.Errorf("zero Rules For(%v) = %q, want newest", FieldID(i), got)
		}
	}
	if got := zero.String(); got != "*=newest" {
		t.Errorf("zero Rules String() = %q", got)
	}
}
