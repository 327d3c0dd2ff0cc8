package merge

import (
	"testing"
	"time"
)

// t0 is the reference instant of the tests.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// rec builds a record from field path=value pairs.
func rec(t testing.TB, lastUpdated time.Time, kv ...string) *Record {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("rec: odd number of arguments")
	}
	r := &Record{LastUpdated: lastUpdated}
	for i := 0; i < len(kv); i += 2 {
		id, ok := FieldByPath(kv[i])
		if !ok {
			t.Fatalf("rec: unknown field %q", kv[i])
		}
		r.Values[id] = kv[i+1]
	}
	return r
}

// typicalA returns a realistic System A record.
func typicalA(tb testing.TB) *Record {
	tb.Helper()
	return rec(tb, t0,
		"email", "Anna.Schmidt+news@Example.com",
		"firstName", "Anna",
		"lastName", "Schmidt",
		"phone", "+49 30 1234 5678",
		"address.line1", "Unter den Linden 5",
		"address.city", "Berlin",
		"address.postalCode", "10117",
		"address.country", "DE",
		"marketingOptIn", "true",
		"loyaltyTier", "gold",
	)
}

// typicalBInSync returns typicalA as System B writes it: cosmetically
// different (case, whitespace, phone formatting), the same customer.
func typicalBInSync(tb testing.TB) *Record {
	tb.Helper()
	return rec(tb, t0.Add(time.Hour),
		"email", "anna.schmidt+news@example.com",
		"firstName", "anna",
		"lastName", "SCHMIDT ",
		"phone", "+49 (30) 1234-5678",
		"address.line1", "Unter  den Linden 5",
		"address.city", "berlin",
		"address.postalCode", "10117",
		"address.country", "de",
		"marketingOptIn", "true",
		"loyaltyTier", "Gold",
	)
}

// typicalBConflict returns a System B record conflicting with typicalA on
// three fields and missing one.
func typicalBConflict(tb testing.TB) *Record {
	tb.Helper()
	r := typicalBInSync(tb)
	r.Values[FieldLastName] = "Schmidt-Weber"
	r.Values[FieldPhone] = "+49 30 9999 0000"
	r.Values[FieldMarketingOptIn] = "false"
	r.Values[FieldLoyaltyTier] = ""
	return r
}
