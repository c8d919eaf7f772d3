package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets: one per nanosecond below
// 64 ns, then 32 per power of two, so a quantile read from it (the middle of
// its bucket) is within 1.6% of the true value. Adding is a few instructions
// and never allocates; each connection keeps its own and they are merged at
// the end.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	histSub     = 32                  // buckets per power of two above 64 ns
	histBuckets = 64 + (64-6)*histSub // covers every int64
)

// histBucket returns the bucket of d.
func histBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 64 {
		return int(v)
	}
	shift := bits.Len64(v) - 6 // ≥ 1, and v>>shift is in [32, 64)
	return 64 + (shift-1)*histSub + int(v>>shift) - histSub
}

// histMid returns the middle of bucket i, in nanoseconds.
func histMid(i int) float64 {
	if i < 64 {
		return float64(i)
	}
	shift := (i-64)/histSub + 1
	top := float64((i-64)%histSub + histSub)
	return (top + 0.5) * math.Ldexp(1, shift)
}

func (h *histogram) add(d time.Duration) {
	h.counts[histBucket(d)]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q ≤ 1), or 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(histMid(i))
		}
	}
	return 0 // unreachable
}
