package revocation_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond/revocation"
)

// A store restored from a backup gets a new epoch with RenewEpoch: its
// entries and their numbers stay, the seal follows, and the feed's epoch
// changes, so that verifiers take a new snapshot instead of refusing the
// older list as a replay.
func TestRenewEpoch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir, revocation.Options{})
	ids := newIDs(3)
	revoke(t, s, time.Now().Add(time.Hour), ids...)
	before := changes(t, s, 0)
	closeStore(t, s)

	if err := revocation.RenewEpoch(dir, revocation.Options{}); err != nil {
		t.Fatalf("RenewEpoch() = %v", err)
	}
	s = openStore(t, dir, revocation.Options{})
	after := changes(t, s, 0)
	if after.Epoch == before.Epoch {
		t.Errorf("epoch after RenewEpoch = %q, want a new one", after.Epoch)
	}
	if after.Seq != before.Seq {
		t.Errorf("seq after RenewEpoch = %d, want %d", after.Seq, before.Seq)
	}
	wantIDs(t, after, ids...)
	if err := s.Revoke(ctx, newIDs(1)[0], time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Revoke() after RenewEpoch = %v", err)
	}
}

// Discard moves the store and its seal aside, refuses a store in use, and
// the next open starts empty.
func TestDiscard(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "revocations")
	s := openStore(t, dir, revocation.Options{})
	revoke(t, s, time.Now().Add(time.Hour), newIDs(2)...)
	if _, err := revocation.Discard(dir); !errors.Is(err, revocation.ErrLocked) {
		t.Fatalf("Discard() of an open store = %v, want ErrLocked", err)
	}
	closeStore(t, s)
	d, err := revocation.Discard(dir)
	if err != nil {
		t.Fatalf("Discard() = %v", err)
	}
	if d.Acknowledged == 0 || d.Dir == "" || d.Seal == "" {
		t.Errorf("Discard() = %+v, want the directory, the seal and the acknowledged count", d)
	}
	for _, p := range []string{d.Dir, d.Seal} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("set-aside %s: %v", p, err)
		}
	}
	s = openStore(t, dir, revocation.Options{})
	wantLen(t, s, 0)
}
