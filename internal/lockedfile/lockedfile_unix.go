//go:build unix

package lockedfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// OpenNoFollow opens path for reading. O_NOFOLLOW: a link put in place
// since the caller's Lstat is refused too (ErrSymlink; the caller checks
// again what is there), and O_NONBLOCK: a FIFO never blocks the open.
func OpenNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		err = ErrSymlink
	}
	return f, err
}

// Lock takes an exclusive flock(2) on the lock file at path, creating it
// if need be (never through a symbolic link), waiting up to timeout for
// another process to release it. The lock file stays; the lock goes with
// the process, even on a crash.
func Lock(path string, timeout time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		time.Sleep(lockPoll)
	}
}

// Inode returns the file's inode number: an atomic rename changes it even
// when the size and modification time happen to match.
func Inode(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
