package revocation

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/google/uuid"
)

var _ Store = (*Badger)(nil)

const (
	defaultGCInterval = 10 * time.Minute

	// maxBatch is the most Revoke calls one group commit carries. A batch of
	// 1024 entries is about 40 KiB, far below the ~2.4 MiB (15% of
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
// scan of entries skips them.
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
}

// Badger is a [Store] kept in a Badger database in a directory of its own.
// Open it with [OpenBadger]; it is safe for concurrent use. It owns two
// goroutines, the group-commit writer and the periodic [Badger.Reclaim], which
// [Badger.Close] stops.
type Badger struct {
	db         *badger.DB
	log        *slog.Logger
	now        func() time.Time
	gcInterval time.Duration

	// reclaimMu makes Reclaim passes run one at a time (see compactExpired).
	reclaimMu sync.Mutex

	// writes carries Revoke requests to the single writer goroutine.
	writes chan *revokeRequest
	// sealing carries committed batches from the writer to the sealer,
	// which records their sequence number in the seal and then answers
	// their callers. It has room for one batch, so the next batch is
	// committed while the previous one's seal is fsynced.
	sealing chan sealJob
	seal    *seal
	// dir is the store's directory.
	dir string
	// retention is the store's retention (Options.Retention).
	retention time.Duration
	// space tracks the free disk space (writer only, and Reclaim under
	// reclaimMu for its own check).
	space spaceGuard

	// epoch identifies this store for Changes; set at open.
	epoch string
	// seq is the latest sequence number handed out. Only the writer
	// goroutine uses it once the store is open.
	seq uint64
	// rescan tells the writer to rebuild index from disk before its next
	// commit: a failed commit may have reached the disk anyway. Writer only.
	rescan bool
	// index answers Changes from memory.
	index index
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

// sealJob is a committed batch on its way to the sealer.
type sealJob struct {
	batch []*revokeRequest
	seq   uint64
}

// revokeRequest is one Revoke call waiting for the group commit.
type revokeRequest struct {
	id        uuid.UUID
	expiresAt uint64
	// done receives the commit's result. It has room for one value so the
	// writer never blocks on a caller whose context expired.
	done chan error
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
		db:         db,
		log:        log,
		now:        now,
		gcInterval: gcInterval,
		dir:        dir,
		writes:     make(chan *revokeRequest, maxBatch),
		sealing:    make(chan sealJob, 1),
	}
	b.space.dir = dir
	if err := b.open(sl, opts.Retention); err != nil {
		db.Close()
		return nil, fmt.Errorf("open revocation store %q: %w", dir, err)
	}
	ok = true
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Add(3)
	go b.writeLoop(ctx)
	go b.sealLoop()
	go b.gcLoop(ctx)
	return b, nil
}

// open reads the store's records and index, holds them against the seal sl
// (nil when there is none), makes a seal when there is none, and applies
// retention.
func (b *Badger) open(sl *seal, retention time.Duration) error {
	// A store with a seal has an epoch; one without may be from a version
	// that kept neither, and gets both.
	sealed, err := b.openFeed(sl != nil)
	if err != nil {
		return err
	}
	epoch, err := parseEpoch(b.epoch)
	if err != nil {
		return err
	}
	switch {
	case sl != nil && sl.state.epoch != epoch:
		return fmt.Errorf("%w: the directory holds another store (epoch %s) than %s records (epoch %s)", ErrDamaged, b.epoch, sealPath(b.dir), epochString(sl.state.epoch[:]))
	case sl != nil && b.seq < sl.state.seq:
		return fmt.Errorf("%w: it holds writes up to number %d, but %d were acknowledged (%s): files were lost or damaged", ErrDamaged, b.seq, sl.state.seq, sealPath(b.dir))
	case sl == nil && sealed:
		return fmt.Errorf("%w: its seal %s is missing", ErrDamaged, sealPath(b.dir))
	case sl == nil:
		// A new store, or one from a version without seals: the disk is
		// the only record there is.
		if err := b.db.Update(func(txn *badger.Txn) error { return txn.Set(sealedKey, []byte{1}) }); err != nil {
			return fmt.Errorf("mark the store sealed: %w", err)
		}
		if sl, err = createSeal(sealPath(b.dir), sealState{epoch: epoch, seq: b.seq}); err != nil {
			return fmt.Errorf("create seal: %w", err)
		}
	}
	b.seal = sl
	b.filter.Store(b.filterFromIndex())
	return b.applyRetention(retention)
}

// treeBytes returns the size of the tables in dir (0 when dir does not
// exist).
func treeBytes(dir string) (int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".sst") {
			info, err := e.Info()
			if err != nil {
				return 0, err
			}
			n += info.Size()
		}
	}
	return n, nil
}

// checkSpace returns an error wrapping ErrDiskFull when the file system of
// dir has less than need bytes free.
func checkSpace(dir string, need int64) error {
	free, err := freeSpace(dir)
	if err != nil {
		return err
	}
	if free < need {
		return fmt.Errorf("%w: %s free, the store needs at least %s", ErrDiskFull, mib(free), mib(need))
	}
	return nil
}

