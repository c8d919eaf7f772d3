package revocation_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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
		crash  bool
		damage func(t *testing.T, dir string)
		want   error
	}{
		{"MANIFEST deleted", false, func(t *testing.T, dir string) { remove(t, filepath.Join(dir, "MANIFEST")) }, revocation.ErrDamaged},
		{"MANIFEST truncated", false, func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "MANIFEST"), 0.5) }, revocation.ErrDamaged},
		{"MANIFEST emptied", false, func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "MANIFEST"), 0) }, revocation.ErrDamaged},
		{"table half truncated", false, func(t *testing.T, dir string) { truncate(t, only(t, dir, "*.sst"), 0.5) }, revocation.ErrDamaged},
		{"table corrupted", false, func(t *testing.T, dir string) { flip(t, only(t, dir, "*.sst"), 0.3) }, revocation.ErrDamaged},
		{"table deleted", false, func(t *testing.T, dir string) { remove(t, only(t, dir, "*.sst")) }, revocation.ErrDamaged},
		{"memtable deleted after SIGKILL", true, func(t *testing.T, dir string) {
			for _, m := range glob(t, dir, "*.mem") {
				remove(t, m)
			}
		}, revocation.ErrDamaged},
		{"memtable corrupted after SIGKILL", true, func(t *testing.T, dir string) { flipLastWrites(t, dir) }, revocation.ErrDamaged},
		{"seal deleted", false, func(t *testing.T, dir string) { remove(t, dir+".seal") }, revocation.ErrDamaged},
		{"seal damaged", false, func(t *testing.T, dir string) { truncate(t, dir+".seal", 0.5) }, revocation.ErrDamaged},
		{"store directory deleted", false, func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, revocation.ErrMissing},
		{"store directory emptied", false, func(t *testing.T, dir string) {
			for _, f := range glob(t, dir, "*") {
				remove(t, f)
			}
		}, revocation.ErrMissing},
		{"store replaced by another", false, func(t *testing.T, dir string) {
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
	for _, crash := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "revocations")
		acked := fillStore(t, dir, crash)
		s := openStore(t, dir, revocation.Options{})
		for _, id := range acked {
			wantRevoked(t, s, id, true)
		}
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
func fillStore(t *testing.T, dir string, crash bool) []uuid.UUID {
	t.Helper()
	s := openStore(t, dir, revocation.Options{})
	acked := newIDs(50)
	revoke(t, s, time.Now().Add(time.Hour), acked...)
	closeStore(t, s)
	if crash {
		acked = append(acked, crashWrites(t, dir, 200)...)
	}
	return acked
}

// crashWrites runs the crash helper on dir until it acknowledged n
// revocations, then kills it, and returns what it acknowledged.
func crashWrites(t *testing.T, dir string, n int) []uuid.UUID {
	t.Helper()
	cmd, stdout := startCrashHelper(t, dir)
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
