package keys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The portable lock of systems without flock(2) (file_other.go) excludes a
// second holder, tells how to clear a stale lock, and frees on unlock.
func TestLockExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json.lock")
	unlock, err := lockExclusive(path, time.Second)
	if err != nil {
		t.Fatalf("lockExclusive() error = %v", err)
	}
	if _, err := lockExclusive(path, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "remove "+path) {
		t.Errorf("second lockExclusive() error = %v, want a refusal saying how to remove a stale lock", err)
	}
	done := make(chan error, 1)
	go func() {
		u, err := lockExclusive(path, 10*time.Second)
		if err == nil {
			u()
		}
		done <- err
	}()
	unlock()
	if err := <-done; err != nil {
		t.Errorf("lockExclusive() after unlock error = %v, want the lock", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("lock file after unlock: %v, want it removed", err)
	}
}
