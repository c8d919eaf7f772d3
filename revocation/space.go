package revocation

import "fmt"

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
	memTableSize = 16 << 20
	reserveSlack = 8 << 20
)

// reserve returns the free space the store needs when its tree (the LSM
// tables) takes treeBytes.
func reserve(treeBytes int64) int64 {
	return 2*memTableSize + reserveSlack + treeBytes
}

// mib formats a byte count in MiB for messages.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
