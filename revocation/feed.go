package revocation

// This file is the feed a store offers to publish its list (Feed, Changes,
// Head), and the in-memory index of entries by sequence number that serves
// it.

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Feed is what a store offers to publish its list to verifiers that keep a
// copy of their own (the sessiond server's GET /revocations): the entries
// written after a given point, so that a copy is kept current by deltas
// proportional to the changes rather than to the list. It is optional; a
// [Store] need not implement it. [Badger] does.
type Feed interface {
	// Changes returns the unexpired entries written (revoked or extended)
	// after the sequence number since, or, when that cannot be answered
	// with a delta, every unexpired entry, marked Snapshot. since 0 always
	// gives a snapshot.
	Changes(ctx context.Context, since uint64) (Changes, error)

	// Head tells what Changes(ctx, since) would answer without copying a
	// single entry, so that a publisher can check that a document it holds
	// is current, or how large the answer would be, before it pays for
	// the answer itself.
	Head(ctx context.Context, since uint64) (Head, error)
}

// Head is the answer of [Feed.Head]: what [Feed.Changes] would answer, less
// the entries. The counts are upper bounds: Changes drops the expired and
// superseded entries they include.
type Head struct {
	// Epoch and Seq are those of the list, as in [Changes].
	Epoch string
	Seq   uint64
	// Snapshot reports that Changes would answer with the whole list.
	Snapshot bool
	// Total is the number of entries in the whole list; Entries, in the
	// answer (Total for a snapshot).
	Total, Entries int
	// Cutoffs is the number of subject cutoffs in the whole list, which
	// a snapshot carries; a delta carries those written since.
	Cutoffs int
}

// Changes is the answer of [Feed.Changes].
type Changes struct {
	// Epoch identifies the list: it is made at random when the store is
	// created and never changes afterwards. A different epoch means a
	// different list (a store wiped or replaced), whose sequence numbers have
	// nothing to do with the old one's.
	Epoch string
	// Seq is the sequence number of the latest write the answer includes.
	Seq uint64
	// Snapshot reports that Entries is the whole list, not a delta.
	Snapshot bool
	// Entries are the entries, at most one per ID, in the order of their
	// sequence numbers.
	Entries []Entry
	// Cutoffs are the unexpired subject cutoffs ([Cutoffs]) written after
	// since (all of them in a snapshot), at most one per subject, in
	// ascending order of subject hash.
	Cutoffs []Cutoff
}

// Cutoff is one subject cutoff as the store holds it and publishes it:
// every token of the subject whose iat is at or before At is closed.
type Cutoff struct {
	// Subject is the SHA-256 of the subject's bytes: the store never holds
	// a subject in clear, and the feed publishes only this hash, which a
	// verifier holding the token computes from its "sub".
	Subject [32]byte
	// At is the cutoff, a whole second.
	At time.Time
	// Until is when the record expires, a whole second (see
	// [Badger.CutOff]).
	Until time.Time
	// Seq is the sequence number of the write that gave the record this
	// At and Until.
	Seq uint64
}

// Entry is one revocation as the store holds it.
type Entry struct {
	ID uuid.UUID
	// Until is when the entry expires: the until given to Revoke, rounded up
	// to a whole second (see the package documentation).
	Until time.Time
	// Seq is the sequence number of the write that gave the entry this
	// Until; zero for entries written before the store kept sequence
	// numbers.
	Seq uint64
}

var _ Feed = (*Badger)(nil)

