package systema

import (
	"context"
	"fmt"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
)

// benchRows is the size of the benchmark snapshot.
const benchRows = 100_000

// benchRecords returns n realistic records: mostly ASCII emails, some with
// upper case, 2% with non-ASCII letters, half of those upper case.
func benchRecords(n int) []*merge.Record {
	recs := genRecords(n)
	for i, r := range recs {
		var local string
		switch {
		case i%100 == 0:
			local = fmt.Sprintf("Émile.Zola%07d", i)
		case i%100 == 50:
			local = fmt.Sprintf("zoë.jansen%07d", i)
		case i%10 == 3:
			local = fmt.Sprintf("First.Last%07d", i)
		default:
			local = fmt.Sprintf("first.last%07d", i)
		}
		r.Values[merge.FieldEmail] = local + "@example.com"
	}
	return recs
}

// benchSnapshot writes a benchRows snapshot of benchRecords into
// b.TempDir() and opens it.
func benchSnapshot(b *testing.B) (*Snapshot, []string) {
	b.Helper()
	recs := benchRecords(benchRows)
	snap := openSnap(b, writeSnap(b, b.TempDir(), recs, snapOpts{}))
	emails := make([]string, len(recs))
	for i, r := range recs {
		emails[i] = r.Email()
	}
	return snap, emails
}

// BenchmarkLookup measures point lookups (ASCII and non-ASCII keys, found).
func BenchmarkLookup(b *testing.B) {
	snap, emails := benchSnapshot(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := snap.Lookup(ctx, emails[(i*7919)%len(emails)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAll measures a full join-ordered iteration; rows/s is reported.
func BenchmarkAll(b *testing.B) {
	snap, _ := benchSnapshot(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	rows := 0
	for b.Loop() {
		n := 0
		for _, err := range snap.All(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchRows {
			b.Fatal(fmt.Sprintf("iterated %d rows, want %d", n, benchRows))
		}
		rows += n
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkOpen measures validating and opening a benchRows snapshot (the
// cold-start cost after the download), without and with quick_check.
func BenchmarkOpen(b *testing.B) {
	path := writeSnap(b, b.TempDir(), benchRecords(benchRows), snapOpts{})
	for _, check := range []bool{false, true} {
		b.Run(fmt.Sprintf("integrityCheck=%v", check), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				s, err := openSnapshot(ctx, path, Version{}, openOptions{integrityCheck: check})
				if err != nil {
					b.Fatal(err)
				}
				s.keep = true
				s.close()
			}
		})
	}
}
