package merge_test

import (
	"fmt"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// at is a time of day on the examples' date.
func at(hour, minute int) time.Time { return time.Date(2025, 3, 1, hour, minute, 0, 0, time.UTC) }

// record builds a record from a map of field paths to values.
func record(lastUpdated time.Time, values map[string]string) *merge.Record {
	r := &merge.Record{LastUpdated: lastUpdated}
	for path, v := range values {
		if id, ok := merge.FieldByPath(path); ok {
			r.Values[id] = v
		}
	}
	return r
}

func ExampleDiff() {
	a := record(at(2, 0), map[string]string{
		"email": "JÖRG@Example.com", "firstName": "Jörg", "phone": "+49 30 1234", "loyaltyTier": "gold",
	})
	b := record(at(9, 30), map[string]string{
		"email": "jörg@example.com", "firstName": "JÖRG", "phone": "+49 30 9999",
	})
	for _, d := range merge.Diff(a, b) {
		fmt.Printf("%s %s: A %q, B %q, newer %s\n", d.Field.Path(), d.Kind, d.A, d.B, d.NewerSource)
	}
	// Output:
	// phone mismatch: A "+49 30 1234", B "+49 30 9999", newer systemB
	// loyaltyTier onlyInSystemA: A "gold", B "", newer systemB
}

func ExampleMerge() {
	a := record(at(2, 0), map[string]string{
		"email": "anna@example.com", "lastName": "Schmidt", "loyaltyTier": "gold",
	})
	b := record(at(9, 30), map[string]string{
		"email": "Anna@Example.com ", "lastName": "Schmidt-Weber", "loyaltyTier": "silver", "address.city": "Berlin",
	})
	res := merge.Merge(a, b, merge.DefaultRules())
	customer, _ := res.Customer.MarshalJSON()
	fmt.Println(res.Presence)
	fmt.Println(string(customer))
	for _, c := range res.Conflicts {
		fmt.Printf("%s: %s by rule %s\n", c.Field.Path(), c.ResolvedFrom, c.Rule)
	}
	// Output:
	// inBoth
	// {"email":"Anna@Example.com","firstName":null,"lastName":"Schmidt-Weber","phone":null,"address":{"line1":null,"city":"Berlin","postalCode":null,"country":null},"marketingOptIn":null,"loyaltyTier":"gold"}
	// lastName: systemB by rule newest
	// address.city: systemB by rule newest
	// loyaltyTier: systemA by rule systemA
}

func ExampleParseRules() {
	rules, err := merge.ParseRules(" loyaltyTier = systemA , phone=systemB, *=newest")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rules.For(merge.FieldPhone), rules.For(merge.FieldCity))
	fmt.Println(rules)

	_, err = merge.ParseRules("loyaltyTier=systemC")
	fmt.Println(err)
	// Output:
	// systemB newest
	// phone=systemB,loyaltyTier=systemA,*=newest
	// merge: invalid merge rules: unknown rule "systemC" for field "loyaltyTier"; allowed rules: newest, systemA, systemB
}

func ExampleParseEmail() {
	k1, _ := merge.ParseEmail(" JÖRG@Example.com")
	k2, _ := merge.ParseEmail("jörg@example.com")
	fmt.Println(k1, k1 == k2)
	_, err := merge.ParseEmail("jörg@example..com")
	fmt.Println(err)
	// Output:
	// jörg@example.com true
	// merge: invalid email: domain has an empty label (leading, trailing or double '.')
}

func ExampleNewFreshness() {
	exported, read := at(2, 0), at(9, 30)
	fmt.Println(merge.NewFreshness(exported, read).AsOf)
	fmt.Println(merge.NewFreshness(time.Time{}, read).AsOf) // System A unavailable
	// Output:
	// 2025-03-01 02:00:00 +0000 UTC
	// 2025-03-01 09:30:00 +0000 UTC
}
