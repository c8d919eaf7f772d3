package revocation_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/revocation"
)

// A store that is not the one its seal records is refused, and the refusal
// changes nothing on disk: every file keeps its name, size and content.
// Without the checks, Badger opens each of these (or panics on the
// truncated table) with fewer revocations than were acknowledged.
func TestOpenRefusesDamagedStore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	t.Parallel()
	tests := []struct {
		name string
		// crash leaves writes in the memtable (SIGKILL) instead of a clean
		// close, which flushes them into a table.
		crash  crash
		damage func(t *testing.T, dir string)
		want   error
	}{
		{"MANIFEST deleted", closed, func(t *testing.T, dir string) { remove(t, filepath.Join(dir, "MANIFEST")) }, revocation.ErrDamaged},
		{"MANIFEST truncated", closed, func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "MANIFEST"), 0.5) }, revocation.ErrDamaged},
		{"MANIFEST emptied", closed, func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "MANIFEST"), 0) }, revocation.ErrDamaged},
		{"table half truncated", closed, func(t *testing.T, dir string) { truncate(t, only(t, dir, "*.sst"), 0.5) }, revocation.ErrDamaged},
		{"table corrupted", closed, func(t *testing.T, dir string) { flip(t, only(t, dir, "*.sst"), 0.3) }, revocation.ErrDamaged},
		{"table deleted", closed, func(t *testing.T, dir string) { remove(t, only(t, dir, "*.sst")) }, revocation.ErrDamaged},
		{"memtable deleted after checkpoints and SIGKILL", checkpointed, removeMemtables, revocation.ErrDamaged},
		{"memtable corrupted after checkpoints and SIGKILL", checkpointed, func(t *testing.T, dir string) { flipLastWrites(t, dir) }, revocation.ErrDamaged},
		{"journal deleted after SIGKILL", journaled, func(t *testing.T, dir string) { remove(t, dir+".journal") }, revocation.ErrDamaged},
		{"journal corrupted after SIGKILL", journaled, func(t *testing.T, dir string) {
			// A byte of the first record's first key: its length still
			// leads to the records after it.
			flipAt(t, dir+".journal", 8+20+1)
		}, revocation.ErrDamaged},
		{"seal deleted", closed, func(t *testing.T, dir string) { remove(t, dir+".seal") }, revocation.ErrDamaged},
		{"seal damaged", closed, func(t *testing.T, dir string) { truncate(t, dir+".seal", 0.5) }, revocation.ErrDamaged},
		{"store directory deleted", closed, func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, revocation.ErrMissing},
		{"store directory emptied", closed, func(t *testing.T, dir string) {
			for _, f := range glob(t, dir, "*") {
				remove(t, f)
			}
		}, revocation.ErrMissing},
		{"store replaced by another", closed, func(t *testing.T, dir string) {
			other := filepath.Join(t.TempDir(), "other")
			s := openStore(t, other, revocation.Options{})
			revoke(t, s, time.Now().Add(time.Hour), newIDs(3)...)
			closeStore(t, s)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, dir); err != nil {
				t.Fatal(err)
			}
		}, revocation.ErrDamaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "revocations")
			acked := fillStore(t, dir, tt.crash)
			tt.damage(t, dir)
			before := snapshotFiles(t, filepath.Dir(dir))

			s, err := revocation.OpenBadger(dir, revocation.Options{})
			if err == nil {
				missing := 0
				for _, id := range acked {
					if revoked, err := s.IsRevoked(context.Background(), id); err != nil || !revoked {
						missing++
					}
				}
				s.Close()
				t.Fatalf("OpenBadger() of a damaged store succeeded; %d of %d acknowledged revocations are gone", missing, len(acked))
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenBadger() = %v, want an error wrapping %v", err, tt.want)
			}
			if after := snapshotFiles(t, filepath.Dir(dir)); after != before {
				t.Errorf("the refused open changed the files:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// A store that was only closed and killed, never damaged, opens with every
// acknowledged revocation: the control for TestOpenRefusesDamagedStore.
func TestOpenAcceptsUndamagedStore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	t.Parallel()
	for _, crash := range []crash{closed, checkpointed, journaled} {
		dir := filepath.Join(t.TempDir(), "revocations")
		acked := fillStore(t, dir, crash)
		s := openStore(t, dir, revocation.Options{})
		for _, id := range acked {
			wantRevoked(t, s, id, true)
		}
	}
}

// Writes acknowledged since the last checkpoint are in the journal: when
// Badger loses them (here its memtable logs are deleted, as a power failure
// loses what Badger never synced), OpenBadger commits them again from the
// journal, with their sequence numbers, so that they are revoked and in the
// feed; and they stay so after the next open, when the journal has moved
// on.
func TestJournalReplaysLostWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "revocations")
	acked := fillStore(t, dir, journaled)
	removeMemtables(t, dir)
	for range 2 {
		s := openStore(t, dir, revocation.Options{})
		c, err := s.Changes(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		seqs := make(map[uuid.UUID]uint64, len(c.Entries))
		for _, e := range c.Entries {
			seqs[e.ID] = e.Seq
		}
		for _, id := range acked {
			wantRevoked(t, s, id, true)
			if seqs[id] == 0 {
				t.Fatalf("acknowledged %s is not in the feed after the replay", id)
			}
		}
		if len(seqs) < len(acked) || c.Seq < uint64(len(acked)) {
			t.Fatalf("feed holds %d entries up to %d, want at least the %d acknowledged", len(seqs), c.Seq, len(acked))
		}
		closeStore(t, s)
	}
}

