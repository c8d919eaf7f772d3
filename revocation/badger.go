package revocation

// This file opens and closes a Badger store: its Options, the Badger type
// with its goroutines, OpenBadger (the checks before and after badger.Open:
// lock, preflight, seal, free space, retention), Badger's settings, Close,
// and the adapter that sends Badger's log to slog. The write path is in
// write.go, the read path in read.go, the records and index loaded at open
// in index.go, the Bloom filter in filter.go, reclamation in reclaim.go.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

var _ Store = (*Badger)(nil)

const (
	defaultGCInterval = 10 * time.Minute

	// maxBatch is the most Revoke calls one group commit carries. A batch of
	// 1024 entries is about 40 KiB, far below the ~1.2 MiB (15% of
	// MemTableSize) that Badger accepts in one transaction, so a commit never
	// fails with badger.ErrTxnTooBig. It is also the capacity of the queue in
	// front of the writer.
	maxBatch = 1024

	// gcDiscardRatio is the fraction of a value-log file that must be garbage
	// before RunValueLogGC rewrites it (Badger's recommended 0.5).
	gcDiscardRatio = 0.5

	// maxGCRewrites bounds one Reclaim pass, in case Badger keeps finding
	// files to rewrite while writes continue.
	maxGCRewrites = 64
)

// Keys of the store's own records. Entries have 16-byte keys (the UUID);
// these have other lengths, so they can never collide with one, and every
// scan of entries skips them. Cutoff records have keys of their own too
// (cutPrefix, in cutoff.go).
var (
	// seqKey holds the sequence number of the latest write, 8 bytes big-endian.
	seqKey = []byte("\x00meta/seq")
	// epochKey holds the store's epoch, 16 random bytes made when the store
	// was created.
	epochKey = []byte("\x00meta/epoch")
	// sealedKey marks a store that has a seal file (seal.go), so that a
	// seal deleted from beside it is noticed. Its value is one byte, 1.
	sealedKey = []byte("\x00meta/sealed")
	// retainKey holds the store's retention in nanoseconds, 8 bytes
	// big-endian: the largest Options.Retention it was ever opened with.
	retainKey = []byte("\x00meta/retain")
)

// Options configures [OpenBadger]. The zero value is ready to use.
type Options struct {
	// Logger receives the store's messages and Badger's own log lines,
	// adapted: Badger's INFO and DEBUG become Debug, WARNING becomes Warn and
	// ERROR becomes Error. Nil discards them.
	Logger *slog.Logger

	// GCInterval is how often the background goroutine runs [Badger.Reclaim].
	// Zero (or negative) means 10 minutes.
	GCInterval time.Duration

	// Now returns the current time; nil means time.Now. Revoke uses it to
	// decide whether a record would already be past. Badger itself compares
	// expiry with the wall clock.
	Now func() time.Time

	// Retention is how long past a token's expiry its record must be kept:
	// at least the leeway on exp of every verifier that consults the store
	// (or its feed), which would otherwise accept a closed token once its
	// record is gone. The store remembers the largest Retention it was ever
	// opened with and keeps using that; when a larger one is given, every
	// record already stored is extended by the difference before
	// [OpenBadger] returns. Zero keeps records until the token's expiry.
	Retention time.Duration

	// CheckpointInterval is how often, while there are writes, the store
	// syncs Badger and records a checkpoint in its seal (see journal.go);
	// the writes since the last checkpoint are in the journal. Zero (or
	// negative) means 1 s.
	CheckpointInterval time.Duration

	// Committed, when set, is called by the group-commit writer after each
	// commit that succeeded, with the number of Revoke and CutOff calls it
	// carried (1 to 1024): for metrics of how writes share fsyncs. It runs
	// on the writer's goroutine, before the callers are answered, so it must
	// return at once. Nil calls nothing.
	Committed func(calls int)
}