// spaceGuard decides whether the writer may write: it reads the free space
// before every commit (one statfs) and recomputes the reserve from the
// tree's size at most once a second.
type spaceGuard struct {
	dir     string
	need    int64
	checked time.Time
}

func (g *spaceGuard) check(tree func() int64) error {
	if now := time.Now(); now.Sub(g.checked) > time.Second {
		g.need, g.checked = reserve(tree()), now
	}
	return checkSpace(g.dir, g.need)
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
		// Durability: a commit returns only after its write-ahead log is
		// msynced. Concurrent Revokes share that sync through the group
		// commit in writeLoop (Badger alone would sync once per transaction).
		WithSyncWrites(true).
		// Values are 8 bytes: keep every value inline in the LSM tree (the
		// threshold is stated, not left to the 1 MiB default, to make that
		// explicit). The value log then stays empty, value-log GC has nothing
		// to do, and a read never needs a second lookup in the value log.
		WithValueThreshold(1 << 10).
		// The value log holds nothing but its header (see above), so a small
		// file is enough; Badger mmaps 2× this size, sparse.
		WithValueLogFileSize(16 << 20).
		// A memtable of 16 MiB holds about 150,000 revocations; the default
		// 64 MiB × 5 memtables alone would blow the memory budget. Two
		// memtables: one being written while the other is flushed to L0.
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

// Revoke records id, of a token that expires at expires, as revoked until
// expires plus [Badger.Retention]. It returns nil only after the record is
// fsynced and counted in the seal; concurrent calls share the fsyncs. If the
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

// writeLoop is the only writer. It takes the first waiting request, adds
// every request that queued up meanwhile (they arrive while the previous
// commit is being fsynced), commits them as one transaction and reports
// the result to each caller. This is what makes concurrent Revokes share
// an fsync: Badger's own write pipeline batches concurrent transactions but
// still msyncs its write-ahead log once per transaction.
func (b *Badger) writeLoop(ctx context.Context) {
	defer b.wg.Done()
	defer close(b.sealing)
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
		if err := b.commit(batch); err != nil {
			if errors.Is(err, ErrDiskFull) {
				b.log.Warn("revocation store refuses writes", "batch", len(batch), "err", err)
			} else {
				b.log.Error("revocation store commit failed", "batch", len(batch), "err", err)
			}
			for _, req := range batch {
				req.done <- err
			}
			continue
		}
		// The sealer answers the callers; batch is its now.
		b.sealing <- sealJob{batch: batch, seq: b.seq}
		batch = make([]*revokeRequest, 0, maxBatch)
	}
}

// sealLoop records each committed batch's sequence number in the seal, in
// commit order, and then answers the batch's callers: a Revoke returns nil
// only once the seal counts its write, so that a store which later loses it
// is refused at open. A batch that stored nothing new waits its turn all the
// same, since the write it found may belong to a batch still being sealed.
// It ends when the writer closes b.sealing.
func (b *Badger) sealLoop() {
	defer b.wg.Done()
	for job := range b.sealing {
		var err error
		if job.seq > b.seal.state.seq {
			err = b.seal.write(sealState{epoch: b.seal.state.epoch, seq: job.seq})
			if err != nil {
				b.log.Error("revocation store seal failed", "batch", len(job.batch), "err", err)
			}
		}
		for _, req := range job.batch {
			req.done <- err
		}
	}
}

