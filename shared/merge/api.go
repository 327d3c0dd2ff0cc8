package merge

// This file declares the package's API types.

import "time"

// Presence says which systems hold a customer.
type Presence string

// Record-level presence values.
const (
	InBoth        Presence = "inBoth"
	OnlyInSystemA Presence = "onlyInSystemA"
	OnlyInSystemB Presence = "onlyInSystemB"
)

// DiffKind classifies a field-level difference.
type DiffKind string

// Field-level difference kinds.
const (
	Mismatch DiffKind = "mismatch"      // both present, different after normalisation
	OnlyInA  DiffKind = "onlyInSystemA" // present in System A, absent in System B
	OnlyInB  DiffKind = "onlyInSystemB" // present in System B, absent in System A
)

// Difference is one field on which two records disagree after normalisation.
type Difference struct {
	Field        FieldID
	Kind         DiffKind
	A, B         string    // original values ("" = absent)
	ALastUpdated time.Time // record-level lastUpdated of System A's record
	BLastUpdated time.Time // record-level lastUpdated of System B's record
	NewerSource  Source    // SystemA, SystemB or Equal, from the two lastUpdated
}

// Rule names how a field's value is chosen when the systems disagree.
type Rule string

// The rules MERGE_RULES may name.
const (
	RuleNewest  Rule = "newest"  // the record with the later lastUpdated; ties go to System A
	RuleSystemA Rule = "systemA" // System A's value
	RuleSystemB Rule = "systemB" // System B's value
)

// DefaultRulesText is the MERGE_RULES value used when the setting is empty.
const DefaultRulesText = "loyaltyTier=systemA,*=newest"

// Rules holds the rule of every field.
type Rules struct {
	byField [NumFields]Rule
}

// Resolution is one conflict Merge resolved, with the rule that decided it.
type Resolution struct {
	Difference
	ResolvedFrom Source // the system whose value the unified record carries
	Rule         Rule
}

// Result is the unified view of one customer.
type Result struct {
	Presence  Presence
	Customer  Record            // winners' original text, trimmed
	Sources   [NumFields]Source // provenance per field; "" when absent in both
	Conflicts []Resolution      // in field order
	A, B      time.Time         // each record's lastUpdated; zero when absent
}

// Freshness is how fresh a merged view is: System A's is the snapshot's
// exported_at, System B's the time of the read; AsOf is the older of the two
// known ones (the consistency model's freshness = min(A, B)).
type Freshness struct {
	SystemA time.Time
	SystemB time.Time
	AsOf    time.Time
}
