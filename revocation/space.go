package revocation

// This file is the store's free-space guard: the reserve a store needs
// beyond what it holds, and the checks made at open and before writes. The
// system call that measures free space is in platform_unix.go.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// The store needs free space on its file system beyond what it holds,
// because Badger writes most of its files through memory maps: its
// write-ahead log (the memtable file), new tables when a memtable is
// flushed, and compactions. A store on a full file system does not get an
// error from such a write but a SIGBUS that kills the process. So the store
// keeps a reserve: [Badger.Revoke] refuses to write (with [ErrDiskFull]) and
// Reclaim skips compactions while the free space is below it, and
// [OpenBadger] refuses to open below it. What Badger may need without a
// Revoke asking for it is covered by the reserve:
//
//   - the next memtable file and the table its flush writes: one memtable
//     each (memTableSize), twice over since Badger maps the memtable file at
//     twice its size;
//   - one compaction, which writes its output tables before it deletes its
//     inputs: at most the size of the tree;
//   - slack for the MANIFEST, the value log's header and rounding to blocks.
const (
	memTableSize = 8 << 20
	reserveSlack = 8 << 20
)

// reserve returns the free space the store needs when its tree (the LSM
// tables) takes treeBytes.
func reserve(treeBytes int64) int64 {
	return 2*memTableSize + reserveSlack + treeBytes
}

// mib formats a byte count in MiB for messages.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

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

// treeSize returns the size of the LSM tree's tables in bytes.
func (b *Badger) treeSize() int64 {
	_, size := b.tree()
	return size
}
