package revocation

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// dirtyPages returns how many of the file's pages in the page cache are
// dirty (not yet written to the disk), by cachestat(2) (Linux 6.5).
func dirtyPages(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rng [2]uint64 // offset, length (0: to the end)
	var cs [5]uint64  // cached, dirty, writeback, evicted, recently evicted
	const sysCachestat = 451
	if _, _, errno := syscall.Syscall6(sysCachestat, f.Fd(), uintptr(unsafe.Pointer(&rng)), uintptr(unsafe.Pointer(&cs)), 0, 0, 0); errno != 0 {
		t.Skipf("cachestat: %v", errno)
	}
	return cs[1]
}

// A checkpoint syncs every memtable log, not only the one Badger's Sync
// covers: here three logs written through shared memory maps, as Badger
// writes them, have no dirty page left after syncMemtables, and a file
// that is not a memtable log is left alone.
func TestSyncMemtablesLeavesNothingDirty(t *testing.T) {
	dir := t.TempDir()
	const size = 1 << 20
	write := func(name string) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Munmap(m)
		for i := 0; i < size; i += 4096 {
			m[i] = 1
		}
		return path
	}
	mems := []string{write("00001.mem"), write("00002.mem"), write("00003.mem")}
	other := write("00001.vlog")
	for _, m := range mems {
		if dirtyPages(t, m) == 0 {
			t.Skip("the page cache wrote the pages back before the check")
		}
	}
	if err := syncMemtables(dir); err != nil {
		t.Fatal(err)
	}
	for _, m := range mems {
		if n := dirtyPages(t, m); n != 0 {
			t.Errorf("%s: %d dirty pages after syncMemtables, want 0", filepath.Base(m), n)
		}
	}
	if dirtyPages(t, other) == 0 {
		t.Logf("%s was written back too (by the kernel)", filepath.Base(other))
	}
}
