package revocation_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/sessiond/sessiond/revocation"
)

var _ revocation.Feed = (*revocation.Badger)(nil)

// changes calls Changes and fails the test on error.
func changes(tb testing.TB, f revocation.Feed, since uint64) revocation.Changes {
	tb.Helper()
	c, err := f.Changes(context.Background(), since)
	if err != nil {
		tb.Fatalf("Changes(%d) error = %v", since, err)
	}
	return c
}

// revoke revokes ids until until and fails the test on error.
func revoke(tb testing.TB, s revocation.Store, until time.Time, ids ...uuid.UUID) {
	tb.Helper()
	for _, id := range ids {
		if err := s.Revoke(context.Background(), id, until); err != nil {
			tb.Fatalf("Revoke(%s) = %v", id, err)
		}
	}
}

// margin is how much longer than the token's expiry (plus retention) the
// store keeps an entry: one second, so that the entry cannot vanish between
// a verifier's reading of the clock for exp and Badger's for the entry.
const margin = time.Second

func newIDs(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	return ids
}

// ids returns the ids of c's entries, failing the test if one appears twice
// or the entries are not in sequence order.
func ids(tb testing.TB, c revocation.Changes) map[uuid.UUID]revocation.Entry {
	tb.Helper()
	m := make(map[uuid.UUID]revocation.Entry, len(c.Entries))
	var last uint64
	for i, e := range c.Entries {
		if _, dup := m[e.ID]; dup {
			tb.Fatalf("id %s appears twice in Changes", e.ID)
		}
		if i > 0 && e.Seq < last {
			tb.Fatalf("entry %d has seq %d after seq %d", i, e.Seq, last)
		}
		if e.Seq > c.Seq {
			tb.Fatalf("entry seq %d > Changes.Seq %d", e.Seq, c.Seq)
		}
		last = e.Seq
		m[e.ID] = e
	}
	return m
}

func wantIDs(tb testing.TB, c revocation.Changes, want ...uuid.UUID) {
	tb.Helper()
	got := ids(tb, c)
	if len(got) != len(want) {
		tb.Fatalf("Changes has %d entries, want %d", len(got), len(want))
	}
	for _, id := range want {
		if _, ok := got[id]; !ok {
			tb.Fatalf("Changes lacks %s", id)
		}
	}
}

