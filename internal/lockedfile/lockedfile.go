// Package lockedfile holds what sessiond's small state files (the key file,
// the clients file) need from the system: opening without following a
// symbolic link, an exclusive lock beside the file, and the inode number
// that tells a file replaced by rename. It imports nothing of sessiond.
//
// On Unix the lock is flock(2) on a lock file, which goes with the process
// even on a crash, and opening uses O_NOFOLLOW. Elsewhere (Windows among
// them), where package syscall has neither, the lock is the existence of
// the lock file itself, made with O_EXCL and removed on unlock (see
// [LockExclusive]): portable, but a process that dies holding it leaves it
// behind, and every later command refuses until an operator removes it (the
// error says so); opening checks for a link with Lstat first, and callers
// check the opened file again.
package lockedfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ErrSymlink is what [OpenNoFollow] returns for a symbolic link.
var ErrSymlink = errors.New("is a symbolic link")

// lockPoll is how often a lock held by another process is tried again.
const lockPoll = 20 * time.Millisecond

// LockExclusive is the portable lock that systems without flock(2) use: it
// creates the lock file at path with O_EXCL, trying again until timeout
// while another process holds it, and unlock removes it. A lock file left
// by a process that died is refused with an error saying how to remove it.
// It is exported, not only built where it is used, so that its tests run
// everywhere.
func LockExclusive(path string, timeout time.Duration) (unlock func(), err error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s has existed for %s: another sessiond command holds the lock, or one died holding it; if none is running, remove %s and try again",
				path, timeout, path)
		}
		time.Sleep(lockPoll)
	}
}
