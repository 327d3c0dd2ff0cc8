package writeback_test

import (
	"fmt"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/writeback"
)

// ExamplePlanOf shows what a merge asks of the systems: System A is newer,
// so its first name goes to System B; loyaltyTier is decided by rule
// systemB here, so System A is to take System B's tier.
func ExamplePlanOf() {
	rules, _ := merge.ParseRules("loyaltyTier=systemB,*=newest")
	var a, b merge.Record
	a.Values[merge.FieldEmail], b.Values[merge.FieldEmail] = "ada@example.com", "ada@example.com"
	a.Values[merge.FieldFirstName], b.Values[merge.FieldFirstName] = "Ada", "Adeline"
	a.Values[merge.FieldLoyaltyTier], b.Values[merge.FieldLoyaltyTier] = "gold", "platinum"
	a.LastUpdated = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.LastUpdated = a.LastUpdated.Add(-time.Hour)

	res := merge.Merge(&a, &b, rules)
	plan := writeback.PlanOf(&res)
	for i := range merge.NumFields {
		switch {
		case plan.ToB[i]:
			fmt.Println("PATCH System B:", merge.FieldID(i).Path(), "=", res.Customer.Values[i])
		case plan.ToA[i]:
			fmt.Println("correct System A:", merge.FieldID(i).Path(), "=", res.Customer.Values[i])
		}
	}
	// Output:
	// PATCH System B: firstName = Ada
	// correct System A: loyaltyTier = platinum
}