func TestChanges(t *testing.T) {
	s := openStore(t, t.TempDir(), revocation.Options{})
	until := time.Now().Add(time.Hour).Truncate(time.Second)

	empty := changes(t, s, 0)
	if !empty.Snapshot || empty.Seq != 0 || len(empty.Entries) != 0 || empty.Epoch == "" {
		t.Fatalf("Changes(0) of a new store = %+v, want an empty snapshot at seq 0 with an epoch", empty)
	}

	first := newIDs(6)
	revoke(t, s, until, first...)
	snap := changes(t, s, 0)
	t.Run("snapshot", func(t *testing.T) {
		if !snap.Snapshot || snap.Seq != 6 || snap.Epoch != empty.Epoch {
			t.Errorf("Changes(0) = seq %d snapshot %v epoch %q, want seq 6, snapshot, epoch %q", snap.Seq, snap.Snapshot, snap.Epoch, empty.Epoch)
		}
		wantIDs(t, snap, first...)
		for _, e := range snap.Entries {
			if !e.Until.Equal(until.Add(margin)) {
				t.Errorf("Until of %s = %v, want %v", e.ID, e.Until, until.Add(margin))
			}
		}
	})
	t.Run("nothing new", func(t *testing.T) {
		c := changes(t, s, snap.Seq)
		if c.Snapshot || c.Seq != snap.Seq || len(c.Entries) != 0 {
			t.Errorf("Changes(%d) = %+v, want an empty delta at the same seq", snap.Seq, c)
		}
	})
	second := newIDs(2)
	revoke(t, s, until, second...)
	t.Run("delta", func(t *testing.T) {
		c := changes(t, s, snap.Seq)
		if c.Snapshot || c.Seq != snap.Seq+2 {
			t.Errorf("Changes(%d) = seq %d snapshot %v, want a delta to seq %d", snap.Seq, c.Seq, c.Snapshot, snap.Seq+2)
		}
		wantIDs(t, c, second...)
	})
	t.Run("revoking again changes nothing", func(t *testing.T) {
		revoke(t, s, until, first[0])
		revoke(t, s, until.Add(-time.Minute), first[1])
		if c := changes(t, s, snap.Seq+2); len(c.Entries) != 0 || c.Seq != snap.Seq+2 {
			t.Errorf("after revoking again: Changes = %+v, want nothing new", c)
		}
	})
	t.Run("since ahead of the store", func(t *testing.T) {
		c := changes(t, s, 1000)
		if !c.Snapshot {
			t.Fatalf("Changes(1000) is a delta, want a snapshot")
		}
		wantIDs(t, c, append(first, second...)...)
	})
	t.Run("delta of most of the list", func(t *testing.T) {
		// since 1 would leave out one entry of eight: a snapshot instead.
		c := changes(t, s, 1)
		if !c.Snapshot {
			t.Errorf("Changes(1) is a delta of 7 of 8 entries, want a snapshot")
		}
	})
	t.Run("extension", func(t *testing.T) {
		before := changes(t, s, 0).Seq
		later := until.Add(time.Hour)
		revoke(t, s, later, first[2])
		c := changes(t, s, before)
		wantIDs(t, c, first[2])
		if e := c.Entries[0]; !e.Until.Equal(later.Add(margin)) || e.Seq != before+1 {
			t.Errorf("extended entry = %+v, want Until %v, Seq %d", e, later.Add(margin), before+1)
		}
		all := changes(t, s, 0)
		wantIDs(t, all, append(first, second...)...) // once, with the later expiry
		if e := ids(t, all)[first[2]]; !e.Until.Equal(later.Add(margin)) {
			t.Errorf("snapshot has %s until %v, want %v", e.ID, e.Until, later.Add(margin))
		}
		if err := s.Reclaim(); err != nil {
			t.Fatal(err)
		}
		wantIDs(t, changes(t, s, 0), append(first, second...)...)
		wantIDs(t, changes(t, s, before), first[2])
	})
	t.Run("another store has another epoch", func(t *testing.T) {
		other := openStore(t, t.TempDir(), revocation.Options{})
		if got := changes(t, other, 0).Epoch; got == snap.Epoch {
			t.Errorf("two stores share the epoch %q", got)
		}
	})
}

func TestChangesExpiry(t *testing.T) {
	// The index follows Options.Now; Badger's TTL follows the wall clock,
	// an hour behind the entries' expiry here, so only the index expires.
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := openStore(t, t.TempDir(), revocation.Options{Now: clock})
	short, long := newIDs(3), newIDs(2)
	revoke(t, s, now.Add(time.Hour), short...)
	revoke(t, s, now.Add(3*time.Hour), long...)
	wantIDs(t, changes(t, s, 0), append(short, long...)...)

	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	wantIDs(t, changes(t, s, 0), long...)
	wantIDs(t, changes(t, s, 3), long...) // a delta skips them too
	if err := s.Reclaim(); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, changes(t, s, 0), long...)
	if c := changes(t, s, 5); c.Seq != 5 || c.Snapshot || len(c.Entries) != 0 {
		t.Errorf("Changes(5) after compaction = %+v, want an empty delta at 5", c)
	}
}

