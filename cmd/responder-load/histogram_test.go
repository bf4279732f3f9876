package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 123456789, 1<<62 + 12345, 1<<63 - 1} {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, numBuckets)
		}
		if high := bucketHigh(i); high < v {
			t.Errorf("bucketHigh(bucketOf(%d)) = %d, below the value", v, high)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Errorf("%d fits the bucket below its own (%d)", v, bucketHigh(i-1))
		}
	}
	for i := range numBuckets - 1 {
		if got := bucketOf(bucketHigh(i)); got != i {
			t.Fatalf("bucketOf(bucketHigh(%d)) = %d", i, got)
		}
		if bucketHigh(i+1) <= bucketHigh(i) {
			t.Fatalf("bucket %d ends at %d, not after bucket %d (%d)", i+1, bucketHigh(i+1), i, bucketHigh(i))
		}
	}
}

func TestQuantilesWithinBucketPrecision(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var h histogram
	vals := make([]int64, 0, 100_000)
	for range 100_000 {
		// Latencies from 50 µs to several seconds, heavy-tailed.
		v := int64(50_000 * (1 + rnd.ExpFloat64()*rnd.ExpFloat64()*40))
		vals = append(vals, v)
		h.Record(time.Duration(v))
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999, 1} {
		exact := vals[int(q*float64(len(vals))+0.5)-1]
		got := int64(h.Quantile(q))
		if got < exact || float64(got-exact) > float64(exact)/64 {
			t.Errorf("q%.3f: got %d, exact %d: want at or above it, by at most 1/64", q, got, exact)
		}
	}
	if h.Max() != time.Duration(vals[len(vals)-1]) || h.Count() != uint64(len(vals)) {
		t.Errorf("max %v count %d, want %v %d", h.Max(), h.Count(), time.Duration(vals[len(vals)-1]), len(vals))
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	var h histogram
	for v := range 100 {
		h.Record(time.Duration(v + 1))
	}
	h.Record(-5) // counts as zero
	if got := h.Quantile(0.5); got != 50 {
		t.Errorf("median of 0..100: got %d", got)
	}
	if got := h.Quantile(0.01); got != 1 {
		t.Errorf("q0.01 of 0..100: got %d", got)
	}
	if got := h.Quantile(0); got != 0 {
		t.Errorf("q0: got %d, want the smallest (0)", got)
	}
	var empty histogram
	if empty.Quantile(0.99) != 0 || empty.Mean() != 0 || empty.Summary().Count != 0 {
		t.Error("an empty histogram reports values")
	}
}

func TestMergeIsRecordingEverything(t *testing.T) {
	var a, b, all histogram
	for i := range 5000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&histogram{})
	if m.Summary() != all.Summary() {
		t.Errorf("merged %+v, recorded at once %+v", m.Summary(), all.Summary())
	}
}
