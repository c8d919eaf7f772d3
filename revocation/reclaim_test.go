package revocation_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/ristretto/v2/z"
	"github.com/google/uuid"

	"github.com/sessiond/sessiond/revocation"
)

// Expired entries leave the disk: after a burst of short-lived closes has
// expired, one Reclaim brings the store's size on disk back to within 1 MiB
// of an empty store's, and keeps every live entry.
//
// The size is the sum of the apparent sizes of every file in the directory,
// measured with the store open each time, so that the write-ahead log and
// the value log, which Badger preallocates at a fixed size, count the same
// each time; what changes is the tables (.sst).
//
// The tree has the shape of a store that has served for a while: old
// entries in the last level, newer ones in a level-0 table on top. Getting
// there through Revoke would take most of a million closes (five memtable
// flushes before Badger compacts anything), so the burst, 200,000 entries
// that expire one to two seconds after they are written, is loaded straight
// into the last level with Badger's StreamWriter. Its entries have the
// store's keys and ExpiresAt, and an 8-byte value, the format from before
// sequence numbers that the store still reads. The live entries then go
// through Revoke and reach a level-0 table when the store closes.
//
// Without the compaction in Reclaim the burst stays on disk: Badger's
// compactors leave a single level-0 table alone, and the size stays about
// 5 MiB over the start.
func TestReclaimShrinksDisk(t *testing.T) {
	t.Parallel()
	const (
		live  = 1000
		burst = 200_000
		slack = 1 << 20 // what the size may exceed the start by
	)
	dir := t.TempDir()
	ctx := context.Background()

	s := openStore(t, dir, revocation.Options{})
	start, startFiles := diskSize(t, dir)
	closeStore(t, s)

	// The burst. StreamWriter.Prepare empties the store first; it was empty
	// but for the store's own records, which it recreates on open once the
	// seal that names the old store is gone (otherwise the open would,
	// rightly, refuse a store that lost its records).
	if err := os.Remove(dir + ".seal"); err != nil {
		t.Fatal(err)
	}
	var lastExpiry uint64
	ids := make([]uuid.UUID, burst)
	for i := range ids {
		ids[i] = uuid.New()
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	buf := z.NewBuffer(16<<20, "reclaim test")
	defer buf.Release()
	for i, id := range ids {
		exp := uint64(time.Now().Add(time.Second + time.Duration(i%1000)*time.Millisecond).Unix())
		lastExpiry = max(lastExpiry, exp)
		badger.KVToBuffer(&pb.KV{Key: id[:], Value: binary.BigEndian.AppendUint64(nil, exp), ExpiresAt: exp, Version: 1}, buf)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).
		WithLogger(nil).
		WithBlockCacheSize(1 << 20). // small: opening costs less
		WithIndexCacheSize(0).
		WithMemTableSize(16 << 20).
		WithValueLogFileSize(1 << 20))
	if err != nil {
		t.Fatalf("badger.Open() = %v", err)
	}
	sw := db.NewStreamWriter()
	if err := sw.Prepare(); err != nil {
		t.Fatalf("StreamWriter.Prepare() = %v", err)
	}
	if err := sw.Write(buf); err != nil {
		t.Fatalf("StreamWriter.Write() = %v", err)
	}
	if err := sw.Flush(); err != nil {
		t.Fatalf("StreamWriter.Flush() = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("badger Close() = %v", err)
	}

	// Live entries, through the real write path.
	s = openStore(t, dir, revocation.Options{})
	liveIDs := make([]uuid.UUID, live)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < live; i += 16 {
				liveIDs[i] = uuid.New()
				if err := s.Revoke(ctx, liveIDs[i], time.Now().Add(time.Hour)); err != nil {
					t.Errorf("Revoke() = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	closeStore(t, s)

	s = openStore(t, dir, revocation.Options{})
	peak, peakFiles := diskSize(t, dir)
	t.Logf("size on disk: start %d bytes %v; with the burst %d bytes %v", start, startFiles, peak, peakFiles)
	if peak < start+3*slack {
		t.Fatalf("the burst added only %d bytes: the test measures nothing", peak-start)
	}

	// Badger compares ExpiresAt, whole seconds, with the wall clock.
	for uint64(time.Now().Unix()) <= lastExpiry {
		time.Sleep(100 * time.Millisecond)
	}
	wantLen(t, s, live)
	began := time.Now()
	if err := s.Reclaim(); err != nil {
		t.Fatalf("Reclaim() = %v", err)
	}
	end, endFiles := diskSize(t, dir)
	t.Logf("after Reclaim (%v): %d bytes %v", time.Since(began).Round(time.Millisecond), end, endFiles)
	if end > start+slack {
		t.Errorf("size on disk after Reclaim = %d bytes, want at most %d (the start, %d, + 1 MiB); the burst added %d", end, start+slack, start, peak-start)
	}
	wantLen(t, s, live)
	for _, id := range liveIDs {
		wantRevoked(t, s, id, true)
	}
}

// diskSize returns the sum of the sizes of the files in dir, and each file's size.
func diskSize(t *testing.T, dir string) (int64, map[string]int64) {
	t.Helper()
	var total int64
	files := map[string]int64{}
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		files[d.Name()] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("size of %s: %v", dir, err)
	}
	return total, files
}

// closeStore closes s now (openStore's cleanup closing it again is harmless).
func closeStore(t *testing.T, s *revocation.Badger) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
}
