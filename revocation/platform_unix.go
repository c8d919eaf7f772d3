//go:build unix

// This file holds what the store needs from a Unix system: the flock(2)
// lock Badger takes on a store's directory, and the free space of a file
// system. The other systems' refusals are in platform_other.go.

package revocation

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir takes the lock Badger takes on a store's directory (flock on the
// directory), so that nothing else opens the store while it is checked or
// moved. It fails with an error wrapping [ErrLocked] when the lock is held.
// Badger's own open in this process conflicts with it too, so release it
// before calling badger.Open.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}

// freeSpace returns the bytes available to this process on the file system
// that holds path.
func freeSpace(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
