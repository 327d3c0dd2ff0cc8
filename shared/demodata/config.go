package demodata

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidConfig is returned (wrapped) for a Config or mix text that the
// generator cannot use.
var ErrInvalidConfig = errors.New("demodata: invalid config")

// Situation is what the generator decided for one customer.
type Situation string

// The situations, in the order of Mix's fields.
const (
	InSync         Situation = "inSync"         // in both systems, identical values
	ConflictANewer Situation = "conflictANewer" // in both, 1-3 fields really differ, System A's record is newer
	ConflictBNewer Situation = "conflictBNewer" // in both, 1-3 fields really differ, System B's record is newer
	OnlyInSystemA  Situation = "onlyInSystemA"  // only System A holds the customer
	OnlyInSystemB  Situation = "onlyInSystemB"  // only System B holds the customer
	CosmeticOnly   Situation = "cosmeticOnly"   // in both, differing only in ways normalisation erases (in sync)
)

// Situations lists every Situation in Mix order.
func Situations() []Situation {
	return []Situation{InSync, ConflictANewer, ConflictBNewer, OnlyInSystemA, OnlyInSystemB, CosmeticOnly}
}

const numSituations = 6

// Mix gives the fraction of generated customers in each situation. The
// fractions are non-negative and sum to 1.
type Mix struct {
	InSync         float64 `json:"inSync"`
	ConflictANewer float64 `json:"conflictANewer"`
	ConflictBNewer float64 `json:"conflictBNewer"`
	OnlyInSystemA  float64 `json:"onlyInSystemA"`
	OnlyInSystemB  float64 `json:"onlyInSystemB"`
	CosmeticOnly   float64 `json:"cosmeticOnly"`
}

// DefaultMix returns the default mix: 90% in sync, 2% conflicting with System
// A newer, 2% with System B newer, 1.5% only in System A, 1.5% only in System
// B, 3% differing only cosmetically (so 10% not identical, 7% not in sync).
func DefaultMix() Mix {
	return Mix{InSync: 0.90, ConflictANewer: 0.02, ConflictBNewer: 0.02, OnlyInSystemA: 0.015, OnlyInSystemB: 0.015, CosmeticOnly: 0.03}
}

func (m *Mix) fields() [numSituations]*float64 {
	return [...]*float64{&m.InSync, &m.ConflictANewer, &m.ConflictBNewer, &m.OnlyInSystemA, &m.OnlyInSystemB, &m.CosmeticOnly}
}

func (m Mix) fractions() [numSituations]float64 {
	var f [numSituations]float64
	for i, p := range m.fields() {
		f[i] = *p
	}
	return f
}

// mixTolerance is how far from 1 the fractions' sum may be.
const mixTolerance = 1e-9

// Validate reports whether m is usable: every fraction finite, in [0, 1],
// and the sum 1.
func (m Mix) Validate() error {
	sum := 0.0
	for i, f := range m.fractions() {
		if math.IsNaN(f) || f < 0 || f > 1 {
			return fmt.Errorf("%w: mix fraction %s=%v is not between 0 and 1", ErrInvalidConfig, Situations()[i], f)
		}
		sum += f
	}
	if math.Abs(sum-1) > mixTolerance {
		return fmt.Errorf("%w: mix fractions sum to %v, want 1", ErrInvalidConfig, sum)
	}
	return nil
}

