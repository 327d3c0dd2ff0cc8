package demodata

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// Truth is the ground truth of a generated data set: what a reconciliation
// of the two systems must find. It is tallied from the generator's own
// decisions (what it perturbed), never by running merge.Diff.
type Truth struct {
	Seed       int64     `json:"seed"`
	N          int       `json:"n"`
	Showcase   bool      `json:"showcase"`
	Mix        Mix       `json:"mix"`
	ExportedAt time.Time `json:"exportedAt"`
	Now        time.Time `json:"now"`

	SystemA       int `json:"systemA"`       // customers System A holds
	SystemB       int `json:"systemB"`       // customers System B holds
	InBoth        int `json:"inBoth"`        // held by both
	InSync        int `json:"inSync"`        // held by both, no field-level difference (cosmetic ones included)
	CosmeticOnly  int `json:"cosmeticOnly"`  // of InSync, those whose text differs only cosmetically
	WithConflicts int `json:"withConflicts"` // held by both, at least one field-level difference
	OnlyInSystemA int `json:"onlyInSystemA"`
	OnlyInSystemB int `json:"onlyInSystemB"`

	// ConflictsByField counts, per field path, the customers whose field
	// differs; fields without any are left out.
	ConflictsByField map[string]int `json:"conflictsByField"`
	// Differences is the number of field-level differences (the sum of
	// ConflictsByField).
	Differences int `json:"differences"`
	// NewerSource tallies, over the customers WithConflicts, which system's
	// record has the later lastUpdated.
	NewerSource NewerTally `json:"newerSource"`
}

// NewerTally counts conflicting customers by their newer source.
type NewerTally struct {
	SystemA int `json:"systemA"`
	SystemB int `json:"systemB"`
	Equal   int `json:"equal"`
}

// newTruth returns an empty Truth describing cfg (defaults filled).
func newTruth(cfg Config) Truth {
	return Truth{
		Seed: cfg.Seed, N: cfg.N, Showcase: cfg.Showcase, Mix: cfg.Mix,
		ExportedAt: cfg.ExportedAt, Now: cfg.Now,
		ConflictsByField: map[string]int{},
	}
}

// Add counts one pair by its generator intent.
func (t *Truth) Add(p Pair) {
	if p.A != nil {
		t.SystemA++
	}
	if p.B != nil {
		t.SystemB++
	}
	switch p.Situation {
	case OnlyInSystemA:
		t.OnlyInSystemA++
		return
	case OnlyInSystemB:
		t.OnlyInSystemB++
		return
	}
	t.InBoth++
	switch p.Situation {
	case InSync, CosmeticOnly:
		t.InSync++
		if p.Situation == CosmeticOnly {
			t.CosmeticOnly++
		}
		return
	}
	t.WithConflicts++
	if p.Situation == ConflictANewer {
		t.NewerSource.SystemA++
	} else {
		t.NewerSource.SystemB++
	}
	for _, f := range p.Conflicts {
		t.ConflictsByField[merge.Fields[f].Path]++
		t.Differences++
	}
}

// Truth streams the generator's customers and tallies their ground truth.
func (g *Generator) Truth() Truth {
	t := newTruth(g.cfg)
	for p := range g.Pairs() {
		t.Add(p)
	}
	return t
}

// String renders a human-readable summary (counts, then per-field tallies
// in field order).
func (t Truth) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "customers     %d (seed %d, n %d, showcase %v)\n", t.InBoth+t.OnlyInSystemA+t.OnlyInSystemB, t.Seed, t.N, t.Showcase)
	fmt.Fprintf(&b, "systemA       %d\nsystemB       %d\ninBoth        %d\n", t.SystemA, t.SystemB, t.InBoth)
	fmt.Fprintf(&b, "inSync        %d (cosmetic only %d)\n", t.InSync, t.CosmeticOnly)
	fmt.Fprintf(&b, "withConflicts %d (newer: systemA %d, systemB %d, equal %d)\n", t.WithConflicts, t.NewerSource.SystemA, t.NewerSource.SystemB, t.NewerSource.Equal)
	fmt.Fprintf(&b, "onlyInSystemA %d\nonlyInSystemB %d\n", t.OnlyInSystemA, t.OnlyInSystemB)
	fmt.Fprintf(&b, "differences   %d\n", t.Differences)
	paths := make([]string, 0, len(t.ConflictsByField))
	for _, f := range merge.Fields {
		if _, ok := t.ConflictsByField[f.Path]; ok {
			paths = append(paths, f.Path)
		}
	}
	known := len(paths)
	for p := range t.ConflictsByField { // paths not in the field table, if any
		if !slices.Contains(paths[:known], p) {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths[known:])
	for _, p := range paths {
		fmt.Fprintf(&b, "  %-20s %d\n", p, t.ConflictsByField[p])
	}
	return b.String()
}
