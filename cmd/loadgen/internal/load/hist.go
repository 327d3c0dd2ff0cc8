package load

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear, as HDR histograms are: values below subCount
// nanoseconds get a bucket each; above, every power-of-two range is split into
// subCount/2 equal buckets, so a bucket is never wider than 1/64 of its lower
// bound (under 1.6%; the midpoint reported is within 0.8%). Its size is fixed
// (about 30 KiB) whatever the number of samples.
const (
	subBits  = 7
	subCount = 1 << subBits  // 128
	subHalf  = subCount >> 1 // 64
	nBuckets = subCount + (64-subBits)*subHalf
)

// Histogram records latencies in bounded memory and answers percentiles
// with a relative error under 1%. The zero value is ready to use; it is not
// safe for concurrent use (give each worker its own and Merge them).
type Histogram struct {
	counts   [nBuckets]uint64
	n        uint64
	min, max int64
	sum      float64
}

// bucketOf returns the bucket of v (v >= 0).
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1: v >> e is in [subHalf, subCount)
	return subCount + (e-1)*subHalf + int(v>>e) - subHalf
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (low, width uint64) {
	if i < subCount {
		return uint64(i), 1
	}
	j := i - subCount
	e := j/subHalf + 1
	m := uint64(j%subHalf + subHalf)
	return m << e, 1 << e
}

// Record adds one latency; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.counts[bucketOf(uint64(v))]++
	h.n++
	h.sum += float64(v)
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest sample (exact); 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest sample (exact); 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean returns the mean of the samples; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the q-quantile (0 <= q <= 1) by the nearest-rank method:
// the smallest recorded value with at least q of the samples at or below it,
// as its bucket's midpoint clamped to the exact min and max (the first and
// last ranks are exact). 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 || math.IsNaN(q) {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	switch rank {
	case 1:
		return time.Duration(h.min) // exact
	case h.n:
		return time.Duration(h.max) // exact
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bucketRange(i)
			v := int64(low + (width-1)/2)
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max) // not reached: the counts sum to n
}