// Changes implements [Feed]. The answer comes from an index in memory, not
// from disk: a delta costs a binary search and a copy of its entries; a
// snapshot, a copy of every entry. Subject cutoffs come from their map in
// memory, one pass over it (cutoffs are few: one per close of all of a
// subject's sessions). Entries it returns are durable: the index
// learns of a write only once it is committed.
//
// It answers with a snapshot when since is 0, when since is after the
// latest sequence number (a copy that belongs to another list, or to this
// one before a restore from a backup), and when more than half of the entries
// would be in the delta anyway.
func (b *Badger) Changes(ctx context.Context, since uint64) (Changes, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return Changes{}, fmt.Errorf("revocation changes: %w", ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return Changes{}, fmt.Errorf("revocation changes: %w", err)
	}
	entries, seq, newer := b.index.view()
	start, snapshot := deltaStart(entries, since, seq)
	now := uint64(b.now().Unix())
	out := make([]Entry, 0, len(entries)-start)
	for i, e := range entries[start:] {
		if i%(64<<10) == 0 {
			if err := ctx.Err(); err != nil {
				return Changes{}, fmt.Errorf("revocation changes: %w", err)
			}
		}
		if !current(e, now, newer) {
			continue
		}
		out = append(out, Entry{ID: e.id, Until: time.Unix(int64(e.expires), 0), Seq: e.seq})
	}
	cutsSince := since
	if snapshot {
		cutsSince = 0
	}
	// The writer updates the cutoff map before the index, so every cutoff
	// up to seq is in it; one written meanwhile, after seq, may be too,
	// which only brings it early (a later delta carries it again).
	cuts := b.cuts.changes(cutsSince, now)
	return Changes{Epoch: b.epoch, Seq: seq, Snapshot: snapshot, Entries: out, Cutoffs: cuts}, nil
}

// Snapshot is the whole list as [Badger.Snapshot] lends it: the entries
// of a snapshot [Changes] without their copy, for a publisher that reads
// each once. Its entries are in the order of their sequence numbers.
type Snapshot struct {
	// Epoch, Seq and Cutoffs are those of the snapshot Changes.
	Epoch   string
	Seq     uint64
	Cutoffs []Cutoff

	entries []indexEntry // the index's array, which never changes
	live    []int32      // where in entries the unexpired, current entries are
}

// Len is the number of entries.
func (s *Snapshot) Len() int { return len(s.live) }

// ID is the id of the i-th entry, 0 <= i < Len.
func (s *Snapshot) ID(i int) uuid.UUID { return s.entries[s.live[i]].id }

// Entry is the i-th entry, 0 <= i < Len.
func (s *Snapshot) Entry(i int) Entry {
	e := &s.entries[s.live[i]]
	return Entry{ID: e.id, Until: time.Unix(int64(e.expires), 0), Seq: e.seq}
}

// Snapshot answers what Changes(ctx, 0) does, lending the index's entries
// instead of copying them: 4 bytes an entry instead of 48, so that a
// snapshot of a million entries costs 4 MB of heap, not 48. The index's
// elements never change once written (see index), so the Snapshot stays
// valid and unchanged whatever is written afterwards.
func (b *Badger) Snapshot(ctx context.Context) (Snapshot, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return Snapshot{}, fmt.Errorf("revocation snapshot: %w", ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("revocation snapshot: %w", err)
	}
	entries, seq, newer := b.index.view()
	if len(entries) > math.MaxInt32 {
		return Snapshot{}, fmt.Errorf("revocation snapshot: %d entries, more than a snapshot can list", len(entries))
	}
	now := uint64(b.now().Unix())
	live := 0
	for _, e := range entries {
		if current(e, now, newer) {
			live++
		}
	}
	pos := make([]int32, 0, live)
	for i, e := range entries {
		if i%(64<<10) == 0 {
			if err := ctx.Err(); err != nil {
				return Snapshot{}, fmt.Errorf("revocation snapshot: %w", err)
			}
		}
		if current(e, now, newer) {
			pos = append(pos, int32(i))
		}
	}
	return Snapshot{Epoch: b.epoch, Seq: seq, Cutoffs: b.cuts.changes(0, now), entries: entries, live: pos}, nil
}

// Head implements [Feed]: a binary search in the index, under a lock that
// writers take only to append.
func (b *Badger) Head(ctx context.Context, since uint64) (Head, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return Head{}, fmt.Errorf("revocation head: %w", ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return Head{}, fmt.Errorf("revocation head: %w", err)
	}
	entries, seq := b.index.list()
	start, snapshot := deltaStart(entries, since, seq)
	return Head{Epoch: b.epoch, Seq: seq, Snapshot: snapshot, Total: len(entries), Entries: len(entries) - start, Cutoffs: b.cuts.len()}, nil
}

