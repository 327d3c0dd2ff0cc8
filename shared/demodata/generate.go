package demodata

import (
	"cmp"
	"iter"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/acme/unified-customer-service/shared/merge"
)

// Pair is one customer as the two systems hold it, with what the generator
// decided about it. A is nil for a customer only in System B, B nil for one
// only in System A. Every Pair holds fresh records the caller may keep.
type Pair struct {
	Key       string // the join key (merge.Key of either email)
	A, B      *merge.Record
	Situation Situation
	// Conflicts lists, in field order, the fields the generator made really
	// differ (values normalisation cannot reconcile, or a value absent on one
	// side); empty unless Situation is ConflictANewer or ConflictBNewer.
	Conflicts []merge.FieldID
	Showcase  bool // one of the fixed, documented showcase customers
}

// Generator streams a Config's customers in join-key order. It holds no
// per-customer state: a million customers need no big in-memory list, and
// every iteration yields the same customers.
type Generator struct {
	cfg    Config
	counts [numSituations]int
	names  []namePair // every first x last name, sorted by email prefix
	width  int        // digits of the zero-padded customer index in emails
}

// namePair is one first and last name with the email prefix they give
// ("first.last.", slugs lower-cased).
type namePair struct {
	first, last, prefix string
}

// New returns a Generator for cfg, defaults filled (see Config).
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	g := &Generator{cfg: cfg, counts: cfg.Mix.counts(cfg.N), width: len(strconv.Itoa(max(cfg.N-1, 0)))}
	g.names = make([]namePair, 0, len(firstNames)*len(lastNames))
	for _, f := range firstNames {
		for _, l := range lastNames {
			g.names = append(g.names, namePair{first: f, last: l, prefix: slug(f) + "." + slug(l) + "."})
		}
	}
	// The prefixes contain no '.' but their last byte, so sorting prefixes
	// sorts every email that starts with them (slugs hold letters only).
	slices.SortStableFunc(g.names, func(a, b namePair) int { return cmp.Compare(a.prefix, b.prefix) })
	return g, nil
}

// Config returns the generator's configuration, defaults filled.
func (g *Generator) Config() Config { return g.cfg }

// slug is a name as an email local-part piece: lower-cased letters only.
func slug(name string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, name)
}

// Pairs streams every customer (the showcase ones included when configured)
// in ascending join-key order, byte-wise, as merge.Key defines it.
func (g *Generator) Pairs() iter.Seq[Pair] {
	return func(yield func(Pair) bool) {
		var show []Pair
		if g.cfg.Showcase {
			show = showcasePairs(g.cfg)
		}
		s := g.newStream()
		for i := range g.cfg.N {
			p := s.next(i)
			for len(show) > 0 && show[0].Key < p.Key {
				if !yield(show[0]) {
					return
				}
				show = show[1:]
			}
			if !yield(p) {
				return
			}
		}
		for _, p := range show {
			if !yield(p) {
				return
			}
		}
	}
}

// SystemA streams System A's records in join-key order.
func (g *Generator) SystemA() iter.Seq[*merge.Record] {
	return func(yield func(*merge.Record) bool) {
		for p := range g.Pairs() {
			if p.A != nil && !yield(p.A) {
				return
			}
		}
	}
}

// SystemB streams System B's records in join-key order.
func (g *Generator) SystemB() iter.Seq[*merge.Record] {
	return func(yield func(*merge.Record) bool) {
		for p := range g.Pairs() {
			if p.B != nil && !yield(p.B) {
				return
			}
		}
	}
}

// stream is one pass over the generated customers.
type stream struct {
	g    *Generator
	rng  *rand.Rand
	left [numSituations]int // customers still to generate per situation
	buf  []byte
}

func (g *Generator) newStream() *stream {
	return &stream{
		g:    g,
		rng:  rand.New(rand.NewPCG(uint64(g.cfg.Seed), 0x5eed_0fde_c0da_7a00)),
		left: g.counts,
		buf:  make([]byte, 0, 96),
	}
}