// Badger is a [Store] kept in a Badger database in a directory of its own.
// Open it with [OpenBadger]; it is safe for concurrent use. It owns two
// goroutines, the group-commit writer and the periodic [Badger.Reclaim], which
// [Badger.Close] stops.
type Badger struct {
	db              *badger.DB
	log             *slog.Logger
	now             func() time.Time
	gcInterval      time.Duration
	checkpointEvery time.Duration // Options.CheckpointInterval
	committed       func(int)     // Options.Committed

	// reclaimMu makes Reclaim passes run one at a time (see compactExpired).
	reclaimMu sync.Mutex

	// writes carries Revoke requests to the single writer goroutine.
	writes chan *revokeRequest
	seal   *seal
	// journal holds the writes since the last checkpoint (journal.go).
	journal *journal
	// dir is the store's directory.
	dir string
	// retention is the store's retention (Options.Retention).
	retention time.Duration
	// space tracks the free disk space (writer only, and Reclaim under
	// reclaimMu for its own check).
	space spaceGuard

	// epoch identifies this store for Changes; set at open.
	epoch string
	// seq is the latest sequence number handed out, and durable the
	// latest one committed to Badger. Only the writer goroutine uses them
	// once the store is open.
	seq, durable uint64
	// rescan tells the writer to rebuild index from disk before its next
	// commit: a failed commit may have reached the disk anyway. Writer only.
	rescan bool
	// index answers Changes from memory.
	index index
	// cuts answers Cutoff from memory.
	cuts cutMap
	// filter holds every id that may be revoked (see filter.go); the
	// writer replaces it when rebuildFilter is set.
	filter        atomic.Pointer[filter]
	rebuildFilter atomic.Bool

	// mu guards closed. Every method holds it for reading for its whole
	// duration, so Close, which takes it for writing, waits for operations
	// in flight, and nothing touches db once it is closed (Badger may panic
	// or misbehave when used after Close).
	mu     sync.RWMutex
	closed bool

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// OpenBadger opens (creating it with mode 0700 if missing) the revocation
// store in dir and starts its background goroutines.
//
// Badger's directory lock is the first thing taken: if another process, or
// another open [Badger] in this process, holds dir, OpenBadger returns an
// error wrapping [ErrLocked] at once.
//
// The store keeps a seal beside dir, in the file dir + ".seal" (see
// seal.go), that names the store and how many of its writes were
// acknowledged. OpenBadger refuses, changing nothing on disk, a store that
// does not match its seal: an error wrapping [ErrMissing] when dir is gone
// but the seal is there, and [ErrDamaged] when a Badger file is missing,
// truncated or corrupt, when dir holds another store, or when it holds fewer
// writes than were acknowledged. A store without a seal (new, or made by a
// version that kept none) gets one. It also refuses, with [ErrDiskFull], to
// open on a file system with less free space than the store's reserve.
func OpenBadger(dir string, opts Options) (*Badger, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	gcInterval := opts.GCInterval
	if gcInterval <= 0 {
		gcInterval = defaultGCInterval
	}
	checkpointEvery := opts.CheckpointInterval
	if checkpointEvery <= 0 {
		checkpointEvery = defaultCheckpointInterval
	}
	if opts.Retention < 0 {
		return nil, fmt.Errorf("open revocation store: negative retention %s", opts.Retention)
	}

	sl, err := openSeal(sealPath(dir))
	if err != nil && !errors.Is(err, errNoSeal) {
		return nil, fmt.Errorf("open revocation store %q: %w: %v", dir, ErrDamaged, err)
	}
	ok := false
	defer func() {
		if !ok && sl != nil {
			sl.close()
		}
	}()
	// The checks below read the files, which must not change meanwhile:
	// hold Badger's directory lock for them (released for badger.Open,
	// which takes it again).
	unlock := func() {}
	if _, err := os.Stat(dir); err == nil {
		release, err := lockDir(dir)
		if err != nil {
			return nil, fmt.Errorf("open revocation store %q: %w", dir, err)
		}
		unlock = sync.OnceFunc(release)
		defer unlock()
	}
	exists, err := preflight(dir)
	if err != nil {
		return nil, fmt.Errorf("open revocation store %q: %w: %v", dir, ErrDamaged, err)
	}
	if sl != nil && !exists {
		return nil, fmt.Errorf("open revocation store %q: %w: the directory holds no store, but %s records one with %d acknowledged writes", dir, ErrMissing, sealPath(dir), sl.state.seq)
	}
	// Badger would create the directory with the same mode; doing it here
	// keeps the 0700 promise independent of Badger's internals.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open revocation store: %w", err)
	}
	// Opening writes (a new memtable file, the value log's header, the
	// scratch copy's) through memory maps, so the reserve is checked before
	// Badger sees the disk.
	tree, err := treeBytes(dir)
	if err != nil {
		return nil, fmt.Errorf("open revocation store %q: %w", dir, err)
	}
	if err := checkSpace(dir, reserve(tree)); err != nil {
		return nil, fmt.Errorf("open revocation store %q: %w", dir, err)
	}
	if exists {
		if err := checkCopy(dir, sl, log); err != nil {
			return nil, fmt.Errorf("open revocation store %q: %w", dir, err)
		}
	}
	// The journal too is read before Badger opens, so that a store with a
	// missing or damaged one is refused with nothing changed.
	var journaled []journalRecord
	if sl != nil && sl.state.jgen != 0 {
		journaled, err = readJournal(journalPath(dir), sl.state.epoch, sl.state.jgen)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open revocation store %q: %w: its journal %s is missing, and %s records one", dir, ErrDamaged, journalPath(dir), sealPath(dir))
		}
		if err != nil {
			return nil, fmt.Errorf("open revocation store %q: %w: %v", dir, ErrDamaged, err)
		}
	}
	unlock()

	db, err := badger.Open(badgerOptions(dir, log))
	if err != nil {
		// Badger formats the flock error with %+v, so only its text is left
		// to recognise it by.
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("open revocation store %q: %w: %v", dir, ErrLocked, err)
		}
		return nil, fmt.Errorf("open revocation store %q: %w: %v", dir, ErrDamaged, err)
	}

	b := &Badger{
		db:              db,
		log:             log,
		now:             now,
		gcInterval:      gcInterval,
		checkpointEvery: checkpointEvery,
		committed:       opts.Committed,
		dir:             dir,
		writes:          make(chan *revokeRequest, maxBatch),
	}
	b.space.dir = dir
	if err := b.open(sl, journaled, opts.Retention); err != nil {
		if b.journal != nil {
			b.journal.close()
		}
		db.Close()
		return nil, fmt.Errorf("open revocation store %q: %w", dir, err)
	}
	ok = true
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Add(2)
	go b.writeLoop(ctx)
	go b.gcLoop(ctx)
	return b, nil
}

