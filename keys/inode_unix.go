//go:build unix

package keys

import (
	"io/fs"
	"syscall"
)

// inode returns the file's inode number: an atomic rename changes it even
// when the size and modification time happen to match.
func inode(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