// A restart keeps the epoch, the sequence numbers and the entries: a copy
// that was current before is current after, without a snapshot.
func TestChangesAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := revocation.OpenBadger(dir, revocation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	before := newIDs(5)
	revoke(t, s, until, before...)
	last := changes(t, s, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir, revocation.Options{})
	c := changes(t, s, last.Seq)
	if c.Snapshot || c.Seq != last.Seq || c.Epoch != last.Epoch || len(c.Entries) != 0 {
		t.Fatalf("after reopen Changes(%d) = %+v, want an empty delta at seq %d, epoch %q", last.Seq, c, last.Seq, last.Epoch)
	}
	after := newIDs(1)
	revoke(t, s, until, after...)
	c = changes(t, s, last.Seq)
	wantIDs(t, c, after...)
	if c.Entries[0].Seq != last.Seq+1 {
		t.Errorf("first write after reopen has seq %d, want %d", c.Entries[0].Seq, last.Seq+1)
	}
	wantIDs(t, changes(t, s, 0), append(before, after...)...)
	wantLen(t, s, 6) // the store's own records are not entries
}

// A store written before sequence numbers existed (8-byte values) opens,
// counts and publishes its entries with seq 0; new writes number from 1.
func TestChangesOldFormat(t *testing.T) {
	dir := t.TempDir()
	old := buildStore(t, dir, 3)
	s := openStore(t, dir, revocation.Options{})
	snap := changes(t, s, 0)
	wantIDs(t, snap, old...)
	for _, e := range snap.Entries {
		if e.Seq != 0 {
			t.Errorf("old entry %s has seq %d, want 0", e.ID, e.Seq)
		}
	}
	wantLen(t, s, 3)

	// Extending an old entry: the new expiry replaces it, once.
	later := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	revoke(t, s, later, old[0])
	fresh := newIDs(1)
	revoke(t, s, later, fresh...)
	c := changes(t, s, 0)
	wantIDs(t, c, append(old, fresh...)...)
	if e := ids(t, c)[old[0]]; e.Seq != 1 || !e.Until.Equal(later.Add(margin)) {
		t.Errorf("extended old entry = %+v, want seq 1 until %v", e, later.Add(margin))
	}
	wantIDs(t, changes(t, s, 1), fresh...)
}

// Polling Changes(since) with the Seq of each answer, while writers
// revoke, sees every acknowledged revocation: a delta never skips a write.
func TestChangesConcurrent(t *testing.T) {
	s := openStore(t, t.TempDir(), revocation.Options{})
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	const writers, each = 8, 40
	acked := make(chan uuid.UUID, writers*each)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				id := uuid.New()
				if err := s.Revoke(ctx, id, until); err != nil {
					t.Errorf("Revoke() = %v", err)
					return
				}
				acked <- id
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[uuid.UUID]bool{}
	var since uint64
	poll := func() {
		c := changes(t, s, since)
		if c.Snapshot && since != 0 {
			seen = map[uuid.UUID]bool{}
		}
		for _, e := range c.Entries {
			seen[e.ID] = true
		}
		since = c.Seq
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			poll()
			time.Sleep(time.Millisecond)
		}
	}
	poll()
	close(acked)
	n := 0
	for id := range acked {
		n++
		if !seen[id] {
			t.Errorf("acknowledged revocation %s never appeared in a delta", id)
		}
	}
	if got := changes(t, s, 0); got.Seq != uint64(n) || len(got.Entries) != n {
		t.Errorf("final snapshot: seq %d with %d entries, want %d and %d", got.Seq, len(got.Entries), n, n)
	}
}

