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
//
// It grows with the store (see [Badger.growFilter]): sized once at open,
// a store that grows from empty to a million ids would otherwise reach
// about 90% false positives, and every verify would pay a Badger read.
type filter struct {
	seed  maphash.Seed
	words []atomic.Uint64
	mask  uint64 // of bit positions: len(words)*64 - 1
	// capacity is how many ids it is sized for (16 bits each); added
	// counts the adds (an id added twice counts twice, which only makes
	// it grow sooner).
	capacity int64
	added    atomic.Int64
	// minBits is the smallest size of the filters it grows into:
	// minFilterBits but in tests.
	minBits uint64

	// The writer's, while a bigger filter is filled in the background:
	// next receives every id added here, and ready is closed once next
	// holds, besides, every id of the index as it was when the fill began.
	next  *filter
	ready chan struct{}
}

// filterProbes is the number of bits an id sets. With the filter sized at
// 16 bits an id or more (newFilter), 4 probes give about 0.24% false
// positives at capacity.
const filterProbes = 4

// minFilterBits is the smallest filter: 2^20 bits (128 KiB), 65536 ids.
const minFilterBits = 1 << 20

// newFilter returns an empty filter sized for n ids: 16 bits each, rounded
// up to a power of two, and at least minBits bits.
func newFilter(n int, minBits uint64) *filter {
	want := max(uint64(n)*16, minBits, 64)
	size := uint64(1) << bits.Len64(want-1)
	return &filter{seed: maphash.MakeSeed(), words: make([]atomic.Uint64, size/64), mask: size - 1,
		capacity: int64(size / 16), minBits: minBits}
}

// probes derives the filter's bit positions for id by double hashing.
func (f *filter) probes(id uuid.UUID) (h1, h2 uint64) {
	h := maphash.Bytes(f.seed, id[:])
	return h, h>>32 | h<<32 | 1 // odd, so the probes cycle through every bit
}

// add adds id, to next too while one is being filled. Only the writer
// calls it (and the goroutine that fills a next filter, on that one).
func (f *filter) add(id uuid.UUID) {
	f.set(id)
	if f.next != nil {
		f.next.set(id)
	}
}

func (f *filter) set(id uuid.UUID) {
	h1, h2 := f.probes(id)
	for i := range uint64(filterProbes) {
		bit := (h1 + i*h2) & f.mask
		f.words[bit/64].Or(1 << (bit % 64))
	}
	f.added.Add(1)
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

// filterFromIndex returns a filter of every id in the index, with room
// for as many again.
func (b *Badger) filterFromIndex() *filter {
	entries, _, _ := b.index.view()
	f := newFilter(2*len(entries), minFilterBits)
	for _, e := range entries {
		f.set(e.id)
	}
	return f
}

// growFilter returns the filter the writer adds a batch of n ids to, before
// it commits them, and keeps the false-positive rate bounded as the store
// grows. When the current filter has had as many adds as it is sized for
// (about 0.24% false positives), the writer starts a filter sized for
// twice the ids of the index plus the batch, which a goroutine fills from
// the index as it is now, while the writer adds every later id to both
// and readers keep using the current one. Once the fill is done, the next
// batch's growFilter makes the new filter current. It never holds fewer
// ids than the current one: those of the index (every committed id) and
// every id added since the fill began. So no revoked id is ever missed,
// during a fill or after the swap; meanwhile the current filter takes the
// adds past its size, a few batches' worth.
//
// Writer only.
func (b *Badger) growFilter(n int) *filter {
	f := b.filter.Load()
	if f.next != nil {
		select {
		case <-f.ready:
			next := f.next
			b.filter.Store(next)
			f.next = nil // the old filter is no longer added to
			f = next
		default:
			return f // still filling
		}
	}
	if f.added.Load()+int64(n) <= f.capacity {
		return f
	}
	entries, _, _ := b.index.view()
	next := newFilter(2*(len(entries)+n), f.minBits)
	f.next, f.ready = next, make(chan struct{})
	b.wg.Add(1) // Close waits for the fill; it ends by itself
	go func(ready chan struct{}) {
		defer b.wg.Done()
		for _, e := range entries {
			next.set(e.id)
		}
		close(ready)
	}(f.ready)
	return f
}
