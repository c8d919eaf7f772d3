//go:build !unix

// This file holds the store's system-dependent parts for systems other than
// Unix (Windows among them); the Unix versions are in platform_unix.go.
// The store is supported on Unix only: its checks before Badger opens rely
// on holding Badger's flock(2) directory lock, and its disk-full guard on
// statfs(2). Elsewhere the package builds, but [OpenBadger] and [Discard]
// refuse with an error matching errors.ErrUnsupported rather than run
// without those guarantees.

package revocation

import (
	"errors"
	"fmt"
	"runtime"
)

// errPlatform says why the store refuses to open here, and what to do.
var errPlatform = fmt.Errorf("the revocation store needs a Unix system (Linux, macOS, the BSDs), not %s, for its directory lock and its free-space guard: run sessiond on one: %w",
	runtime.GOOS, errors.ErrUnsupported)

func lockDir(string) (unlock func(), err error) { return nil, errPlatform }

func freeSpace(string) (int64, error) { return 0, errPlatform }
