package revocation

// This file is the Bloom filter in front of Badger on the read path, and
// its construction from the index.

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"

	"github.com/google/uuid"
)

// filter is a Bloom filter of the ids that may be revoked. IsRevoked asks
// Badger only about ids the filter may hold: nearly every verification is
// of a token that was never closed, and a Badger read transaction costs
// microseconds (its oracle and watermarks), the filter tens of nanoseconds.
//
// It is exact in the direction that matters: the writer adds a batch's ids
// before committing it, so once Revoke has returned, the filter answers
// "may hold" for that id, and it is filled from the whole store at open.
// It never forgets an id; expired ones merely raise the false-positive
// rate, until the writer rebuilds the filter from the index after a
// Reclaim. Readers take no lock: bits are set and read atomically.
type filter struct {
	seed  maphash.Seed
	words []atomic.Uint64
	mask  uint64 // of bit positions: len(words)*64 - 1
}

// filterProbes is the number of bits an id sets. With the filter sized at
// 16 bits an id or more (newFilter), 4 probes give about 0.2% false
// positives.
const filterProbes = 4

// newFilter returns an empty filter sized for n ids: 16 bits each, rounded
// up to a power of two, and at least 2^20 bits (128 KiB).
func newFilter(n int) *filter {
	want := max(uint64(n)*16, 1<<20)
	size := uint64(1) << bits.Len64(want-1)
	return &filter{seed: maphash.MakeSeed(), words: make([]atomic.Uint64, size/64), mask: size - 1}
}

// probes derives the filter's bit positions for id by double hashing.
func (f *filter) probes(id uuid.UUID) (h1, h2 uint64) {
	h := maphash.Bytes(f.seed, id[:])
	return h, h>>32 | h<<32 | 1 // odd, so the probes cycle through every bit
}

func (f *filter) add(id uuid.UUID) {
	h1, h2 := f.probes(id)
	for i := range uint64(filterProbes) {
		bit := (h1 + i*h2) & f.mask
		f.words[bit/64].Or(1 << (bit % 64))
	}
}

// mayContain reports false only for an id that was never added.
func (f *filter) mayContain(id uuid.UUID) bool {
	h1, h2 := f.probes(id)
	for i := range uint64(filterProbes) {
		bit := (h1 + i*h2) & f.mask
		if f.words[bit/64].Load()&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// filterFromIndex returns a filter of every id in the index.
func (b *Badger) filterFromIndex() *filter {
	entries, _, _ := b.index.view()
	f := newFilter(len(entries))
	for _, e := range entries {
		f.add(e.id)
	}
	return f
}
