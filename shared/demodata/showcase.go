package demodata

import (
	"slices"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// The showcase customers Config.Showcase adds: fixed, documented situations
// for the README's examples. Their lastUpdated values are relative to
// Config.ExportedAt (all before it).
const (
	// ShowcaseInSync is in both systems with identical values.
	ShowcaseInSync = "ada.lovelace@example.com"
	// ShowcaseConflict is in both systems with a real conflict: System B's
	// record is newer (ExportedAt-2d against System A's ExportedAt-60d) and
	// holds a different phone (ShowcaseConflictPhoneB against
	// ShowcaseConflictPhoneA) and loyalty tier ("platinum" against "gold").
	// With the default rules the unified view takes System B's phone (newest)
	// and System A's tier (loyaltyTier=systemA).
	ShowcaseConflict = "grace.hopper@example.com"
	// ShowcaseOnlyInSystemA is held by System A only.
	ShowcaseOnlyInSystemA = "alan.turing@example.com"
	// ShowcaseOnlyInSystemB is held by System B only.
	ShowcaseOnlyInSystemB = "katherine.johnson@example.org"
	// ShowcaseNonASCII is a mixed-case, non-ASCII email: System B stores it
	// as ShowcaseNonASCII, System A as ShowcaseNonASCIISystemA; they are one
	// customer, in sync (its situation is CosmeticOnly: the emails' case is
	// the only difference).
	ShowcaseNonASCII = "jörg.müller@example.com"
	// ShowcaseNonASCIISystemA is how System A stores ShowcaseNonASCII.
	ShowcaseNonASCIISystemA = "JÖRG.MÜLLER@example.com"
	// ShowcaseCosmetic is in both systems and differs only cosmetically
	// (name case and NFD accents, phone formatting, postal-code spacing and
	// case, whitespace, tier case): in sync, no conflict.
	ShowcaseCosmetic = "zoë.dubois@example.org"
)

// The phones of ShowcaseConflict in each system.
const (
	ShowcaseConflictPhoneA = "+1 202 555 0143"
	ShowcaseConflictPhoneB = "+1 202 555 0199"
)

// showcaseRecord builds a record from values in field order (email first).
func showcaseRecord(lastUpdated time.Time, values ...string) *merge.Record {
	r := &merge.Record{LastUpdated: lastUpdated}
	copy(r.Values[:], values)
	return r
}

// showcasePairs returns the showcase customers, sorted by key.
func showcasePairs(cfg Config) []Pair {
	at := func(days int) time.Time { return cfg.ExportedAt.AddDate(0, 0, -days) }
	// Field order: email, firstName, lastName, phone, address.line1,
	// address.city, address.postalCode, address.country, marketingOptIn,
	// loyaltyTier.
	pairs := []Pair{
		{
			Situation: InSync,
			A:         showcaseRecord(at(30), ShowcaseInSync, "Ada", "Lovelace", "+44 20 7946 0018", "12 St James's Square", "London", "SW1Y 4JH", "GB", "true", "gold"),
			B:         showcaseRecord(at(30), ShowcaseInSync, "Ada", "Lovelace", "+44 20 7946 0018", "12 St James's Square", "London", "SW1Y 4JH", "GB", "true", "gold"),
		},
		{
			Situation: ConflictBNewer,
			A:         showcaseRecord(at(60), ShowcaseConflict, "Grace", "Hopper", ShowcaseConflictPhoneA, "1600 Pennsylvania Avenue", "Washington", "20500", "US", "false", "gold"),
			B:         showcaseRecord(at(2), ShowcaseConflict, "Grace", "Hopper", ShowcaseConflictPhoneB, "1600 Pennsylvania Avenue", "Washington", "20500", "US", "false", "platinum"),
			Conflicts: []merge.FieldID{merge.FieldPhone, merge.FieldLoyaltyTier},
		},
		{
			Situation: OnlyInSystemA,
			A:         showcaseRecord(at(10), ShowcaseOnlyInSystemA, "Alan", "Turing", "+44 161 496 0912", "Bletchley Park", "Milton Keynes", "MK3 6EB", "GB", "", "silver"),
		},
		{
			Situation: OnlyInSystemB,
			B:         showcaseRecord(at(1), ShowcaseOnlyInSystemB, "Katherine", "Johnson", "+1 757 555 0110", "1 NASA Drive", "Hampton", "23666", "US", "true", "bronze"),
		},
		{
			Situation: CosmeticOnly, // the emails differ in case only
			A:         showcaseRecord(at(20), ShowcaseNonASCIISystemA, "Jörg", "Müller", "+49 30 5550 1234", "Hauptstraße 5", "Berlin", "10115", "DE", "true", "silver"),
			B:         showcaseRecord(at(20), ShowcaseNonASCII, "Jörg", "Müller", "+49 30 5550 1234", "Hauptstraße 5", "Berlin", "10115", "DE", "true", "silver"),
		},
		{
			Situation: CosmeticOnly,
			A:         showcaseRecord(at(5), ShowcaseCosmetic, "Zoë", "Dubois", "+44 20 7946 0321", "10 Downing Street", "London", "SW1A 2AA", "GB", "false", "silver"),
			B:         showcaseRecord(at(5), ShowcaseCosmetic, "ZOE\u0308", "dubois", "+442079460321", "10  Downing Street ", "london", "sw1a2aa", "gb", "false", "Silver"),
		},
	}
	for i := range pairs {
		p := &pairs[i]
		p.Showcase = true
		if p.A != nil {
			p.Key = merge.Key(p.A.Email())
		} else {
			p.Key = merge.Key(p.B.Email())
		}
	}
	slices.SortFunc(pairs, func(x, y Pair) int { return strings.Compare(x.Key, y.Key) })
	return pairs
}
