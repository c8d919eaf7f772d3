package revocation

// This file is the store's write path: Revoke queues a request, one writer
// goroutine (writeLoop) gathers requests into group commits (commit), each
// one journal record (journal.go) and one Badger transaction that also
// advances the sequence number, and checkpoints now and then
// (checkpoint). The stored value of an entry (encodeValue, decodeValue) is
// here too.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
)

// revokeRequest is one Revoke or CutOff call waiting for the group commit.
type revokeRequest struct {
	id        uuid.UUID
	expiresAt uint64
	// cut marks a CutOff: subject and at are set, not id.
	cut     bool
	subject subjectHash
	at      uint64
	// done receives the commit's result. It has room for one value so the
	// writer never blocks on a caller whose context expired.
	done chan error
}

// Revoke records id, of a token that expires at expires, as revoked until
// expires plus [Badger.Retention]. It returns nil only after the record is
// synced to the disk (in the journal, see journal.go) and committed to
// Badger; concurrent calls share the syncs. If the
// record would already be past at Options.Now, Revoke writes nothing and
// returns nil. While the disk has less free space than the store's reserve
// it writes nothing and returns an error wrapping [ErrDiskFull]. An error,
// including the context's, means the record may or may not have been
// written; calling Revoke again is safe.
func (b *Badger) Revoke(ctx context.Context, id uuid.UUID, expires time.Time) error {
	// One second more than the retention: a verifier reads the clock for
	// the token's exp and Badger reads it again for the entry's expiry, so
	// an entry that expired at the token's exp could vanish between the two
	// readings, and a token closed a moment before its exp would pass both.
	until := expires.Add(b.retention)
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return fmt.Errorf("revoke %s: %w", id, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	if !until.After(b.now()) {
		return nil
	}
	exp := expiresAt(until.Add(time.Second))
	if exp == 0 {
		// until is before 1970-01-01T00:00:01Z and so past by Badger's wall
		// clock too. Writing it would be wrong: ExpiresAt 0 means "never".
		return nil
	}

	req := &revokeRequest{id: id, expiresAt: exp, done: make(chan error, 1)}
	// The writer is running: it is stopped only after Close has taken mu
	// for writing, which waits for this call to return.
	select {
	case b.writes <- req:
	case <-ctx.Done():
		return fmt.Errorf("revoke %s: %w", id, ctx.Err())
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("revoke %s: %w", id, err)
		}
		return nil
	case <-ctx.Done():
		// The request may still be committed; that is harmless.
		return fmt.Errorf("revoke %s: %w", id, ctx.Err())
	}
}

// expiresAt returns until as Badger's whole Unix seconds, rounded up so the
// entry never expires before until. It returns 0 for instants before
// 1970-01-01T00:00:01Z.
func expiresAt(until time.Time) uint64 {
	s := until.Unix() // floor, also before 1970: Nanosecond is never negative
	if until.Nanosecond() > 0 {
		s++
	}
	if s <= 0 {
		return 0
	}
	return uint64(s)
}

// defaultCheckpointInterval is how often the writer checkpoints (see
// journal.go) while there are writes, unless Options.CheckpointInterval
// says otherwise.
const defaultCheckpointInterval = time.Second

// writeLoop is the only writer. It takes the first waiting request, adds
// every request that queued up meanwhile (they arrive while the previous
// commit is being synced), commits them as one journal record and one
// transaction, and answers each caller. This is what makes concurrent
// Revokes share a sync: Badger's own write pipeline batches concurrent
// transactions but still syncs its logs once per transaction. Every
// checkpoint interval, when the journal holds records, it checkpoints.
func (b *Badger) writeLoop(ctx context.Context) {
	defer b.wg.Done()
	tick := time.NewTicker(b.checkpointEvery)
	defer tick.Stop()
	batch := make([]*revokeRequest, 0, maxBatch)
	for {
		clear(batch)
		batch = batch[:0]
		select {
		case <-ctx.Done():
			// Close cancels only once no Revoke is in flight, so nothing
			// is left waiting in b.writes but requests whose callers
			// already gave up.
			return
		case <-tick.C:
			if b.journal.off > 0 || b.journal.broken {
				if err := b.checkpoint(); err != nil {
					b.log.Error("revocation store checkpoint failed", "err", err)
				}
			}
			continue
		case req := <-b.writes:
			batch = append(batch, req)
		}
	collect:
		for len(batch) < maxBatch {
			select {
			case req := <-b.writes:
				batch = append(batch, req)
			default:
				break collect
			}
		}
		err := b.commit(batch)
		switch {
		case errors.Is(err, ErrDiskFull):
			b.log.Warn("revocation store refuses writes", "batch", len(batch), "err", err)
		case err != nil:
			b.log.Error("revocation store commit failed", "batch", len(batch), "err", err)
		case b.committed != nil:
			b.committed(len(batch))
		}
		for _, req := range batch {
			req.done <- err
		}
	}
}

