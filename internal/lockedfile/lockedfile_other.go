//go:build !unix

package lockedfile

import (
	"io/fs"
	"os"
	"time"
)

// OpenNoFollow opens path for reading, refusing a symbolic link found by
// Lstat (ErrSymlink); see the package comment.
func OpenNoFollow(path string) (*os.File, error) {
	if info, err := os.Lstat(path); err == nil && info.Mode()&fs.ModeSymlink != 0 {
		return nil, ErrSymlink
	}
	return os.Open(path)
}

// Lock is LockExclusive here; see the package comment.
func Lock(path string, timeout time.Duration) (unlock func(), err error) {
	return LockExclusive(path, timeout)
}

// Inode is 0 here: a change is noticed by size and modification time alone.
func Inode(fs.FileInfo) uint64 { return 0 }
