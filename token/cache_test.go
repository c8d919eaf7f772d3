package token_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

// The cache skips the signature of a token seen before, but every call
// still sees the clock, key removal and revocation.
func TestCacheRechecks(t *testing.T) {
	c := &clock{t0}
	path := filepath.Join(t.TempDir(), "keys.json")
	ring, err := keys.OpenKeyring(path, keys.Policy{MaxTokenLifetime: 24 * time.Hour}, keys.KeyringOptions{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, claims, err := issue.New(ring, issue.WithClock(c.Now)).Issue(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rev := &revocations{revoked: map[uuid.UUID]bool{}}
	v := token.NewVerifier(ring, token.WithClock(c.Now), token.WithRevocation(rev), token.WithLeeway(time.Second))
	ctx := context.Background()
	verify := func(want error) {
		t.Helper()
		got, err := v.Verify(ctx, tok)
		if want == nil && (err != nil || got != claims) || want != nil && !errors.Is(err, want) {
			t.Errorf("Verify() = %+v, %v, want %v", got, err, want)
		}
	}
	verify(nil)
	verify(nil) // from the cache

	rev.revoked[claims.ID] = true
	verify(token.ErrRevoked)
	delete(rev.revoked, claims.ID)
	verify(nil)

	c.now = t0.Add(-2 * time.Second) // the clock went back past iat + leeway
	verify(token.ErrNotYetValid)
	c.now = t0.Add(time.Hour)
	verify(nil) // within the leeway
	c.now = t0.Add(time.Hour + time.Second)
	verify(token.ErrExpired)
	c.now = t0

	verify(nil)
	if _, err := keys.Update(path, func(s *keys.Set) error {
		k, err := keys.Generate(keys.EdDSA, 0, t0, t0.Add(time.Second))
		if err != nil {
			return err
		}
		s.Add(k)
		return s.Remove(claims.KeyID, k.Activates()) // retired by k: not refused
	}); err != nil {
		t.Fatal(err)
	}
	if err := ring.Reload(); err != nil {
		t.Fatal(err)
	}
	verify(token.ErrUnknownKey) // removed: rejected at once although cached
}

// A forged token is never remembered as valid, however often it comes.
func TestCacheIgnoresFailures(t *testing.T) {
	c := &clock{t0}
	ring := newKeyring(t, c)
	tok, _, _ := issue.New(ring, issue.WithClock(c.Now)).Issue(time.Hour)
	forged := tamper(tok)
	v := token.NewVerifier(ring, token.WithClock(c.Now))
	for range 3 {
		if _, err := v.Verify(context.Background(), forged); !errors.Is(err, token.ErrSignature) {
			t.Fatalf("Verify(forged) error = %v, want ErrSignature", err)
		}
	}
}
