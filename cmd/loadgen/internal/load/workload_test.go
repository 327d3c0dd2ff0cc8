package load

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    Mix
		wantErr bool
	}{
		{"60/20/20", Mix{60, 20, 20}, false},
		{" 1 / 0 / 3 ", Mix{1, 0, 3}, false},
		{"100/0/0", Mix{100, 0, 0}, false},
		{"60/20", Mix{}, true},
		{"60/20/20/0", Mix{}, true},
		{"0/0/0", Mix{}, true},
		{"-1/20/20", Mix{}, true},
		{"a/b/c", Mix{}, true},
		{"2000/1/1", Mix{}, true},
		{"", Mix{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMix(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMix(%q) error = %v, want error %t", tt.in, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadWorkload) {
				t.Errorf("error %v does not wrap ErrBadWorkload", err)
			}
			if got != tt.want {
				t.Errorf("ParseMix(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if err == nil && got.String() != strings.ReplaceAll(tt.in, " ", "") {
				t.Errorf("String() = %q, want %q", got.String(), strings.ReplaceAll(tt.in, " ", ""))
			}
		})
	}
}

func testPools() Pools {
	return Pools{
		Existing:    {"e0@example.com", "e1@example.com", "e2@example.com"},
		Missing:     {"m0@example.net", "m1@example.net"},
		Conflicting: {"c0@example.com"},
	}
}

func TestWorkloadFollowsTheMixExactly(t *testing.T) {
	tests := []struct {
		mix   Mix
		picks int
		want  [numKinds]int
	}{
		{Mix{60, 20, 20}, 1000, [numKinds]int{600, 200, 200}},
		{Mix{3, 1, 1}, 1000, [numKinds]int{600, 200, 200}},
		{Mix{1, 1, 1}, 999, [numKinds]int{333, 333, 333}},
		{Mix{100, 0, 0}, 50, [numKinds]int{50, 0, 0}},
		{Mix{0, 7, 3}, 100, [numKinds]int{0, 70, 30}},
	}
	for _, tt := range tests {
		t.Run(tt.mix.String(), func(t *testing.T) {
			w, err := NewWorkload(tt.mix, testPools())
			if err != nil {
				t.Fatal(err)
			}
			var got [numKinds]int
			longest, run := 0, 0
			var prev Kind = -1
			for n := range uint64(tt.picks) {
				tg := w.Pick(n)
				got[tg.Kind]++
				if !slices.Contains(testPools()[tg.Kind], tg.Email) {
					t.Fatalf("Pick(%d) = %s %q, not in that kind's pool", n, tg.Kind, tg.Email)
				}
				if tg.Kind == prev {
					run++
				} else {
					run, prev = 1, tg.Kind
				}
				longest = max(longest, run)
			}
			if got != tt.want {
				t.Errorf("kinds over %d picks = %v, want %v", tt.picks, got, tt.want)
			}
			// 60/20/20 is spread out (existing at most twice in a row), not in blocks.
			if tt.mix == (Mix{60, 20, 20}) && longest > 2 {
				t.Errorf("longest run of one kind = %d, want at most 2", longest)
			}
		})
	}
}

func TestWorkloadIsDeterministicAndSpreadsOverThePool(t *testing.T) {
	pools := Pools{Existing: make([]string, 100), Missing: {"m@example.net"}, Conflicting: {"c@example.com"}}
	for i := range pools[Existing] {
		pools[Existing][i] = "e" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + "@example.com"
	}
	a, err := NewWorkload(Mix{1, 0, 0}, pools)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewWorkload(Mix{1, 0, 0}, pools)
	seen := map[string]int{}
	for n := range uint64(10000) {
		x, y := a.Pick(n), b.Pick(n)
		if x != y {
			t.Fatalf("Pick(%d) differs between two equal workloads: %v, %v", n, x, y)
		}
		seen[x.Email]++
	}
	if len(seen) != 100 {
		t.Errorf("10,000 picks used %d of 100 emails, want all", len(seen))
	}
	for e, c := range seen {
		if c < 50 || c > 150 { // expected 100 each
			t.Errorf("email %q picked %d times in 10,000, want about 100", e, c)
		}
	}
}