const day = 24 * time.Hour

// next generates customer i. The situation is drawn with probability
// proportional to what is left of each count (selection sampling), so the
// counts come out exact.
func (s *stream) next(i int) Pair {
	rng := s.rng
	x := rng.IntN(s.g.cfg.N - i)
	sit := 0
	for x >= s.left[sit] {
		x -= s.left[sit]
		sit++
	}
	s.left[sit]--
	p := Pair{Situation: Situations()[sit]}

	// Names advance monotonically with i, a random step at a time, so emails
	// (name prefix, then the zero-padded index) come out in key order.
	names := s.g.names
	ni := int((float64(i) + rng.Float64()) * float64(len(names)) / float64(s.g.cfg.N))
	np := names[min(ni, len(names)-1)]

	b := append(s.buf[:0], np.prefix...)
	b = appendPadded(b, i, s.g.width)
	if rng.IntN(100) < 6 {
		b = append(b, '+')
		b = append(b, emailTags[rng.IntN(len(emailTags))]...)
	}
	b = append(b, '@')
	b = append(b, emailDomains[rng.IntN(10)/7]...) // 70% .com, 30% .org
	s.buf = b
	p.Key = string(b)

	c := &countries[rng.IntN(len(countries))]
	var base merge.Record
	base.Values[merge.FieldEmail] = emailStyle(p.Key, rng.IntN(100))
	base.Values[merge.FieldFirstName] = np.first
	base.Values[merge.FieldLastName] = np.last
	for f := merge.FieldPhone; f < merge.FieldID(merge.NumFields); f++ {
		base.Values[f] = fresh(f, c, rng)
	}
	base.Values[merge.FieldCountry] = c.code
	if rng.IntN(100) < 5 {
		base.Values[merge.FieldPhone] = ""
	}
	if rng.IntN(100) < 10 {
		base.Values[merge.FieldMarketingOptIn] = ""
	}
	if rng.IntN(100) < 5 {
		base.Values[merge.FieldLoyaltyTier] = ""
	}

	exported := s.g.cfg.ExportedAt
	t0 := exported.Add(-day - time.Duration(rng.Int64N(int64(729*day/time.Second)))*time.Second)
	upTo := func(t time.Time, limit time.Duration) time.Time { // t plus 0..limit (whole seconds)
		return t.Add(time.Duration(rng.Int64N(int64(limit/time.Second)+1)) * time.Second)
	}
	sinceT0 := s.g.cfg.Now.Sub(t0)

	a, bb := base, base
	a.LastUpdated, bb.LastUpdated = t0, t0
	switch p.Situation {
	case InSync:
		bb.LastUpdated = upTo(t0, min(day, sinceT0))
	case CosmeticOnly:
		bb.LastUpdated = upTo(t0, min(day, sinceT0))
		applyCosmetics(&a, &bb, rng, 1+rng.IntN(3), nil)
	case ConflictANewer:
		bb.LastUpdated = t0.Add(-time.Hour - time.Duration(rng.Int64N(int64(180*day/time.Second)))*time.Second)
		p.Conflicts = perturb(&a, &bb, c, rng)
	case ConflictBNewer:
		bb.LastUpdated = t0.Add(time.Second).Add(time.Duration(rng.Int64N(int64((sinceT0-time.Second)/time.Second))) * time.Second)
		p.Conflicts = perturb(&bb, &a, c, rng)
	case OnlyInSystemB:
		bb.LastUpdated = upTo(t0, sinceT0)
	}
	if p.Situation != OnlyInSystemB {
		p.A = &a
	}
	if p.Situation != OnlyInSystemA {
		p.B = &bb
	}
	return p
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(b []byte, n, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], int64(n), 10)
	for range width - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// emailStyle renders a key the way a system might have stored it: as is
// (80%), with the name parts capitalised (12%), or with an upper-case domain
// (8%). Only ASCII letters change case, so SQLite's NOCASE order of the
// emails stays their key order.
func emailStyle(key string, pct int) string {
	switch {
	case pct < 80:
		return key
	case pct < 92:
		return titleASCII(key)
	default:
		return upperDomain(key)
	}
}

