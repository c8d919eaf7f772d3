package lockedfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/lockedfile"
)

// The portable lock of systems without flock(2) (see the package comment) excludes a
// second holder, tells how to clear a stale lock, and frees on unlock.
func TestLockExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json.lock")
	unlock, err := lockedfile.LockExclusive(path, time.Second)
	if err != nil {
		t.Fatalf("lockedfile.LockExclusive() error = %v", err)
	}
	if _, err := lockedfile.LockExclusive(path, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "remove "+path) {
		t.Errorf("second lockedfile.LockExclusive() error = %v, want a refusal saying how to remove a stale lock", err)
	}
	done := make(chan error, 1)
	go func() {
		u, err := lockedfile.LockExclusive(path, 10*time.Second)
		if err == nil {
			u()
		}
		done <- err
	}()
	unlock()
	if err := <-done; err != nil {
		t.Errorf("lockedfile.LockExclusive() after unlock error = %v, want the lock", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("lock file after unlock: %v, want it removed", err)
	}
}