// commit writes a batch in one transaction, keeping for every id the latest
// of the requested expiry and the stored one. Every entry it writes gets the
// next sequence number, and the latest one is stored in the same
// transaction, so that the entries and the counter reach the disk together
// or not at all. Once committed, the entries go into the index for Changes.
//
// A key this transaction reads was committed before it started, and Badger
// shows a commit to later transactions only after its write, fsync included,
// has finished; so when the stored record already lasts long enough,
// leaving it alone is as durable as writing it again.
//
// There is no retry on badger.ErrConflict: this is the only writer and
// conflict detection is off (see badgerOptions), so it cannot occur.
func (b *Badger) commit(batch []*revokeRequest) error {
	if err := b.space.check(b.treeSize); err != nil {
		return err
	}
	want := make(map[uuid.UUID]uint64, len(batch))
	for _, req := range batch {
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
	// Before the commit, so the filter holds each id by the time its
	// Revoke returns.
	f := b.filter.Load()
	for id := range want {
		f.add(id)
	}

	txn := b.db.NewTransaction(true)
	defer txn.Discard()
	seq := b.seq
	added := make([]indexEntry, 0, len(want))
	var extended []uuid.UUID
	for id, exp := range want {
		key := append([]byte(nil), id[:]...) // Badger keeps the slice until the commit
		item, err := txn.Get(key)
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
		added = append(added, indexEntry{id: id, expires: exp, seq: seq})
	}
	if len(added) == 0 {
		return nil
	}
	if err := txn.Set(seqKey, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return fmt.Errorf("write sequence number: %w", err)
	}
	// Numbers are never handed out twice, even after a failed commit.
	b.seq = seq
	if err := txn.Commit(); err != nil {
		// The write may have reached the disk all the same; the index
		// must then learn of it, or a retry that finds the entry stored
		// would leave it out of Changes for good.
		b.rescan = true
		return fmt.Errorf("commit %d revocations: %w", len(added), err)
	}
	b.index.add(added, extended, seq)
	return nil
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

// openFeed reads the epoch (creating it when the store has none, unless
// mustExist), the sequence number, the retention and whether the store is
// sealed, and loads the index.
func (b *Badger) openFeed(mustExist bool) (sealed bool, err error) {
	err = b.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(epochKey)
		switch {
		case err == nil:
			raw, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(raw) != 16 {
				return fmt.Errorf("stored epoch of %d bytes", len(raw))
			}
			b.epoch = epochString(raw)
		case errors.Is(err, badger.ErrKeyNotFound) && mustExist:
			return fmt.Errorf("%w: its epoch record is missing", ErrDamaged)
		case errors.Is(err, badger.ErrKeyNotFound):
			raw, err := newEpoch()
			if err != nil {
				return err
			}
			if err := txn.Set(epochKey, raw); err != nil {
				return err
			}
			b.epoch = epochString(raw)
		default:
			return err
		}
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
		_, err = txn.Get(sealedKey)
		switch {
		case err == nil:
			sealed = true
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("read the store's records: %w", err)
	}
	if err := b.scan(); err != nil {
		return false, fmt.Errorf("load the index: %w", err)
	}
	return sealed, nil
}

// readUint64 reads an 8-byte record; a missing one is 0.
func readUint64(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("%w: record %q of %d bytes", ErrDamaged, key, len(v))
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err
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
// extending every stored record by the difference, so that a verifier
// that now allows more leeway on exp still finds every closed token's
// record. It runs in OpenBadger, before the writer starts.
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
	if err := b.db.Update(func(txn *badger.Txn) error {
		return txn.Set(retainKey, binary.BigEndian.AppendUint64(nil, uint64(r)))
	}); err != nil {
		return fmt.Errorf("store the retention: %w", err)
	}
	if err := b.seal.write(sealState{epoch: b.seal.state.epoch, seq: b.seq}); err != nil {
		return err
	}
	b.log.Info("revocation store retention raised", "from", b.retention, "to", r, "records", total, "took", time.Since(start))
	b.retention = r
	return nil
}

// Retention returns how long past a token's expiry its record is kept: the
// largest Options.Retention the store was ever opened with.
func (b *Badger) Retention() time.Duration { return b.retention }

// treeSize returns the size of the LSM tree's tables in bytes.
func (b *Badger) treeSize() int64 {
	_, size := b.tree()
	return size
}

// scan replaces the index with every unexpired entry on disk, in one pass
// over the keys and a sort by sequence number.
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
	maxSeq := uint64(0)
	err := b.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false // values are 16 bytes in the tree: read in place, not copied
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() { // skips expired entries
			item := it.Item()
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
	b.index.mu.Lock()
	defer b.index.mu.Unlock()
	b.index.entries = entries // spare capacity, if any, takes the next writes
	b.index.newer = nil
	b.index.seq = b.seq
	return nil
}

// IsRevoked reports whether id is revoked now. On error the answer is
// unknown; it then also returns true, so that even a caller that ignores
// the error fails closed.
func (b *Badger) IsRevoked(ctx context.Context, id uuid.UUID) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return true, fmt.Errorf("is revoked %s: %w", id, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("is revoked %s: %w", id, err)
	}
	if !b.filter.Load().mayContain(id) {
		return false, nil
	}
	err := b.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(id[:])
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	default:
		return true, fmt.Errorf("is revoked %s: %w", id, err)
	}
}

// Len returns the number of live (unexpired) entries. It walks every key, so
// it is meant for tests, the command line and occasional metrics, not for
// the request path.
func (b *Badger) Len(ctx context.Context) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, fmt.Errorf("count revocations: %w", ErrClosed)
	}
	n := 0
	err := b.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() { // skips expired entries
			if len(it.Item().Key()) != 16 {
				continue // the store's own records
			}
			n++
			if n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("count revocations: %w", err)
	}
	return n, nil
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
// entries from the index in memory that [Badger.Changes] answers from.
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
		// write is already synced to the memtable's log, so below the
		// reserve the database is left as a crash would leave it, and the
		// next open replays the log. Its directory lock then lasts until
		// the process exits.
		if err := checkSpace(b.dir, reserve(b.treeSize())); errors.Is(err, ErrDiskFull) {
			b.log.Warn("revocation store left for replay at the next start, not flushed", "err", err)
		} else if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("close revocation store: %w", err)
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