// open replays the journal, reads the store's records and index, holds
// them against the seal sl (nil when there is none), makes a seal when
// there is none, starts the journal with a checkpoint, and applies
// retention.
func (b *Badger) open(sl *seal, journaled []journalRecord, retention time.Duration) error {
	if sl != nil {
		if err := b.replay(sl, journaled); err != nil {
			return err
		}
	}
	// A store with a seal has an epoch; one without may be from a version
	// that kept neither, and gets both.
	sealed, err := b.openFeed(sl != nil)
	if err != nil {
		return err
	}
	b.durable = b.seq
	epoch, err := parseEpoch(b.epoch)
	if err != nil {
		return err
	}
	switch {
	case sl != nil:
		if err := sl.match(b.dir, epoch[:], b.seq); err != nil {
			return err
		}
	case sealed:
		return fmt.Errorf("%w: its seal %s is missing", ErrDamaged, sealPath(b.dir))
	default:
		// A new store, or one from a version without seals: the disk is
		// the only record there is.
		if err := b.db.Update(func(txn *badger.Txn) error { return txn.Set(sealedKey, []byte{1}) }); err != nil {
			return fmt.Errorf("mark the store sealed: %w", err)
		}
		if err := b.db.Sync(); err != nil {
			return fmt.Errorf("mark the store sealed: %w", err)
		}
		if sl, err = createSeal(sealPath(b.dir), sealState{epoch: epoch, seq: b.seq}); err != nil {
			return fmt.Errorf("create seal: %w", err)
		}
	}
	b.seal = sl
	if b.journal, err = openJournal(journalPath(b.dir), epoch); err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	if err := b.checkpoint(); err != nil {
		return err
	}
	b.filter.Store(b.filterFromIndex())
	return b.applyRetention(retention)
}

