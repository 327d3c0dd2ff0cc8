package merge

import "testing"

// sink keeps benchmark results alive.
var sink int

func BenchmarkDiff(b *testing.B) {
	ra := typicalA(b)
	cases := []struct {
		name string
		b    *Record
	}{
		{"in-sync-identical", func() *Record { r := *ra; return &r }()},
		{"in-sync-cosmetic", typicalBInSync(b)},
		{"conflicting", typicalBConflict(b)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink += len(Diff(ra, c.b))
			}
		})
	}
	b.Run("conflicting-reused-buffer", func(b *testing.B) {
		b.ReportAllocs()
		rb := typicalBConflict(b)
		buf := make([]Difference, 0, NumFields)
		for b.Loop() {
			buf = AppendDiff(buf[:0], ra, rb)
			sink += len(buf)
		}
	})
}

func BenchmarkMerge(b *testing.B) {
	ra, rules := typicalA(b), DefaultRules()
	for _, c := range []struct {
		name string
		b    *Record
	}{{"in-sync-cosmetic", typicalBInSync(b)}, {"conflicting", typicalBConflict(b)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res := Merge(ra, c.b, rules)
				sink += len(res.Conflicts)
			}
		})
	}
}

func BenchmarkParseEmail(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		k, _ := ParseEmail("Anna.Schmidt+news@Example.com")
		sink += len(k)
	}
}

func BenchmarkMarshalJSON(b *testing.B) {
	r := typicalA(b)
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
		sink += len(buf)
	}
}
