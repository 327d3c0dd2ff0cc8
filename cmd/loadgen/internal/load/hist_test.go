package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, math.MaxInt64}
	for range 10000 {
		values = append(values, rng.Uint64N(math.MaxInt64))
		values = append(values, rng.Uint64N(1<<24))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside 0..%d", v, i, nBuckets-1)
		}
		low, width := bucketRange(i)
		if v < low || v-low >= width {
			t.Fatalf("v=%d in bucket %d = [%d, %d+%d)", v, i, low, low, width)
		}
		if v >= subCount && width > low/subHalf {
			t.Fatalf("v=%d: bucket width %d is more than 1/%d of %d", v, width, subHalf, low)
		}
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	var next uint64
	for i := range nBuckets - 1 {
		low, width := bucketRange(i)
		if low != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, low, next)
		}
		next = low + width
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
		tol     float64 // relative
	}{
		{"empty", nil, 0.5, 0, 0},
		{"one sample is every quantile", []time.Duration{42 * time.Millisecond}, 0.99, 42 * time.Millisecond, 0},
		{"small values are exact", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5, 0},
		{"p0 is the min", []time.Duration{7 * time.Millisecond, 3 * time.Millisecond, 9 * time.Millisecond}, 0, 3 * time.Millisecond, 0},
		{"p100 is the max", []time.Duration{7 * time.Millisecond, 3 * time.Millisecond, 9 * time.Millisecond}, 1, 9 * time.Millisecond, 0},
		{"nearest rank", []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond}, 0.5, 20 * time.Millisecond, 0.01},
		{"negative counts as zero", []time.Duration{-5, -1}, 0.5, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, s := range tt.samples {
				h.Record(s)
			}
			got := h.Quantile(tt.q)
			if diff := math.Abs(float64(got - tt.want)); diff > tt.tol*float64(tt.want) {
				t.Errorf("Quantile(%v) = %v, want %v (±%.0f%%)", tt.q, got, tt.want, tt.tol*100)
			}
		})
	}
}

// TestHistogramMatchesSortedSample compares every percentile with the exact
// nearest-rank value of the sorted samples.
func TestHistogramMatchesSortedSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h Histogram
	var all []time.Duration
	for range 50000 {
		// log-normal-ish latencies from 100µs to a few seconds
		d := time.Duration(math.Exp(rng.NormFloat64()*1.5+math.Log(5e6))) + 100*time.Microsecond
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		exact := all[int(math.Ceil(q*float64(len(all))))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 0.01 {
			t.Errorf("p%v = %v, exact %v: %.2f%% off, want under 1%%", q*100, got, exact, rel*100)
		}
	}
	if h.Max() != all[len(all)-1] || h.Min() != all[0] {
		t.Errorf("min/max = %v/%v, want %v/%v", h.Min(), h.Max(), all[0], all[len(all)-1])
	}
	if h.Count() != uint64(len(all)) {
		t.Errorf("Count = %d, want %d", h.Count(), len(all))
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, both Histogram
	for i := range 1000 {
		d := time.Duration(i+1) * time.Millisecond
		both.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var empty Histogram
	a.Merge(&empty)
	a.Merge(&b)
	if a.counts != both.counts || a.Count() != both.Count() || a.Min() != both.Min() || a.Max() != both.Max() || a.Mean() != both.Mean() {
		t.Errorf("merged histogram differs from one that recorded everything: n %d/%d min %v/%v max %v/%v mean %v/%v",
			a.Count(), both.Count(), a.Min(), both.Min(), a.Max(), both.Max(), a.Mean(), both.Mean())
	}
	var into Histogram
	into.Merge(&b)
	if into.Min() != b.Min() {
		t.Errorf("merge into empty: min %v, want %v", into.Min(), b.Min())
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := range b.N {
		h.Record(time.Duration(i%100000) * time.Microsecond)
	}
}