// checkpoint syncs Badger, so that it holds every committed write on disk,
// records the latest committed sequence number and a new journal
// generation in the seal, and starts the journal over. Writer only, or
// while the writer is not running.
func (b *Badger) checkpoint() error {
	if err := b.db.Sync(); err != nil {
		return fmt.Errorf("checkpoint: sync: %w", err)
	}
	if err := syncMemtables(b.dir); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	st := b.seal.state
	st.seq = max(st.seq, b.durable)
	st.jgen++
	if err := b.seal.write(st); err != nil {
		// The new seal may have reached the disk all the same, naming a
		// generation no record is written in: journal nothing until a
		// checkpoint succeeds.
		b.journal.broken = true
		return fmt.Errorf("checkpoint: %w", err)
	}
	b.journal.restart(st.jgen)
	return nil
}

// syncMemtables syncs every memtable log in dir, and dir. Badger's Sync
// covers only the memtable being written: one that filled is kept, its log
// not synced, until it is flushed into a table (which is synced), and the
// directory entry of a new log is not synced either. Without this, a
// checkpoint could count writes a power failure would still take. No
// commit runs meanwhile (the writer checkpoints between batches), so the
// set of logs can only shrink, as a flush finishes.
func syncMemtables(dir string) error {
	mems, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	if err != nil {
		return err
	}
	for _, m := range mems {
		f, err := os.Open(m)
		if errors.Is(err, fs.ErrNotExist) {
			continue // flushed into a table meanwhile
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", m, err)
		}
	}
	return syncDir(dir)
}

// record writes the entries of a batch whose latest sequence number is
// last to the journal, checkpointing first when the journal is full or a
// write to it failed.
func (b *Badger) record(last uint64, entries []journalEntry) error {
	if b.journal.broken {
		if err := b.checkpoint(); err != nil {
			return err
		}
	}
	err := b.journal.append(last, entries)
	if errors.Is(err, errJournalFull) {
		if err := b.checkpoint(); err != nil {
			return err
		}
		err = b.journal.append(last, entries)
	}
	return err
}

