package revocation

import (
	"fmt"
	"time"
)

// compactExpired is the second half of a [Badger.Reclaim] pass: it removes
// expired entries from disk. The caller holds b.mu for reading and
// b.reclaimMu.
//
// Badger never deletes an expired entry by itself: an entry leaves the disk
// only when a compaction rewrites its table into the last level of the LSM
// tree (where nothing older can hide beneath it), and the compactors start a
// compaction only when a level outgrows its target, for level 0 once it holds
// five tables: five flushed memtables, most of a million revocations with
// badgerOptions. A store that received a burst of short-lived closes and then
// little traffic would keep them on disk indefinitely.
//
// db.Flatten compacts the tree level by level until it sits in a single
// level, so when the tree spans more than one level, one Flatten drops every
// expired entry that is not in the memtable. It costs one rewrite of the live
// entries, at most once per Reclaim (every Options.GCInterval) and only after
// a memtable flush has put a table on top of the last level. Flatten pauses
// Badger's own compactors while it runs, but compacts level 0 itself first,
// one compaction at a time; writes would stall only if level 0 collected 15
// tables (15 memtables, millions of revocations) during one compaction,
// which this workload's write rate cannot reach. Reads and writes go on
// meanwhile. Two Flattens must never run at once (each restarts the
// compactors), hence b.reclaimMu.
//
// What it cannot reach: entries still in the memtable (its write-ahead log
// is a file of fixed size), and expired entries of a tree that already sits
// in one level, because Badger's public API cannot rewrite the last level on
// request. Those go at the first Reclaim after the next memtable flush.
func (b *Badger) compactExpired() error {
	levels, before := b.tree()
	if levels < 2 {
		return nil
	}
	start := time.Now()
	if err := b.db.Flatten(1); err != nil {
		return fmt.Errorf("compact revocation store: %w", err)
	}
	_, after := b.tree()
	b.log.Debug("revocation store compacted", "levels", levels, "bytes_before", before, "bytes_after", after, "took", time.Since(start))
	return nil
}

// tree returns how many levels of the LSM tree hold tables, and the size of
// those tables in bytes.
func (b *Badger) tree() (levels int, size int64) {
	for _, l := range b.db.Levels() {
		if l.NumTables > 0 {
			levels++
			size += l.Size
		}
	}
	return levels, size
}