func TestChangesClosed(t *testing.T) {
	s, err := revocation.OpenBadger(t.TempDir(), revocation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Changes(context.Background(), 0); !errors.Is(err, revocation.ErrClosed) {
		t.Errorf("Changes() after Close = %v, want %v", err, revocation.ErrClosed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s = openStore(t, t.TempDir(), revocation.Options{})
	if _, err := s.Changes(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Changes(cancelled ctx) = %v, want %v", err, context.Canceled)
	}
}

// The sequence counter and the entries commit together: after a SIGKILL in
// the middle of writes, every acknowledged entry is there, sequence numbers
// are distinct, and the counter is at least the largest of them, so the
// next write cannot reuse one.
func TestChangesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	t.Parallel()
	dir := t.TempDir()
	cmd, stdout := startCrashHelper(t, dir)
	var acked []uuid.UUID
	sc := bufio.NewScanner(stdout)
	deadline := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
	for len(acked) < 200 && sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked = append(acked, uuid.MustParse(rest))
		}
	}
	deadline.Stop()
	cmd.Process.Kill()
	_ = cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("helper acknowledged %d revocations, want 200", len(acked))
	}

	s := openStore(t, dir, revocation.Options{})
	snap := changes(t, s, 0)
	got := ids(t, snap)
	seqs := map[uint64]bool{}
	for _, e := range snap.Entries {
		if e.Seq == 0 || seqs[e.Seq] {
			t.Fatalf("entry %s has seq %d, zero or seen before", e.ID, e.Seq)
		}
		seqs[e.Seq] = true
	}
	for _, id := range acked {
		if _, ok := got[id]; !ok {
			t.Errorf("acknowledged %s missing after SIGKILL", id)
		}
	}
	next := newIDs(1)
	revoke(t, s, time.Now().Add(time.Hour), next...)
	if c := changes(t, s, snap.Seq); len(c.Entries) != 1 || c.Entries[0].Seq != snap.Seq+1 || seqs[c.Entries[0].Seq] {
		t.Errorf("write after the crash: %+v, want one entry with a new seq %d", c.Entries, snap.Seq+1)
	}
}

// BenchmarkChanges measures a snapshot and a small delta of a list of a
// million entries.
func BenchmarkChanges(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a store of a million entries")
	}
	dir := b.TempDir()
	buildStoreSeq(b, dir, 1_000_000)
	s := openStore(b, dir, revocation.Options{})
	ctx := context.Background()
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			c, err := s.Changes(ctx, 0)
			if err != nil || len(c.Entries) != 1_000_000 {
				b.Fatalf("Changes(0) = %d entries, %v", len(c.Entries), err)
			}
		}
	})
	b.Run("delta=100", func(b *testing.B) {
		for b.Loop() {
			c, err := s.Changes(ctx, 1_000_000-100)
			if err != nil || len(c.Entries) != 100 || c.Snapshot {
				b.Fatalf("Changes() = %d entries, snapshot %v, %v", len(c.Entries), c.Snapshot, err)
			}
		}
	})
}

// buildStoreSeq is buildStore in the current format: entries numbered from
// 1, and the counter.
func buildStoreSeq(tb testing.TB, dir string, n int) {
	tb.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		tb.Fatal(err)
	}
	exp := uint64(time.Now().Add(24 * time.Hour).Unix())
	wb := db.NewWriteBatch()
	for i := range n {
		id := uuid.New()
		value := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, exp), uint64(i+1))
		e := badger.NewEntry(id[:], value)
		e.ExpiresAt = exp
		if err := wb.SetEntry(e); err != nil {
			tb.Fatal(err)
		}
	}
	if err := wb.Set([]byte("\x00meta/seq"), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
		tb.Fatal(err)
	}
	if err := wb.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
}

// Head tells what Changes would answer, for every kind of since: the same
// epoch, seq and kind, and entry counts that bound Changes' entries.
func TestHead(t *testing.T) {
	s := openStore(t, t.TempDir(), revocation.Options{})
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	revoke(t, s, until, newIDs(10)...)
	for _, since := range []uint64{0, 1, 4, 5, 6, 9, 10, 11, 1 << 40} {
		h, err := s.Head(context.Background(), since)
		if err != nil {
			t.Fatalf("Head(%d) = %v", since, err)
		}
		c := changes(t, s, since)
		if h.Epoch != c.Epoch || h.Seq != c.Seq || h.Snapshot != c.Snapshot || h.Total != 10 ||
			h.Entries < len(c.Entries) || (h.Snapshot && h.Entries != h.Total) {
			t.Errorf("Head(%d) = %+v; Changes = epoch %q seq %d snapshot %v with %d entries, want them to agree",
				since, h, c.Epoch, c.Seq, c.Snapshot, len(c.Entries))
		}
	}
	s.Close()
	if _, err := s.Head(context.Background(), 0); !errors.Is(err, revocation.ErrClosed) {
		t.Errorf("Head after Close = %v, want ErrClosed", err)
	}
}

