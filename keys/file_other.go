//go:build !unix

// This file holds the key file's system-dependent parts for systems other
// than Unix (Windows among them), where package syscall has no flock(2) and
// no O_NOFOLLOW; the Unix versions are in file_unix.go.
//
// The lock of [Update] and [Create] is then the existence of the lock file
// itself, made with O_EXCL and removed on unlock: portable, but a process
// that dies holding it leaves it behind, and every later command refuses to
// share the key file without the lock until an operator removes it (the
// error says so). Opening does not refuse a symbolic link put in place
// between Load's check and its open, but Load checks the opened file again,
// so it still reads only a regular file.

package keys

import (
	"io/fs"
	"os"
)

// openNoFollow opens path for reading; see the file comment.
func openNoFollow(path string) (*os.File, error) {
	return os.Open(path)
}

// lockFile takes the lock by creating its file; see the file comment.
func lockFile(path string) (unlock func(), err error) {
	return lockExclusive(path, lockTimeout)
}

// inode is 0 here: a Keyring notices a change by size and modification
// time alone.
func inode(fs.FileInfo) uint64 { return 0 }
