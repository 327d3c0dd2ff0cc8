package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/acme/unified-customer-service/shared/demodata"
)

// ErrBadWorkload is returned (wrapped) for a mix or pools that cannot make a
// workload.
var ErrBadWorkload = errors.New("load: bad workload")

// Kind is what a lookup targets.
type Kind int

// The kinds of lookup, in Mix order.
const (
	// Existing customers are held by System A (in sync with System B, or
	// differing only cosmetically, or only in System A): 200 even when
	// System B fails.
	Existing Kind = iota
	// Missing customers are in neither system: 404.
	Missing
	// Conflicting customers are in both systems with a real field-level
	// conflict: 200 with conflicts (or partial when System B fails).
	Conflicting
	numKinds
)

// Kinds lists every Kind in Mix order.
func Kinds() []Kind { return []Kind{Existing, Missing, Conflicting} }

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case Existing:
		return "existing"
	case Missing:
		return "missing"
	case Conflicting:
		return "conflicting"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText renders the kind's name (for JSON map keys).
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range Kinds() {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("%w: no kind %q", ErrBadWorkload, b)
}

// Mix gives the weight of each Kind, in Kinds order (60/20/20 is 60%
// existing, 20% missing, 20% conflicting).
type Mix [numKinds]int

// DefaultMix is 60% existing, 20% missing, 20% conflicting customers.
var DefaultMix = Mix{60, 20, 20}

// ParseMix parses "existing/missing/conflicting" weights, e.g. "60/20/20".
func ParseMix(s string) (Mix, error) {
	parts := strings.Split(s, "/")
	if len(parts) != int(numKinds) {
		return Mix{}, fmt.Errorf("%w: mix %q: want three weights existing/missing/conflicting, e.g. 60/20/20", ErrBadWorkload, s)
	}
	var m Mix
	for i, p := range parts {
		w, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || w < 0 || w > 1000 {
			return Mix{}, fmt.Errorf("%w: mix %q: weight %q is not a whole number 0..1000", ErrBadWorkload, s, p)
		}
		m[i] = w
	}
	if m[0]+m[1]+m[2] == 0 {
		return Mix{}, fmt.Errorf("%w: mix %q: every weight is zero", ErrBadWorkload, s)
	}
	return m, nil
}

// String renders m in ParseMix syntax.
func (m Mix) String() string { return fmt.Sprintf("%d/%d/%d", m[0], m[1], m[2]) }

// Pools holds the emails of each Kind.
type Pools [numKinds][]string

// MissingDomain is the domain of the made-up missing customers; the demo
// data generator only uses example.com and example.org.
const MissingDomain = "example.net"

// DemoConfig returns the demodata configuration the local stack seeds by
// default (cmd/local's demo package: seed 1, 2,000 customers, showcase
// customers included).
func DemoConfig() demodata.Config {
	return demodata.Config{Seed: 1, N: 2000, Showcase: true}
}

// ReadTruth reads a data set's truth.json (demodata.TruthFile) and returns
// the generator configuration that made it.
func ReadTruth(path string) (demodata.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return demodata.Config{}, fmt.Errorf("load: demo truth: %w", err)
	}
	var t demodata.Truth
	if err := json.Unmarshal(b, &t); err != nil {
		return demodata.Config{}, fmt.Errorf("load: demo truth %s: %w", path, err)
	}
	cfg := demodata.Config{Seed: t.Seed, N: t.N, Mix: t.Mix, ExportedAt: t.ExportedAt, Now: t.Now, Showcase: t.Showcase}
	if err := cfg.Validate(); err != nil {
		return demodata.Config{}, fmt.Errorf("load: demo truth %s: %w", path, err)
	}
	return cfg, nil
}

// DemoPools streams cfg's customers and keeps at most perKind emails of
// each kind (a seeded reservoir sample, so a big data set is spread over
// evenly and memory stays bounded): System A's email for existing customers
// (as System A spells it: lookups are case-insensitive), System B's for
// conflicting ones, and perKind made-up addresses at MissingDomain for
// missing ones. Customers only in System B are left out: they are neither
// existing in System A nor missing.
func DemoPools(cfg demodata.Config, perKind int) (Pools, error) {
	if perKind < 1 {
		return Pools{}, fmt.Errorf("%w: pool size %d, want at least 1", ErrBadWorkload, perKind)
	}
	g, err := demodata.New(cfg)
	if err != nil {
		return Pools{}, fmt.Errorf("load: demo pools: %w", err)
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x10adc0de))
	var p Pools
	var seen [numKinds]int
	keep := func(k Kind, email string) {
		seen[k]++
		if len(p[k]) < perKind {
			p[k] = append(p[k], email)
		} else if j := rng.IntN(seen[k]); j < perKind {
			p[k][j] = email
		}
	}
	for pair := range g.Pairs() {
		switch pair.Situation {
		case demodata.InSync, demodata.CosmeticOnly, demodata.OnlyInSystemA:
			keep(Existing, pair.A.Email())
		case demodata.ConflictANewer, demodata.ConflictBNewer:
			keep(Conflicting, pair.B.Email())
		}
	}
	for i := range perKind {
		p[Missing] = append(p[Missing], fmt.Sprintf("loadgen.missing.%06d@%s", i, MissingDomain))
	}
	return p, nil
}

// Target is one request's customer.
type Target struct {
	Kind  Kind
	Email string
}

// Workload picks each request's target: the kinds follow the mix exactly
// over every cycle of its schedule (spread out, not in runs), and the email
// within a kind is drawn by a hash of the request number. It is
// deterministic and safe for concurrent use.
type Workload struct {
	schedule []Kind
	pools    Pools
	mix      Mix
}

// NewWorkload returns a Workload for m over p. Every kind m gives weight
// must have emails in p.
func NewWorkload(m Mix, p Pools) (*Workload, error) {
	g := 0
	for _, k := range Kinds() {
		if m[k] < 0 {
			return nil, fmt.Errorf("%w: negative weight for %s", ErrBadWorkload, k)
		}
		if m[k] > 0 && len(p[k]) == 0 {
			return nil, fmt.Errorf("%w: mix %s wants %s customers and there are none", ErrBadWorkload, m, k)
		}
		g = gcd(g, m[k])
	}
	if g == 0 {
		return nil, fmt.Errorf("%w: every weight is zero", ErrBadWorkload)
	}
	w := &Workload{pools: p, mix: m}
	// Smooth weighted round robin over the reduced weights.
	var cur [numKinds]int
	total := 0
	for _, k := range Kinds() {
		total += m[k] / g
	}
	for range total {
		best := Kind(-1)
		for _, k := range Kinds() {
			cur[k] += m[k] / g
			if best < 0 || cur[k] > cur[best] {
				best = k
			}
		}
		cur[best] -= total
		w.schedule = append(w.schedule, best)
	}
	return w, nil
}

// Mix returns the workload's mix.
func (w *Workload) Mix() Mix { return w.mix }

// Pick returns the target of request number n (0, 1, 2, ...).
func (w *Workload) Pick(n uint64) Target {
	k := w.schedule[n%uint64(len(w.schedule))]
	pool := w.pools[k]
	return Target{Kind: k, Email: pool[splitmix64(n)%uint64(len(pool))]}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// splitmix64 is a fast, well-mixed hash of n.
func splitmix64(n uint64) uint64 {
	z := n + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