// Snapshot lends what Changes(0) copies: the same entries (expired and
// superseded ones left out), epoch, seq and cutoffs; what is written
// afterwards does not change a Snapshot taken before; and it costs 4 bytes
// an entry, not a copy of each.
func TestSnapshot(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := openStore(t, t.TempDir(), revocation.Options{Now: clock})
	short, long := newIDs(3), newIDs(2000)
	revoke(t, s, now.Add(time.Hour), short...)
	revoke(t, s, now.Add(3*time.Hour), long...)
	revoke(t, s, now.Add(4*time.Hour), long[0]) // extended: its first entry is superseded
	if err := s.CutOff(context.Background(), "alice", now, now.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour) // short expires
	mu.Unlock()

	same := func(snap revocation.Snapshot, want revocation.Changes) {
		t.Helper()
		if snap.Epoch != want.Epoch || snap.Seq != want.Seq || snap.Len() != len(want.Entries) || len(snap.Cutoffs) != len(want.Cutoffs) {
			t.Fatalf("Snapshot = epoch %q seq %d, %d entries, %d cutoffs; Changes(0) = epoch %q seq %d, %d entries, %d cutoffs",
				snap.Epoch, snap.Seq, snap.Len(), len(snap.Cutoffs), want.Epoch, want.Seq, len(want.Entries), len(want.Cutoffs))
		}
		for i, e := range want.Entries {
			if got := snap.Entry(i); got != e || snap.ID(i) != e.ID {
				t.Fatalf("Snapshot entry %d = %+v (id %s), Changes(0) has %+v", i, got, snap.ID(i), e)
			}
		}
		for i, c := range want.Cutoffs {
			if snap.Cutoffs[i] != c {
				t.Fatalf("Snapshot cutoff %d = %+v, Changes(0) has %+v", i, snap.Cutoffs[i], c)
			}
		}
	}
	before := changes(t, s, 0)
	wantIDs(t, before, long...)
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	same(snap, before)

	revoke(t, s, now.Add(5*time.Hour), newIDs(10)...)
	revoke(t, s, now.Add(6*time.Hour), long[1])
	if err := s.Reclaim(); err != nil { // compacts the index into a new array
		t.Fatal(err)
	}
	same(snap, before)
	later, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	same(later, changes(t, s, 0))

	var m0, m1 runtime.MemStats
	const n = 10
	runtime.ReadMemStats(&m0)
	for range n {
		if _, err := s.Snapshot(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m1)
	// Changes(0) copies 48 bytes an entry; a Snapshot holds 4 (and the
	// cutoffs, and a small map of the extended ids). The slack is for what
	// the store's goroutines allocate meanwhile.
	if got, most := (m1.TotalAlloc-m0.TotalAlloc)/n, uint64(later.Len()*8+8<<10); got > most {
		t.Errorf("Snapshot of %d entries allocated %d bytes, want at most %d", later.Len(), got, most)
	}
}

func TestSnapshotClosed(t *testing.T) {
	s, err := revocation.OpenBadger(t.TempDir(), revocation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Snapshot(context.Background()); !errors.Is(err, revocation.ErrClosed) {
		t.Errorf("Snapshot() after Close = %v, want %v", err, revocation.ErrClosed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s = openStore(t, t.TempDir(), revocation.Options{})
	if _, err := s.Snapshot(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Snapshot(cancelled ctx) = %v, want %v", err, context.Canceled)
	}
}
