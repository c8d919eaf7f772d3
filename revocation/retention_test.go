package revocation_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/revocation"
)

// Raising the retention (a larger --leeway) extends the records already
// stored, so that a verifier that now accepts a token up to the new leeway
// past its expiry still finds it revoked. Lowering it again changes nothing:
// the store keeps the largest retention it was opened with.
func TestRetentionExtendsStoredRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir, revocation.Options{})
	closed := uuid.New()
	// Badger expires entries by the wall clock, so the token expires for
	// real, two seconds from now.
	expires := time.Now().Add(2 * time.Second)
	if err := s.Revoke(ctx, closed, expires); err != nil {
		t.Fatalf("Revoke() = %v", err)
	}
	closeStore(t, s)

	s = openStore(t, dir, revocation.Options{Retention: time.Hour})
	if got := s.Retention(); got != time.Hour {
		t.Fatalf("Retention() = %s, want 1h", got)
	}
	later := uuid.New()
	if err := s.Revoke(ctx, later, expires); err != nil {
		t.Fatalf("Revoke() = %v", err)
	}
	closeStore(t, s)

	s = openStore(t, dir, revocation.Options{Retention: 0})
	if got := s.Retention(); got != time.Hour {
		t.Fatalf("Retention() after opening with 0 = %s, want 1h (it never shrinks)", got)
	}
	time.Sleep(time.Until(expires.Add(1500 * time.Millisecond)))
	// Past the token's expiry, within the hour of leeway a verifier may now
	// allow: both records must still be there.
	wantRevoked(t, s, closed, true)
	wantRevoked(t, s, later, true)
	c, err := s.Changes(ctx, 0)
	if err != nil {
		t.Fatalf("Changes() = %v", err)
	}
	if len(c.Entries) != 2 {
		t.Fatalf("Changes(0) has %d entries, want 2", len(c.Entries))
	}
	for _, e := range c.Entries {
		if e.Until.Before(expires.Add(time.Hour)) {
			t.Errorf("entry %s lasts until %s, want at least %s", e.ID, e.Until, expires.Add(time.Hour))
		}
	}
}