func titleASCII(email string) string {
	b := []byte(email)
	start := true
	for i, c := range b {
		if c == '@' {
			break
		}
		if start && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		start = c == '.'
	}
	return string(b)
}

func upperDomain(email string) string {
	local, domain, _ := strings.Cut(email, "@")
	return local + "@" + upperASCII(domain)
}

func upperASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// fresh returns a random value of field f for a customer in country c. Every
// field has at least two possible values, all distinct after normalisation.
func fresh(f merge.FieldID, c *country, rng *rand.Rand) string {
	switch f {
	case merge.FieldFirstName:
		return firstNames[rng.IntN(len(firstNames))]
	case merge.FieldLastName:
		return lastNames[rng.IntN(len(lastNames))]
	case merge.FieldPhone:
		return fillPattern(c.phone, rng)
	case merge.FieldAddressLine1:
		street, num := c.streets[rng.IntN(len(c.streets))], strconv.Itoa(1+rng.IntN(199))
		if c.numberFirst {
			return num + " " + street
		}
		return street + " " + num
	case merge.FieldCity:
		return c.cities[rng.IntN(len(c.cities))]
	case merge.FieldPostalCode:
		return fillPattern(c.postal, rng)
	case merge.FieldCountry:
		return countries[rng.IntN(len(countries))].code
	case merge.FieldMarketingOptIn:
		return strconv.FormatBool(rng.IntN(2) == 0)
	case merge.FieldLoyaltyTier:
		x := rng.IntN(1000)
		i := 0
		for x >= tierWeights[i] {
			i++
		}
		return tiers[i]
	}
	return ""
}

// fillPattern replaces each '#' of pattern with a random digit and each 'A'
// with a random upper-case letter.
func fillPattern(pattern string, rng *rand.Rand) string {
	b := []byte(pattern)
	for i, ch := range b {
		switch ch {
		case '#':
			b[i] = '0' + byte(rng.IntN(10))
		case 'A':
			b[i] = 'A' + byte(rng.IntN(26))
		}
	}
	return string(b)
}

// conflictFields are the fields a conflict may touch (all but the email).
var conflictFields = [...]merge.FieldID{
	merge.FieldFirstName, merge.FieldLastName, merge.FieldPhone, merge.FieldAddressLine1,
	merge.FieldCity, merge.FieldPostalCode, merge.FieldCountry, merge.FieldMarketingOptIn, merge.FieldLoyaltyTier,
}

// pickFields returns k distinct fields of conflictFields, in field order.
func pickFields(rng *rand.Rand, k int) []merge.FieldID {
	all := conflictFields
	for i := range k { // partial Fisher-Yates
		j := i + rng.IntN(len(all)-i)
		all[i], all[j] = all[j], all[i]
	}
	out := slices.Clone(all[:k])
	slices.Sort(out)
	return out
}

// perturb makes 1-3 fields of newer and older really differ: the newer
// record gets a new value (or, now and then, one side loses its value; a
// value absent in both gets one on the newer side). It sometimes adds a
// cosmetic difference on another field too. It returns the fields it
// changed, in field order.
func perturb(newer, older *merge.Record, c *country, rng *rand.Rand) []merge.FieldID {
	fields := pickFields(rng, 1+rng.IntN(3))
	for _, f := range fields {
		v := newer.Values[f]
		switch {
		case v == "":
			newer.Values[f] = fresh(f, c, rng)
		case rng.IntN(100) < 12:
			if rng.IntN(2) == 0 {
				newer.Values[f] = ""
			} else {
				older.Values[f] = ""
			}
		default:
			for newer.Values[f] == v {
				newer.Values[f] = fresh(f, c, rng)
			}
		}
	}
	if rng.IntN(100) < 30 {
		applyCosmetics(newer, older, rng, 1, fields)
	}
	return fields
}
