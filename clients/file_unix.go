//go:build unix

// This file holds what the clients file needs from a Unix system: opening
// without following a symbolic link, and the flock(2) lock of [Update].
// The other systems' versions are in file_other.go.

package clients

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// openNoFollow opens path for reading, refusing a symbolic link
// (errSymlink) and never blocking on a FIFO.
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		err = errSymlink
	}
	return f, err
}

// lockFile takes an exclusive flock(2) on the lock file at path, creating
// it if need be, waiting up to lockTimeout for another process to release
// it. The lock goes with the process, even on a crash.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock clients file: %w", err)
	}
	deadline := time.Now().Add(lockTimeout)
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
			return nil, fmt.Errorf("lock clients file %s: %w", path, err)
		}
		time.Sleep(lockPoll)
	}
}

// inode returns the file's inode number: an atomic rename changes it even
// when the size and modification time happen to match.
func inode(info os.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
