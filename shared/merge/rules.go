package merge

import (
	"fmt"
	"strings"
)

// ruleNames lists the rules MERGE_RULES may name, for error messages.
var ruleNames = [...]Rule{RuleNewest, RuleSystemA, RuleSystemB}

// ParseRules parses a MERGE_RULES text: comma-separated field=rule pairs,
// where field is a JSON path from Fields or "*" (every field not named) and
// rule is newest, systemA or systemB. Spaces around tokens are ignored; a
// field named twice is an error; without "*" unnamed fields use newest. An
// empty (or blank) text means DefaultRulesText. Errors wrap ErrInvalidRules
// and name the bad token and the allowed values.
func ParseRules(text string) (Rules, error) {
	if strings.TrimSpace(text) == "" {
		text = DefaultRulesText
	}
	var (
		named [NumFields]bool
		star  Rule
		r     Rules
	)
	for entry := range strings.SplitSeq(text, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return Rules{}, fmt.Errorf("%w: empty entry in %q; want field=rule pairs separated by commas", ErrInvalidRules, text)
		}
		name, ruleText, ok := strings.Cut(entry, "=")
		if !ok {
			return Rules{}, fmt.Errorf("%w: entry %q has no '='; want field=rule, e.g. %q", ErrInvalidRules, entry, DefaultRulesText)
		}
		name, ruleText = strings.TrimSpace(name), strings.TrimSpace(ruleText)
		id, ok := FieldByPath(name)
		if !ok && name != "*" {
			return Rules{}, fmt.Errorf("%w: unknown field %q; allowed fields: %s", ErrInvalidRules, name, allowedFields())
		}
		if (name == "*" && star != "") || (name != "*" && named[id]) {
			return Rules{}, fmt.Errorf("%w: field %q is named twice", ErrInvalidRules, name)
		}
		rule, ok := parseRule(ruleText)
		if !ok {
			return Rules{}, fmt.Errorf("%w: unknown rule %q for field %q; allowed rules: %s", ErrInvalidRules, ruleText, name, allowedRules())
		}
		if name == "*" {
			star = rule
			continue
		}
		named[id] = true
		r.byField[id] = rule
	}
	if star == "" {
		star = RuleNewest
	}
	for i := range r.byField {
		if !named[i] {
			r.byField[i] = star
		}
	}
	return r, nil
}

// parseRule reads one rule name.
func parseRule(s string) (Rule, bool) {
	for _, r := range ruleNames {
		if s == string(r) {
			return r, true
		}
	}
	return "", false
}

// allowedRules lists the rule names for error messages.
func allowedRules() string {
	names := make([]string, len(ruleNames))
	for i, r := range ruleNames {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// allowedFields lists "*" and every field path for error messages.
func allowedFields() string {
	paths := []string{"*"}
	for _, f := range Fields {
		paths = append(paths, f.Path)
	}
	return strings.Join(paths, ", ")
}

// DefaultRules returns the rules of DefaultRulesText.
func DefaultRules() Rules {
	var r Rules
	for i := range r.byField {
		r.byField[i] = RuleNewest
	}
	r.byField[FieldLoyaltyTier] = RuleSystemA
	return r
}

// For returns the rule of field id. The zero Rules is newest for every field.
func (r Rules) For(id FieldID) Rule {
	if id < 0 || int(id) >= NumFields || r.byField[id] == "" {
		return RuleNewest
	}
	return r.byField[id]
}

// String renders the rules in MERGE_RULES syntax: the fields whose rule is
// not the most common one in field order, then "*" with the most common rule
// (ties go to newest). ParseRules(r.String()) gives r back.
func (r Rules) String() string {
	var count [len(ruleNames)]int
	for i := range r.byField {
		for j, name := range ruleNames {
			if r.For(FieldID(i)) == name {
				count[j]++
			}
		}
	}
	star := 0
	for j := range count {
		if count[j] > count[star] {
			star = j
		}
	}
	var b strings.Builder
	for i, f := range Fields {
		if rule := r.For(FieldID(i)); rule != ruleNames[star] {
			b.WriteString(f.Path)
			b.WriteByte('=')
			b.WriteString(string(rule))
			b.WriteByte(',')
		}
	}
	b.WriteString("*=")
	b.WriteString(string(ruleNames[star]))
	return b.String()
}
