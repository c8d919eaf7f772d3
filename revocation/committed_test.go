package revocation_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/revocation"
)

// Options.Committed is told of every call that a group commit carried,
// concurrent ones sharing commits: the batch sizes add up to exactly the
// calls made, Revoke and CutOff alike, and a Revoke that writes nothing
// (already past) is no call of a commit.
func TestCommitted(t *testing.T) {
	var calls, commits atomic.Int64
	var bad atomic.Int64
	s := openStore(t, t.TempDir(), revocation.Options{Committed: func(n int) {
		if n < 1 || n > 1024 {
			bad.Store(int64(n))
		}
		calls.Add(int64(n))
		commits.Add(1)
	}})
	ctx := context.Background()
	const revokes, cutoffs = 64, 3
	var wg sync.WaitGroup
	for range revokes {
		wg.Go(func() {
			if err := s.Revoke(ctx, uuid.New(), time.Now().Add(time.Hour)); err != nil {
				t.Errorf("Revoke() = %v", err)
			}
		})
	}
	for i := range cutoffs {
		wg.Go(func() {
			if err := s.CutOff(ctx, string(rune('a'+i)), time.Now(), time.Now().Add(time.Hour)); err != nil {
				t.Errorf("CutOff() = %v", err)
			}
		})
	}
	wg.Wait()
	if err := s.Revoke(ctx, uuid.New(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatalf("Revoke(past) = %v", err)
	}
	if got, want := calls.Load(), int64(revokes+cutoffs); got != want {
		t.Errorf("Committed calls add up to %d, want %d", got, want)
	}
	if n := commits.Load(); n < 1 || n > revokes+cutoffs {
		t.Errorf("Committed called %d times, want 1 to %d", n, revokes+cutoffs)
	}
	if n := bad.Load(); n != 0 {
		t.Errorf("Committed(%d), want 1 to 1024", n)
	}
}
