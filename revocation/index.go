package revocation

// This file loads what a Badger store keeps beside its entries and the
// in-memory index built from them: the epoch, the sequence number, the
// retention and the sealed mark (openFeed), the scan that rebuilds the
// index from disk, and the raising of the retention (applyRetention). The
// index type itself and the feed it serves are in feed.go.

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
)

// openFeed reads the epoch (creating it when the store has none, unless
// mustExist), the sequence number, the retention and whether the store is
// sealed, and loads the index.
func (b *Badger) openFeed(mustExist bool) (sealed bool, err error) {
	err = b.db.Update(func(txn *badger.Txn) error {
		raw, err := readRecord(txn, epochKey)
		switch {
		case err != nil:
			return err
		case raw == nil && mustExist:
			return fmt.Errorf("%w: its epoch record is missing", ErrDamaged)
		case raw == nil:
			if raw, err = newEpoch(); err != nil {
				return err
			}
			if err := txn.Set(epochKey, raw); err != nil {
				return err
			}
		case len(raw) != 16:
			return fmt.Errorf("stored epoch of %d bytes", len(raw))
		}
		b.epoch = epochString(raw)
		seq, err := readUint64(txn, seqKey)
		if err != nil {
			return err
		}
		b.seq = seq
		retain, err := readUint64(txn, retainKey)
		if err != nil {
			return err
		}
		b.retention = time.Duration(retain)
		mark, err := readRecord(txn, sealedKey)
		sealed = mark != nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read the store's records: %w", err)
	}
	if err := b.scan(); err != nil {
		return false, fmt.Errorf("load the index: %w", err)
	}
	return sealed, nil
}

// readRecord returns a copy of the value of one of the store's own
// records; nil when it is missing.
func readRecord(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// readUint64 reads an 8-byte record; a missing one is 0.
func readUint64(txn *badger.Txn, key []byte) (uint64, error) {
	v, err := readRecord(txn, key)
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: record %q of %d bytes", ErrDamaged, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// parseEpoch returns the raw bytes of an epoch string.
func parseEpoch(s string) ([16]byte, error) {
	var e [16]byte
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) != len(e) {
		return e, fmt.Errorf("%w: epoch %q", ErrDamaged, s)
	}
	copy(e[:], raw)
	return e, nil
}

// applyRetention raises the store's retention to r if it is larger, first
// extending every stored record (entries and cutoffs) by the difference,
// so that a verifier that now allows more leeway on exp still finds every
// closed token's record. It runs in OpenBadger, before the writer starts.
func (b *Badger) applyRetention(r time.Duration) error {
	if r <= b.retention {
		return nil
	}
	// Whole seconds up: Badger's expiry is in seconds.
	delta := uint64((r - b.retention + time.Second - 1) / time.Second)
	entries, _, _ := b.index.view()
	start, total := time.Now(), len(entries)
	for len(entries) > 0 {
		n := min(len(entries), maxBatch)
		batch := make([]*revokeRequest, n)
		for i, e := range entries[:n] {
			batch[i] = &revokeRequest{id: e.id, expiresAt: e.expires + delta}
		}
		if err := b.commit(batch); err != nil {
			return fmt.Errorf("extend records for a retention of %s: %w", r, err)
		}
		entries = entries[n:]
	}
	stored := b.cuts.all()
	cuts := make([]*revokeRequest, 0, len(stored))
	for h, c := range stored {
		cuts = append(cuts, &revokeRequest{cut: true, subject: h, at: c.at, expiresAt: c.expires + delta})
	}
	total += len(cuts)
	for len(cuts) > 0 {
		n := min(len(cuts), maxBatch)
		if err := b.commit(cuts[:n]); err != nil {
			return fmt.Errorf("extend cutoffs for a retention of %s: %w", r, err)
		}
		cuts = cuts[n:]
	}
	if err := b.db.Update(func(txn *badger.Txn) error {
		return txn.Set(retainKey, binary.BigEndian.AppendUint64(nil, uint64(r)))
	}); err != nil {
		return fmt.Errorf("store the retention: %w", err)
	}
	if err := b.checkpoint(); err != nil { // syncs the retention record too
		return err
	}
	b.log.Info("revocation store retention raised", "from", b.retention, "to", r, "records", total, "took", time.Since(start))
	b.retention = r
	return nil
}

// scan replaces the index with every unexpired entry on disk, and the
// cutoff map with every unexpired cutoff record, in one pass over the keys
// and a sort by sequence number.
func (b *Badger) scan() error {
	// The tables' key counts bound the entries on disk (they include
	// expired and overwritten ones): sizing the index from them up front
	// avoids growing a slice of tens of megabytes step by step, whose
	// discarded copies would stay in the process's memory for a while.
	hint := 0
	for _, t := range b.db.Tables() {
		hint += int(t.KeyCount)
	}
	entries := make([]indexEntry, 0, hint)
	cuts := make(map[subjectHash]cutoff)
	maxSeq := uint64(0)
	err := b.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false // values are 16 bytes in the tree: read in place, not copied
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() { // skips expired entries
			item := it.Item()
			if h, ok := cutHash(item.Key()); ok {
				c := cutoff{expires: item.ExpiresAt()}
				if err := item.Value(func(v []byte) error {
					at, seq, err := decodeCutoff(v)
					c.at, c.seq = at, seq
					maxSeq = max(maxSeq, seq)
					return err
				}); err != nil {
					return fmt.Errorf("a cutoff: %w", err)
				}
				cuts[h] = c
				continue
			}
			if len(item.Key()) != 16 {
				continue // the store's own records
			}
			e := indexEntry{id: uuid.UUID(item.Key()), expires: item.ExpiresAt()}
			if err := item.Value(func(v []byte) error {
				_, seq, err := decodeValue(v)
				e.seq = seq
				return err
			}); err != nil {
				return fmt.Errorf("entry %s: %w", e.id, err)
			}
			entries = append(entries, e)
			maxSeq = max(maxSeq, e.seq)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b indexEntry) int { return cmpUint64(a.seq, b.seq) })
	b.seq = max(b.seq, maxSeq)
	b.cuts.replace(cuts)
	b.index.mu.Lock()
	defer b.index.mu.Unlock()
	b.index.entries = entries // spare capacity, if any, takes the next writes
	b.index.newer = nil
	b.index.seq = b.seq
	return nil
}