// replay commits to Badger the journal records of the seal's generation
// that it lacks, those after its sequence number, and syncs it. Before a
// crash they were acknowledged (each was synced in the journal before its
// batch's callers were answered) but Badger, which does not sync its log
// on every commit, may have lost them. A Badger that lacks writes the seal
// records as checkpointed (synced in Badger itself) is damaged, and
// replaying the journal on top of it would hide that: it is refused.
func (b *Badger) replay(sl *seal, recs []journalRecord) error {
	var seq uint64
	if err := b.db.View(func(txn *badger.Txn) error {
		var err error
		seq, err = readUint64(txn, seqKey)
		return err
	}); err != nil {
		return fmt.Errorf("read the store's sequence number: %w", err)
	}
	if seq < sl.state.seq {
		return fmt.Errorf("%w: it holds writes up to number %d, but %d were acknowledged (%s): files were lost or damaged", ErrDamaged, seq, sl.state.seq, sealPath(b.dir))
	}
	replayed := 0
	for _, r := range recs {
		if r.last <= seq {
			continue
		}
		txn := b.db.NewTransaction(true)
		for _, e := range r.entries {
			be := badger.NewEntry(e.key, e.value)
			be.ExpiresAt = e.expiresAt
			if err := txn.SetEntry(be); err != nil {
				txn.Discard()
				return fmt.Errorf("replay the journal: %w", err)
			}
		}
		if err := txn.Set(seqKey, binary.BigEndian.AppendUint64(nil, r.last)); err != nil {
			txn.Discard()
			return fmt.Errorf("replay the journal: %w", err)
		}
		if err := txn.Commit(); err != nil {
			return fmt.Errorf("replay the journal: %w", err)
		}
		seq = r.last
		replayed += len(r.entries)
	}
	if replayed > 0 {
		if err := b.db.Sync(); err != nil {
			return fmt.Errorf("replay the journal: %w", err)
		}
		b.log.Info("revocation store replayed its journal", "writes", replayed, "seq", seq)
	}
	return nil
}

// badgerOptions tunes Badger for this workload instead of its defaults,
// which target large values and gigabytes of cache. The workload: 16-byte
// random keys, 8-byte values, every entry with a TTL, point lookups on every
// token verification of which nearly all miss, a modest write rate (one per
// closed session), and a budget of 64 MiB RSS for the whole idle service and
// 256 MiB with a million live entries.
func badgerOptions(dir string, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log}).
		// Durability comes from the journal (journal.go), synced once per
		// group commit before the batch is committed here; Badger's own
		// logs are synced at checkpoints. Syncing them on every commit too
		// would be two more syncs per batch.
		WithSyncWrites(false).
		// Values are 8 bytes: keep every value inline in the LSM tree (the
		// threshold is stated, not left to the 1 MiB default, to make that
		// explicit). The value log then stays empty, value-log GC has nothing
		// to do, and a read never needs a second lookup in the value log.
		WithValueThreshold(1 << 10).
		// The value log holds nothing but its header (see above), so a small
		// file is enough; Badger mmaps 2× this size, sparse.
		WithValueLogFileSize(16 << 20).
		// A memtable of 8 MiB holds about 75,000 revocations; the default
		// 64 MiB × 5 memtables alone would blow the memory budget, and
		// 16 MiB cost some 20 MiB more RSS with a million entries (its
		// arena on the heap, doubled by the collector's headroom, and its
		// mapped log) for no faster closes. Two memtables: one being
		// written while the other is flushed to L0.
		// The write rate is low, so a flush always finishes long before the
		// active memtable fills.
		WithMemTableSize(memTableSize).
		WithNumMemtables(2).
		// Most lookups are misses (tokens that were never revoked). The bloom
		// filter lets a miss skip a table without reading a block; 0.1% false
		// positives instead of the default 1% costs ~0.6 bytes more per key
		// (about 0.6 MiB per million entries, in mmapped table files, not on
		// the heap) and makes a block read on a miss ten times rarer.
		WithBloomFalsePositive(0.001).
		// Keys are random UUIDs and values 8-byte numbers: neither
		// compresses, so Snappy or ZSTD would spend CPU on every block write
		// and read for nothing. Uncompressed, unencrypted blocks are also
		// read in place from the mmapped tables without a copy.
		WithCompression(options.None).
		// Without compression the block cache only keeps parsed block
		// headers pointing into the mmap; 16 MiB of cost (most of it pages
		// of the mmapped files, not heap) replaces the default 256 MiB.
		WithBlockCacheSize(16 << 20).
		// In Badger v4 the index cache is used only for encrypted tables;
		// unencrypted table indexes and bloom filters are read in place from
		// the mmapped files. A non-zero size would only allocate an unused
		// cache, so it stays 0.
		WithIndexCacheSize(0).
		// Two compactors (the minimum that Badger accepts besides zero) keep
		// levels in shape and drop expired entries; the write rate does not
		// need the default four.
		WithNumCompactors(2).
		// NumGoroutines only sizes Badger's Stream framework (backups,
		// exports); this package never streams.
		WithNumGoroutines(2).
		// Badger's expvar metrics are process-global and would collide with
		// the service's own; sessiond exports Len instead.
		WithMetricsEnabled(false).
		// A compaction on Close would rewrite tables even when the open is
		// refused (OpenBadger closes the database it found damaged), and only
		// saves a little time at the next start.
		WithCompactL0OnClose(false).
		// Only writeLoop writes, one transaction at a time, so no two
		// transactions can conflict and tracking read sets for conflict
		// detection would cost memory for nothing.
		WithDetectConflicts(false)
}