// commit writes a batch as one journal record and then one transaction,
// keeping for every id the latest of the requested expiry and the stored
// one. Every entry it writes gets the next sequence number, and the latest
// one is stored in the same transaction, so that the entries and the
// counter reach Badger together or not at all; the journal record, synced
// before the transaction commits, is what makes them durable until the
// next checkpoint syncs Badger. Once committed, the entries go into the
// index for Changes.
// Cutoff records (CutOff) go the same way, keeping the later cutoff and the
// later expiry of the batch's and the stored record, with sequence numbers
// of their own; once committed they go into the map Cutoff answers from.
//
// A key this transaction reads was committed before it started, and every
// commit was journaled and synced before it: so when the stored record
// already lasts long enough, leaving it alone is as durable as writing it
// again.
//
// There is no retry on badger.ErrConflict: this is the only writer and
// conflict detection is off (see badgerOptions), so it cannot occur.
func (b *Badger) commit(batch []*revokeRequest) error {
	if err := b.space.check(b.treeSize); err != nil {
		return err
	}
	want := make(map[uuid.UUID]uint64, len(batch))
	var cuts map[subjectHash]cutoff
	for _, req := range batch {
		if req.cut {
			if cuts == nil {
				cuts = make(map[subjectHash]cutoff)
			}
			c := cuts[req.subject]
			cuts[req.subject] = cutoff{at: max(c.at, req.at), expires: max(c.expires, req.expiresAt)}
			continue
		}
		want[req.id] = max(want[req.id], req.expiresAt)
	}

	if b.rescan {
		if err := b.scan(); err != nil {
			return fmt.Errorf("rebuild the index: %w", err)
		}
		b.rescan = false
	}
	// Every committed entry is in the index, and no commit is under way:
	// a filter rebuilt from the index now misses nothing.
	if b.rebuildFilter.CompareAndSwap(true, false) {
		b.filter.Store(b.filterFromIndex())
	}
	// Which ids may be stored already: the filter holds every stored id
	// (it is filled from the whole store at open, rebuilt from the index,
	// and given every id before it is committed), so for the others, nearly
	// all, the read of the stored record is skipped. The reads were two
	// thirds of the writer's time, spent while the next batch waits. (An id
	// a Reclaim dropped from the index, and so from a rebuilt filter, that
	// Badger still holds for a last second expires before the new record,
	// which is then only written again.)
	f := b.growFilter(len(want))
	var maybeStored map[uuid.UUID]bool
	for id := range want {
		if f.mayContain(id) {
			if maybeStored == nil {
				maybeStored = make(map[uuid.UUID]bool)
			}
			maybeStored[id] = true
		}
	}
	// Before the commit, so the filter holds each id by the time its
	// Revoke returns.
	for id := range want {
		f.add(id)
	}

	txn := b.db.NewTransaction(true)
	defer txn.Discard()
	seq := b.seq
	added := make([]indexEntry, 0, len(want))
	journaled := make([]journalEntry, 0, len(want)+len(cuts))
	var extended []uuid.UUID
	for id, exp := range want {
		key := append([]byte(nil), id[:]...) // Badger keeps the slice until the commit
		item, err := (*badger.Item)(nil), badger.ErrKeyNotFound
		if maybeStored[id] {
			item, err = txn.Get(key)
		}
		switch {
		case err == nil:
			if item.ExpiresAt() >= exp {
				continue // never shorten, and nothing to extend
			}
			extended = append(extended, id)
		case errors.Is(err, badger.ErrKeyNotFound):
		default:
			return fmt.Errorf("read %s: %w", id, err)
		}
		seq++
		e := badger.NewEntry(key, encodeValue(exp, seq))
		e.ExpiresAt = exp
		if err := txn.SetEntry(e); err != nil {
			return fmt.Errorf("write %s: %w", id, err)
		}
		journaled = append(journaled, journalEntry{key: key, value: e.Value, expiresAt: exp})
		added = append(added, indexEntry{id: id, expires: exp, seq: seq})
	}
	cutsWritten := make(map[subjectHash]cutoff, len(cuts))
	for h, c := range cuts {
		key := cutKey(h)
		item, err := txn.Get(key)
		switch {
		case err == nil:
			var stored uint64
			if err := item.Value(func(v []byte) error {
				var err error
				stored, _, err = decodeCutoff(v)
				return err
			}); err != nil {
				return fmt.Errorf("read a cutoff: %w", err)
			}
			if stored >= c.at && item.ExpiresAt() >= c.expires {
				continue // never moves back, and nothing to extend
			}
			c = cutoff{at: max(c.at, stored), expires: max(c.expires, item.ExpiresAt())}
		case errors.Is(err, badger.ErrKeyNotFound):
		default:
			return fmt.Errorf("read a cutoff: %w", err)
		}
		seq++
		e := badger.NewEntry(key, encodeValue(c.at, seq))
		e.ExpiresAt = c.expires
		if err := txn.SetEntry(e); err != nil {
			return fmt.Errorf("write a cutoff: %w", err)
		}
		journaled = append(journaled, journalEntry{key: key, value: e.Value, expiresAt: c.expires})
		c.seq = seq
		cutsWritten[h] = c
	}
	if len(added) == 0 && len(cutsWritten) == 0 {
		return nil
	}
	if err := txn.Set(seqKey, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return fmt.Errorf("write sequence number: %w", err)
	}
	// Numbers are never handed out twice, even after a failed commit or
	// a failed journal write (which may have reached the disk).
	b.seq = seq
	if err := b.record(seq, journaled); err != nil {
		return fmt.Errorf("journal %d revocations and %d cutoffs: %w", len(added), len(cutsWritten), err)
	}
	if err := txn.Commit(); err != nil {
		// The write may have reached the disk all the same; the index
		// must then learn of it, or a retry that finds the entry stored
		// would leave it out of Changes for good.
		b.rescan = true
		return fmt.Errorf("commit %d revocations and %d cutoffs: %w", len(added), len(cutsWritten), err)
	}
	// The cutoffs before the index: Changes reads the index's seq first,
	// so every cutoff up to that seq is in the map by then.
	b.durable = seq
	b.cuts.set(cutsWritten)
	b.index.add(added, extended, seq)
	return nil
}

// encodeValue is the stored value of an entry: the expiry in Unix seconds
// (the same number as Badger's ExpiresAt) and the sequence number of the
// write, 8 bytes big-endian each.
func encodeValue(expires, seq uint64) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, expires)
	binary.BigEndian.PutUint64(v[8:], seq)
	return v
}

// decodeValue reads a stored value. A value of 8 bytes was written before
// the store kept sequence numbers; its sequence number is 0.
func decodeValue(v []byte) (expires, seq uint64, err error) {
	switch len(v) {
	case 16:
		return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
	case 8:
		return binary.BigEndian.Uint64(v), 0, nil
	}
	return 0, 0, fmt.Errorf("stored value of %d bytes", len(v))
}
