//go:build !unix

// This file holds the clients file's system-dependent parts for systems
// other than Unix, where package syscall has no flock(2) and no O_NOFOLLOW.
// The lock is the existence of the lock file, made with O_EXCL and removed
// on unlock; opening checks for a symbolic link with Lstat first.

package clients

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

func openNoFollow(path string) (*os.File, error) {
	if info, err := os.Lstat(path); err == nil && info.Mode()&fs.ModeSymlink != 0 {
		return nil, errSymlink
	}
	return os.Open(path)
}

func lockFile(path string) (unlock func(), err error) {
	deadline := time.Now().Add(lockTimeout)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock clients file: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock clients file: %s has existed for %s: another sessiond clients command holds the lock, or one died holding it; if none is running, remove %s and try again", path, lockTimeout, path)
		}
		time.Sleep(lockPoll)
	}
}

// inode is 0 here: a Registry notices a change by size and modification
// time alone.
func inode(os.FileInfo) uint64 { return 0 }