func TestNewWorkloadRejects(t *testing.T) {
	tests := []struct {
		name  string
		mix   Mix
		pools Pools
	}{
		{"all weights zero", Mix{0, 0, 0}, testPools()},
		{"negative weight", Mix{-1, 1, 1}, testPools()},
		{"a weighted kind without emails", Mix{60, 20, 20}, Pools{Existing: {"e@example.com"}, Missing: {"m@example.net"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewWorkload(tt.mix, tt.pools); !errors.Is(err, ErrBadWorkload) {
				t.Errorf("NewWorkload error = %v, want ErrBadWorkload", err)
			}
		})
	}
	if _, err := NewWorkload(Mix{1, 0, 0}, Pools{Existing: {"e@example.com"}}); err != nil {
		t.Errorf("a zero-weight kind may have no emails: %v", err)
	}
}

// situations maps every demo customer's key to its situation.
func situations(t *testing.T, cfg demodata.Config) map[string]demodata.Situation {
	t.Helper()
	g, err := demodata.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]demodata.Situation{}
	for p := range g.Pairs() {
		m[p.Key] = p.Situation
	}
	return m
}

func TestDemoPoolsPickTheRightCustomers(t *testing.T) {
	cfg := DemoConfig()
	sit := situations(t, cfg)
	pools, err := DemoPools(cfg, 100000)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[Kind][]demodata.Situation{
		Existing:    {demodata.InSync, demodata.CosmeticOnly, demodata.OnlyInSystemA},
		Conflicting: {demodata.ConflictANewer, demodata.ConflictBNewer},
	}
	for _, k := range Kinds() {
		if len(pools[k]) == 0 {
			t.Fatalf("no %s customers", k)
		}
		for _, e := range pools[k] {
			s, ok := sit[merge.Key(e)]
			switch {
			case k == Missing && ok:
				t.Errorf("missing customer %q exists in the demo data (%s)", e, s)
			case k == Missing && !strings.HasSuffix(e, "@"+MissingDomain):
				t.Errorf("missing customer %q is not at %s", e, MissingDomain)
			case k != Missing && !slices.Contains(allowed[k], s):
				t.Errorf("%s customer %q is %q in the demo data", k, e, s)
			}
		}
	}
	// With room for everyone, every eligible customer is there.
	want := map[Kind]int{}
	for _, s := range sit {
		for _, k := range []Kind{Existing, Conflicting} {
			if slices.Contains(allowed[k], s) {
				want[k]++
			}
		}
	}
	for _, k := range []Kind{Existing, Conflicting} {
		if len(pools[k]) != want[k] {
			t.Errorf("%d %s customers, want %d", len(pools[k]), k, want[k])
		}
	}
	for _, e := range []string{demodata.ShowcaseInSync, demodata.ShowcaseOnlyInSystemA} {
		if !slices.Contains(pools[Existing], e) {
			t.Errorf("showcase %q is not among the existing customers", e)
		}
	}
	if !slices.Contains(pools[Conflicting], demodata.ShowcaseConflict) {
		t.Errorf("showcase conflict is not among the conflicting customers")
	}
	if slices.Contains(pools[Existing], demodata.ShowcaseOnlyInSystemB) {
		t.Errorf("a customer only in System B is counted as existing")
	}
}

func TestDemoPoolsAreBoundedAndDeterministic(t *testing.T) {
	cfg := DemoConfig()
	a, err := DemoPools(cfg, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DemoPools(cfg, 10)
	for _, k := range Kinds() {
		if len(a[k]) != 10 {
			t.Errorf("%s pool holds %d, want 10", k, len(a[k]))
		}
		if strings.Join(a[k], ",") != strings.Join(b[k], ",") {
			t.Errorf("%s pool differs between two calls", k)
		}
	}
	// The reservoir spreads over the data set: not just the first ten in key order.
	all, err := DemoPools(cfg, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a[Existing], all[Existing][:10]) {
		t.Errorf("existing pool is the first ten customers in key order, want a sample of all")
	}
	if _, err := DemoPools(cfg, 0); !errors.Is(err, ErrBadWorkload) {
		t.Errorf("pool size 0: error %v, want ErrBadWorkload", err)
	}
	if _, err := DemoPools(demodata.Config{N: -1}, 10); err == nil {
		t.Error("an invalid demo config gave no error")
	}
}

func TestReadTruth(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	truth := demodata.Truth{Seed: 7, N: 123, Showcase: true, Mix: demodata.DefaultMix(), ExportedAt: at, Now: at.Add(time.Hour)}
	b, err := json.Marshal(truth)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "truth.json")
	if err := os.WriteFile(good, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ReadTruth(good)
	if err != nil {
		t.Fatal(err)
	}
	want := demodata.Config{Seed: 7, N: 123, Showcase: true, Mix: demodata.DefaultMix(), ExportedAt: at, Now: at.Add(time.Hour)}
	if cfg != want {
		t.Errorf("ReadTruth = %+v, want %+v", cfg, want)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"seed":1,"n":-5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bad, filepath.Join(dir, "absent.json")} {
		if _, err := ReadTruth(p); err == nil {
			t.Errorf("ReadTruth(%s) gave no error", filepath.Base(p))
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Existing: "existing", Missing: "missing", Conflicting: "conflicting", Kind(9): "kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}
