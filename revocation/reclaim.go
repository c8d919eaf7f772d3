package revocation

// This file reclaims disk space: Reclaim (value-log garbage collection,
// then the compaction that drops expired entries), and the background
// goroutine that runs it.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
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

// Reclaim runs one reclamation pass now, the one the background goroutine
// runs every Options.GCInterval: RunValueLogGC until Badger reports there is
// nothing left to rewrite. Its ErrNoRewrite, and ErrRejected (a pass is
// already running), are normal outcomes and return nil.
//
// Values live in the LSM tree, so the value log is expected to be empty and
// the value-log pass cheap; it is kept so that nothing accumulates should
// that ever change. Then, when the LSM tree spans more than one level,
// Reclaim compacts it into its last level, which removes expired entries
// from disk (see compactExpired in reclaim.go for what that costs and what
// it cannot reach). Passes run one at a time. A pass also drops expired
// entries from the index in memory that [Badger.Changes] answers from, and
// expired cutoffs from the map that [Badger.Cutoff] answers from.
func (b *Badger) Reclaim() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return fmt.Errorf("reclaim revocation store: %w", ErrClosed)
	}
	b.reclaimMu.Lock()
	defer b.reclaimMu.Unlock()
	start := time.Now()
	if dropped := b.index.compact(uint64(b.now().Unix())); dropped > 0 {
		b.log.Debug("revocation index compacted", "dropped", dropped, "took", time.Since(start))
		b.rebuildFilter.Store(true) // forget the expired ids at the next commit
	}
	if dropped := b.cuts.compact(unixNow(b.now())); dropped > 0 {
		b.log.Debug("revocation cutoffs compacted", "dropped", dropped)
	}
	rewrites := 0
	for rewrites < maxGCRewrites {
		err := b.db.RunValueLogGC(gcDiscardRatio)
		if err == nil {
			rewrites++
			continue
		}
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			b.log.Debug("revocation store reclaimed", "rewrites", rewrites, "took", time.Since(start), "stop", err)
			return b.compactIfRoom()
		}
		return fmt.Errorf("reclaim revocation store: %w", err)
	}
	b.log.Debug("revocation store reclaimed", "rewrites", rewrites, "took", time.Since(start), "stop", "rewrite limit")
	return b.compactIfRoom()
}

// compactIfRoom runs compactExpired unless the disk is below the store's
// reserve: a compaction writes its new tables through memory maps before it
// deletes the old ones.
func (b *Badger) compactIfRoom() error {
	if err := checkSpace(b.dir, reserve(b.treeSize())); err != nil {
		b.log.Warn("revocation store compaction skipped", "err", err)
		return nil
	}
	return b.compactExpired()
}

// gcLoop runs Reclaim every b.gcInterval until ctx is cancelled.
func (b *Badger) gcLoop(ctx context.Context) {
	defer b.wg.Done()
	t := time.NewTicker(b.gcInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := b.Reclaim(); err != nil && !errors.Is(err, ErrClosed) {
				b.log.Warn("revocation store reclaim failed", "err", err)
			}
		}
	}
}