// String renders m in ParseMix syntax.
func (m Mix) String() string {
	parts := make([]string, 0, numSituations)
	for i, f := range m.fractions() {
		parts = append(parts, string(Situations()[i])+"="+strconv.FormatFloat(f, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

// ParseMix parses comma-separated situation=fraction pairs (for example
// "conflictANewer=0.05,conflictBNewer=0.05"); a fraction may also be written
// as a percentage ("5%"). Situations not named keep DefaultMix's fraction,
// except inSync, which, when not named, takes whatever the others leave.
func ParseMix(text string) (Mix, error) {
	m := DefaultMix()
	fields := m.fields()
	named := [numSituations]bool{}
	for tok := range strings.SplitSeq(text, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		name, val, ok := strings.Cut(tok, "=")
		name = strings.TrimSpace(name)
		i := slices.Index(Situations(), Situation(name))
		if !ok || i < 0 {
			return Mix{}, fmt.Errorf("%w: mix entry %q: want situation=fraction, situation one of %s", ErrInvalidConfig, tok, situationNames())
		}
		if named[i] {
			return Mix{}, fmt.Errorf("%w: mix names %s twice", ErrInvalidConfig, name)
		}
		f, err := parseFraction(strings.TrimSpace(val))
		if err != nil {
			return Mix{}, fmt.Errorf("%w: mix entry %q: %v", ErrInvalidConfig, tok, err)
		}
		*fields[i] = f
		named[i] = true
	}
	if !named[0] {
		rest := 1.0
		for i := 1; i < numSituations; i++ {
			rest -= *fields[i]
		}
		if rest < 0 && rest > -mixTolerance {
			rest = 0
		}
		m.InSync = rest
	}
	if err := m.Validate(); err != nil {
		return Mix{}, err
	}
	return m, nil
}

func situationNames() string {
	names := make([]string, 0, numSituations)
	for _, s := range Situations() {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

func parseFraction(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if pct {
		f /= 100
	}
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("%v is not between 0 and 1 (or 0%% and 100%%)", f)
	}
	return f, nil
}

// Apportion returns how many of n customers fall in each situation:
// floor(fraction*n) each, the remainder handed out by the largest fractional
// parts (ties in Mix order). The counts sum to n; the generator produces
// exactly these counts.
func (m Mix) Apportion(n int) map[Situation]int {
	c := m.counts(n)
	out := make(map[Situation]int, numSituations)
	for i, s := range Situations() {
		out[s] = c[i]
	}
	return out
}

func (m Mix) counts(n int) [numSituations]int {
	var c [numSituations]int
	var rem [numSituations]float64
	left := n
	for i, f := range m.fractions() {
		exact := f * float64(n)
		c[i] = int(math.Floor(exact))
		rem[i] = exact - float64(c[i])
		left -= c[i]
	}
	order := []int{0, 1, 2, 3, 4, 5}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rem[a] > rem[b]:
			return -1
		case rem[a] < rem[b]:
			return 1
		}
		return 0
	})
	for k := 0; left > 0; k = (k + 1) % numSituations {
		c[order[k]]++
		left--
	}
	for k := numSituations - 1; left < 0; k = (k + numSituations - 1) % numSituations {
		if c[order[k]] > 0 { // only when the fractions sum to a hair over 1
			c[order[k]]--
			left++
		}
	}
	return c
}

// Config says what to generate.
type Config struct {
	Seed int64 // the same seed (and the rest of Config) gives the same data, byte for byte
	N    int   // customers generated (the union of both systems), not counting showcase ones
	Mix  Mix   // situation fractions; the zero Mix means DefaultMix

	// ExportedAt is System A's snapshot time (snapshot_meta exported_at);
	// System A's lastUpdated values are never later. Zero means
	// 2025-06-01T02:00:00Z.
	ExportedAt time.Time
	// Now is the time the data is read; System B's lastUpdated values are
	// never later. Zero means ExportedAt + 10h.
	Now time.Time

	// Showcase adds the fixed customers documented with the Showcase
	// constants, on top of the N generated ones.
	Showcase bool
}

// MaxN is the largest N the generator accepts.
const MaxN = 100_000_000

// NewConfig returns a Config for seed and n with every default filled in.
func NewConfig(seed int64, n int) Config {
	return Config{Seed: seed, N: n}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix()
	}
	if c.ExportedAt.IsZero() {
		c.ExportedAt = time.Date(2025, 6, 1, 2, 0, 0, 0, time.UTC)
	}
	c.ExportedAt = c.ExportedAt.UTC().Truncate(time.Second)
	if c.Now.IsZero() {
		c.Now = c.ExportedAt.Add(10 * time.Hour)
	}
	c.Now = c.Now.UTC().Truncate(time.Second)
	return c
}

// Validate reports whether c (with defaults filled) is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.N < 0 || c.N > MaxN:
		return fmt.Errorf("%w: n=%d, want 0..%d", ErrInvalidConfig, c.N, MaxN)
	case c.Now.Before(c.ExportedAt):
		return fmt.Errorf("%w: now %s is before exportedAt %s", ErrInvalidConfig, c.Now.Format(time.RFC3339), c.ExportedAt.Format(time.RFC3339))
	case c.ExportedAt.Year() < 2000:
		return fmt.Errorf("%w: exportedAt %s is before the year 2000", ErrInvalidConfig, c.ExportedAt.Format(time.RFC3339))
	case c.Now.Year() > 9999:
		return fmt.Errorf("%w: now is after the year 9999 (not RFC 3339)", ErrInvalidConfig)
	}
	return c.Mix.Validate()
}