// Retention returns how long past a token's expiry its record is kept: the
// largest Options.Retention the store was ever opened with.
func (b *Badger) Retention() time.Duration { return b.retention }

// Close waits for operations in flight, stops the background goroutines and
// closes Badger. Afterwards every method returns an error wrapping
// [ErrClosed]. Calling Close again returns the first call's result.
func (b *Badger) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()

		b.cancel()
		b.wg.Wait()
		// Closing flushes the memtable into a new table through a memory
		// map, which on a full disk kills the process with SIGBUS. Every
		// acknowledged write is already synced in the journal, so below
		// the reserve the database is left as a crash would leave it, and
		// the next open replays the journal. Its directory lock then lasts until
		// the process exits.
		if err := checkSpace(b.dir, reserve(b.treeSize())); errors.Is(err, ErrDiskFull) {
			b.log.Warn("revocation store left for replay at the next start, not flushed", "err", err)
		} else {
			if b.journal.off > 0 || b.journal.broken {
				if err := b.checkpoint(); err != nil {
					b.closeErr = fmt.Errorf("close revocation store: %w", err)
				}
			}
			if err := b.db.Close(); err != nil && b.closeErr == nil {
				b.closeErr = fmt.Errorf("close revocation store: %w", err)
			}
		}
		if err := b.journal.close(); err != nil && b.closeErr == nil {
			b.closeErr = fmt.Errorf("close revocation store journal: %w", err)
		}
		if err := b.seal.close(); err != nil && b.closeErr == nil {
			b.closeErr = fmt.Errorf("close revocation store seal: %w", err)
		}
	})
	return b.closeErr
}

// badgerLogger adapts Badger's printf-style logger to slog. Badger's INFO
// lines (table counts, compactions, replay) are routine, so they go to
// Debug with its DEBUG lines. The message is formatted only when the level
// is enabled: Badger logs at Debug on every write.
type badgerLogger struct {
	log *slog.Logger
}

func (l badgerLogger) Errorf(format string, args ...any) {
	l.output(slog.LevelError, format, args)
}

func (l badgerLogger) Warningf(format string, args ...any) {
	l.output(slog.LevelWarn, format, args)
}

func (l badgerLogger) Infof(format string, args ...any) {
	l.output(slog.LevelDebug, format, args)
}

func (l badgerLogger) Debugf(format string, args ...any) {
	l.output(slog.LevelDebug, format, args)
}

func (l badgerLogger) output(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	l.log.Log(ctx, level, msg, "component", "badger")
}