// A store made before seals existed (no seal beside it) opens and gets one;
// from then on it is protected like any other.
func TestOpenSealsUnsealedStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := buildStore(t, dir, 3)
	s := openStore(t, dir, revocation.Options{})
	for _, id := range old {
		wantRevoked(t, s, id, true)
	}
	closeStore(t, s)
	if _, err := os.Stat(dir + ".seal"); err != nil {
		t.Fatalf("no seal after the first open: %v", err)
	}
	remove(t, dir+".seal")
	if _, err := revocation.OpenBadger(dir, revocation.Options{}); !errors.Is(err, revocation.ErrDamaged) {
		t.Fatalf("OpenBadger() without the seal it had = %v, want ErrDamaged", err)
	}
}

// fillStore makes a store in dir with acknowledged revocations in a table
// (written, closed) and, when crash is set, more in the memtable of a
// process killed while it wrote. It returns the acknowledged ids.
// crash is how fillStore ends.
type crash int

const (
	// closed: a clean close, which flushes the writes into a table.
	closed crash = iota
	// checkpointed: 200 more writes by a process checkpointing every 5 ms,
	// killed 100 ms later, so that the seal counts them: they are synced
	// in Badger's memtable log, not in a table.
	checkpointed
	// journaled: 200 more writes by a process that never checkpoints,
	// killed: they are in the journal and in Badger's unsynced memtable.
	journaled
)

func fillStore(t *testing.T, dir string, c crash) []uuid.UUID {
	t.Helper()
	s := openStore(t, dir, revocation.Options{})
	acked := newIDs(50)
	revoke(t, s, time.Now().Add(time.Hour), acked...)
	closeStore(t, s)
	switch c {
	case checkpointed:
		acked = append(acked, crashWrites(t, dir, 200, 5*time.Millisecond)...)
	case journaled:
		acked = append(acked, crashWrites(t, dir, 200, time.Hour)...)
	}
	return acked
}

// crashWrites runs the crash helper on dir, checkpointing every
// checkpoint, until it acknowledged n revocations, then kills it (with
// short checkpoint intervals, after 20 of them) and returns what it
// acknowledged.
func crashWrites(t *testing.T, dir string, n int, checkpoint time.Duration) []uuid.UUID {
	t.Helper()
	cmd, stdout := startCrashHelperMode(t, dir, "", crashHelperCheckpointEnv+"="+checkpoint.String())
	var acked []uuid.UUID
	sc := bufio.NewScanner(stdout)
	deadline := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	for len(acked) < n && sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "ACK "); ok {
			acked = append(acked, uuid.MustParse(rest))
		} else if strings.HasPrefix(line, "ERR ") {
			t.Fatalf("helper: %s", line)
		}
	}
	deadline.Stop()
	if checkpoint < 100*time.Millisecond {
		go io.Copy(io.Discard, stdout) // the helper goes on writing
		time.Sleep(20 * checkpoint)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if len(acked) < n {
		t.Fatalf("helper acknowledged %d revocations, want %d", len(acked), n)
	}
	return acked
}

func glob(t *testing.T, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// only returns the one file in dir that matches pattern.
func only(t *testing.T, dir, pattern string) string {
	t.Helper()
	m := glob(t, dir, pattern)
	if len(m) != 1 {
		t.Fatalf("%d files match %s in %s, want 1", len(m), pattern, dir)
	}
	return m[0]
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// truncate cuts path to the fraction keep of its size.
func truncate(t *testing.T, path string, keep float64) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(float64(info.Size())*keep)); err != nil {
		t.Fatal(err)
	}
}

// flip inverts 64 bytes of path at the fraction at of its size.
func flip(t *testing.T, path string, at float64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := int(float64(len(data)) * at)
	for i := off; i < min(off+64, len(data)); i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// flipLastWrites damages the newest memtable file in the middle of what was
// written to it (the file is mostly zeros past the writes).
// removeMemtables deletes Badger's memtable logs in dir.
func removeMemtables(t *testing.T, dir string) {
	t.Helper()
	for _, m := range glob(t, dir, "*.mem") {
		remove(t, m)
	}
}

// flipAt inverts the byte at off in the file at path.
func flipAt(t *testing.T, path string, off int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func flipLastWrites(t *testing.T, dir string) {
	t.Helper()
	mems := glob(t, dir, "*.mem")
	if len(mems) == 0 {
		t.Fatal("no memtable file after the crash")
	}
	path := mems[len(mems)-1]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := len(data)
	for end > 0 && data[end-1] == 0 {
		end--
	}
	if end < 1024 {
		t.Fatalf("memtable %s holds %d bytes of writes, want more", path, end)
	}
	for i := end / 2; i < end/2+16; i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// snapshotFiles describes every file under root: name, size and a hash of
// the content.
func snapshotFiles(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if d.Name() == "LOCK" {
			return nil // Badger's lock file; Badger removes it at every close
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(&b, "%s %d %x\n", rel, len(data), sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