// deltaStart returns where in entries the answer to since begins, and
// whether it is a snapshot (then the start is 0): when since is 0, when
// it is after seq, and when more than half of the entries would be in the
// delta anyway.
func deltaStart(entries []indexEntry, since, seq uint64) (int, bool) {
	if since == 0 || since > seq {
		return 0, true
	}
	start, _ := slices.BinarySearchFunc(entries, since+1, func(e indexEntry, s uint64) int {
		return cmpUint64(e.seq, s)
	})
	if len(entries)-start > len(entries)/2 {
		return 0, true
	}
	return start, false
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// index is the in-memory list of entries that [Badger.Changes] answers
// from, in the order of their sequence numbers: 32 bytes per entry, about
// 32 MiB for a million.
//
// The slice only grows at its end, and an element never changes once it is
// there, so a reader copies the slice header under mu and reads the
// elements without it while the writer appends: appending writes beyond
// every length a reader holds, or to a new array. compact builds a new
// array too.
//
// An id revoked again with a later expiry gets a second entry; rather than
// change the first, newer records the id's latest sequence number until
// compact drops the older entry. Extensions are rare (a token's expiry
// never changes), so that map stays small.
type index struct {
	mu      sync.Mutex
	entries []indexEntry
	seq     uint64               // of the latest committed write
	newer   map[uuid.UUID]uint64 // id → sequence number of its latest entry, for extended ids

	compactMu sync.Mutex // one compaction at a time
}

type indexEntry struct {
	id      uuid.UUID
	expires uint64 // Unix seconds, as Badger's ExpiresAt
	seq     uint64
}

// view returns the entries, the latest sequence number and a copy of newer
// (nil when empty).
func (x *index) view() ([]indexEntry, uint64, map[uuid.UUID]uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var newer map[uuid.UUID]uint64
	if len(x.newer) > 0 {
		newer = maps.Clone(x.newer)
	}
	return x.entries, x.seq, newer
}

// list returns the entries and the latest sequence number, copying
// neither the entries nor newer.
func (x *index) list() ([]indexEntry, uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.entries, x.seq
}

// current reports whether e is in the list at now: not expired (Badger's
// rule: an entry is gone once its ExpiresAt <= now) and not superseded.
func current(e indexEntry, now uint64, newer map[uuid.UUID]uint64) bool {
	return e.expires > now && !stale(e, newer)
}

// stale reports whether e is superseded by a later entry for its id.
func stale(e indexEntry, newer map[uuid.UUID]uint64) bool {
	latest, ok := newer[e.id]
	return ok && e.seq < latest
}

// add records a committed write: its entries in sequence order, which of
// them extend an id already in the index, and the latest sequence number.
func (x *index) add(added []indexEntry, extended []uuid.UUID, seq uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.entries = append(x.entries, added...)
	if len(extended) > 0 {
		if x.newer == nil {
			x.newer = make(map[uuid.UUID]uint64)
		}
		latest := make(map[uuid.UUID]uint64, len(added))
		for _, e := range added {
			latest[e.id] = e.seq
		}
		for _, id := range extended {
			x.newer[id] = latest[id]
		}
	}
	x.seq = max(x.seq, seq)
}

// compact drops, into a new array, the entries that expired at or before
// now and the superseded ones. Appends that happen meanwhile are carried
// over. It returns how many entries it dropped.
func (x *index) compact(now uint64) int {
	x.compactMu.Lock()
	defer x.compactMu.Unlock()
	entries, _, newer := x.view()
	live := 0
	for _, e := range entries {
		if current(e, now, newer) {
			live++
		}
	}
	if live == len(entries) && len(newer) == 0 {
		return 0
	}
	kept := make([]indexEntry, 0, live+live/8)
	for _, e := range entries {
		if current(e, now, newer) {
			kept = append(kept, e)
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	kept = append(kept, x.entries[len(entries):]...) // written meanwhile
	x.entries = kept
	for id, seq := range newer {
		if x.newer[id] == seq { // not extended again meanwhile
			delete(x.newer, id)
		}
	}
	return len(entries) - live
}

// newEpoch returns a fresh random epoch, in its stored (16 bytes) form.
func newEpoch() ([]byte, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return nil, err
	}
	return id[:], nil
}

// epochString is the published form of an epoch: base64url, no padding.
func epochString(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }
