package demodata_test

import (
	"context"
	"fmt"
	"os"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
)

// Write a small data set with the showcase customers and read the counts a
// reconciliation must find.
func ExampleWrite() {
	dir, err := os.MkdirTemp("", "demodata-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	cfg := demodata.NewConfig(1, 1000)
	cfg.Showcase = true
	truth, err := demodata.Write(context.Background(), cfg, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("systemA", truth.SystemA, "systemB", truth.SystemB)
	fmt.Println("inSync", truth.InSync, "withConflicts", truth.WithConflicts)
	fmt.Println("onlyInSystemA", truth.OnlyInSystemA, "onlyInSystemB", truth.OnlyInSystemB)
	// Output:
	// systemA 990 systemB 990
	// inSync 933 withConflicts 41
	// onlyInSystemA 16 onlyInSystemB 16
}

// Stream the customers without writing files: the showcase conflict, as
// merge.Diff sees it.
func ExampleGenerator_Pairs() {
	cfg := demodata.NewConfig(1, 100)
	cfg.Showcase = true
	g, err := demodata.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for p := range g.Pairs() {
		if p.Key != demodata.ShowcaseConflict {
			continue
		}
		fmt.Println(p.Situation)
		for _, d := range merge.Diff(p.A, p.B) {
			fmt.Println(merge.Fields[d.Field].Path, d.A, "->", d.B, "newer:", d.NewerSource)
		}
	}
	// Output:
	// conflictBNewer
	// phone +1 202 555 0143 -> +1 202 555 0199 newer: systemB
	// loyaltyTier gold -> platinum newer: systemB
}
