package keys_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/keys"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

var policy = keys.Policy{MaxTokenLifetime: time.Hour, Leeway: time.Minute, PropagationDelay: 5 * time.Minute}

func generate(t *testing.T, alg keys.Algorithm, activates time.Time) *keys.Key {
	t.Helper()
	k, err := keys.Generate(alg, 0, t0, activates)
	if err != nil {
		t.Fatalf("Generate(%s) error = %v", alg, err)
	}
	return k
}

func TestGenerateAndThumbprint(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.EdDSA, keys.ES256, keys.RS256} {
		t.Run(string(alg), func(t *testing.T) {
			k := generate(t, alg, t0)
			kid, err := keys.Thumbprint(k.Public())
			if err != nil || kid != k.ID {
				t.Fatalf("Thumbprint() = %q, %v, want %q", kid, err, k.ID)
			}
			if len(k.ID) != 43 {
				t.Errorf("len(kid) = %d, want 43 (base64url SHA-256)", len(k.ID))
			}
		})
	}
	if _, err := keys.Generate("HS256", 0, t0, t0); !errors.Is(err, keys.ErrAlgorithm) {
		t.Errorf("Generate(HS256) error = %v, want ErrAlgorithm", err)
	}
	if _, err := keys.Generate(keys.RS256, 1024, t0, t0); !errors.Is(err, keys.ErrAlgorithm) {
		t.Errorf("Generate(RS256, 1024 bits) error = %v, want ErrAlgorithm", err)
	}
}

// RFC 8037 Appendix A.3 gives the thumbprint of its example Ed25519 key.
func TestThumbprintRFC8037(t *testing.T) {
	const x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	pub, err := decodeB64(x)
	if err != nil {
		t.Fatal(err)
	}
	got, err := keys.Thumbprint(pub)
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; err != nil || got != want {
		t.Errorf("Thumbprint() = %q, %v, want %q", got, err, want)
	}
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	k := generate(t, keys.EdDSA, t0)
	for _, s := range []string{k.String(), k.LogValue().String()} {
		if !strings.Contains(s, k.ID) || strings.Contains(s, "PRIVATE") || len(s) > 120 {
			t.Errorf("key prints as %q, want only its id and algorithm", s)
		}
	}
}

func TestLifecycle(t *testing.T) {
	var s keys.Set
	first := generate(t, keys.EdDSA, t0)
	second := generate(t, keys.ES256, t0.Add(10*time.Minute))
	s.Add(second)
	s.Add(first) // out of order on purpose
	if s.Add(first) {
		t.Error("Add(duplicate) = true, want false")
	}
	expires := second.Activates().Add(policy.MaxTokenLifetime + policy.Leeway)
	tests := []struct {
		name        string
		at          time.Time
		active      *keys.Key
		first, next keys.State
	}{
		{"before any", t0.Add(-time.Second), nil, keys.Next, keys.Next},
		{"first active", t0, first, keys.Active, keys.Next},
		{"just before handover", second.Activates().Add(-time.Second), first, keys.Active, keys.Next},
		{"handover", second.Activates(), second, keys.Retired, keys.Active},
		{"first still verifies", expires.Add(-time.Second), second, keys.Retired, keys.Active},
		{"first expired", expires, second, keys.Expired, keys.Active},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Active(tt.at); got != tt.active {
				t.Errorf("Active() = %v, want %v", got, tt.active)
			}
			if got := s.Lifecycle(first, tt.at, policy).State; got != tt.first {
				t.Errorf("first key state = %s, want %s", got, tt.first)
			}
			if got := s.Lifecycle(second, tt.at, policy).State; got != tt.next {
				t.Errorf("second key state = %s, want %s", got, tt.next)
			}
		})
	}
	if lc := s.Lifecycle(first, t0, policy); !lc.Retires.Equal(second.Activates()) || !lc.Expires.Equal(expires) {
		t.Errorf("Lifecycle(first) = %+v, want retires %v, expires %v", lc, second.Activates(), expires)
	}
	if gone := s.Prune(expires.Add(-time.Second), policy); len(gone) != 0 {
		t.Errorf("Prune() before expiry removed %v", gone)
	}
	if gone := s.Prune(expires, policy); len(gone) != 1 || gone[0] != first.ID || s.Len() != 1 {
		t.Errorf("Prune() = %v, Len() = %d, want [%s] and 1 key left", gone, s.Len(), first.ID)
	}
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	saved, err := keys.Create(path, func(s *keys.Set) error {
		for i, alg := range []keys.Algorithm{keys.EdDSA, keys.ES256, keys.RS256} {
			s.Add(generate(t, alg, t0.Add(time.Duration(i)*time.Hour)))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v, want 0600", info.Mode(), err)
	}
	loaded, err := keys.Load(path)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	want, got := saved.Keys(), loaded.Keys()
	if len(got) != len(want) {
		t.Fatalf("Load() has %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Algorithm != want[i].Algorithm || !got[i].Activates().Equal(want[i].Activates()) {
			t.Errorf("key %d = %v activating %v, want %v activating %v", i, got[i], got[i].Activates(), want[i], want[i].Activates())
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// corruptKeyFiles are key files Load refuses with ErrCorrupt; they also
// seed FuzzLoad.
var corruptKeyFiles = map[string]string{
	"not json":        "{",
	"wrong version":   `{"version": 9, "keys": []}`,
	"unknown field":   `{"version": 1, "keys": [], "extra": 1}`,
	"bad private key": `{"version": 1, "keys": [{"kid": "x", "alg": "EdDSA", "private_key_pkcs8": "AAAA"}]}`,
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	if _, err := keys.Load(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}
	if _, err := keys.Create(path, func(s *keys.Set) error { s.Add(generate(t, keys.EdDSA, t0)); return nil }); err != nil {
		t.Fatal(err)
	}
	t.Run("readable by others", func(t *testing.T) {
		os.Chmod(path, 0o644)
		defer os.Chmod(path, 0o600)
		_, err := keys.Load(path)
		if !errors.Is(err, keys.ErrInsecure) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("Load() error = %v, want ErrInsecure saying chmod 600", err)
		}
	})
	for name, content := range corruptKeyFiles {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			os.WriteFile(p, []byte(content), 0o600)
			if _, err := keys.Load(p); !errors.Is(err, keys.ErrCorrupt) {
				t.Errorf("Load() error = %v, want ErrCorrupt", err)
			}
		})
	}
	t.Run("kid does not match", func(t *testing.T) {
		data, _ := os.ReadFile(path)
		k, _ := keys.Load(path)
		kid := k.Keys()[0].ID
		p := filepath.Join(dir, "tampered")
		other := "A" + kid[1:]
		if other == kid {
			other = "B" + kid[1:]
		}
		os.WriteFile(p, []byte(strings.Replace(string(data), kid, other, 1)), 0o600)
		if _, err := keys.Load(p); !errors.Is(err, keys.ErrCorrupt) {
			t.Errorf("Load() error = %v, want ErrCorrupt", err)
		}
	})
}

// Concurrent creates and updates, in-process here (the lock is a file lock,
// which holds between processes the same way): exactly one create wins, and
// the updates lose no key.
func TestUpdateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	const n = 8
	var wg sync.WaitGroup
	var created atomic.Int32
	for range n {
		wg.Go(func() {
			_, err := keys.Create(path, func(s *keys.Set) error { s.Add(generate(t, keys.EdDSA, t0)); return nil })
			switch {
			case err == nil:
				created.Add(1)
			case !errors.Is(err, fs.ErrExist):
				t.Errorf("Create() error = %v, want nil or fs.ErrExist", err)
			}
		})
	}
	wg.Wait()
	if got := created.Load(); got != 1 {
		t.Fatalf("%d concurrent Create() calls succeeded, want 1", got)
	}
	for range n {
		wg.Go(func() {
			if _, err := keys.Update(path, func(s *keys.Set) error {
				k, err := keys.Generate(keys.EdDSA, 0, t0, t0)
				if err == nil {
					s.Add(k)
				}
				return err
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s, err := keys.Load(path)
	if err != nil || s.Len() != n+1 {
		t.Fatalf("Load() = %d keys, %v, want %d", s.Len(), err, n+1)
	}
}

// Update never creates a key file; Create never replaces one.
func TestUpdateAndCreateRefuse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	called := false
	if _, err := keys.Update(path, func(*keys.Set) error { called = true; return nil }); !errors.Is(err, fs.ErrNotExist) || called {
		t.Errorf("Update(missing file) error = %v, fn called %v; want fs.ErrNotExist and no call", err, called)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Update(missing file) created it: %v", err)
	}
	if _, err := keys.Create(path, func(s *keys.Set) error { s.Add(generate(t, keys.EdDSA, t0)); return nil }); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if _, err := keys.Create(path, func(s *keys.Set) error { called = true; s.Add(generate(t, keys.EdDSA, t0)); return nil }); !errors.Is(err, fs.ErrExist) || called {
		t.Errorf("Create(existing file) error = %v, fn called %v; want fs.ErrExist and no call", err, called)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("Create(existing file) changed it")
	}
}

func TestKeyring(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	now := t0
	clock := func() time.Time { return now }
	ring, err := keys.OpenKeyring(path, policy, keys.KeyringOptions{Now: clock})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	kid, alg, signer, err := ring.SigningKey()
	if err != nil || alg != "EdDSA" || signer == nil {
		t.Fatalf("SigningKey() = %q, %q, %v, %v, want a fresh EdDSA key", kid, alg, signer, err)
	}
	ctx := context.Background()
	if alg, pub, err := ring.VerificationKey(ctx, kid); err != nil || alg != "EdDSA" || pub == nil {
		t.Errorf("VerificationKey(%s) = %q, %v, %v", kid, alg, pub, err)
	}
	if _, _, err := ring.VerificationKey(ctx, "nope"); !errors.Is(err, keys.ErrUnknownKey) {
		t.Errorf("VerificationKey(unknown) error = %v, want ErrUnknownKey", err)
	}

	// A second open finds the same key rather than making another.
	again, err := keys.OpenKeyring(path, policy, keys.KeyringOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if kid2, _, _, _ := again.SigningKey(); kid2 != kid {
		t.Errorf("reopened SigningKey() = %s, want %s", kid2, kid)
	}

	// Rotate through the file, as `sessiond keys rotate` does.
	next := generate(t, keys.ES256, now.Add(policy.PropagationDelay))
	if _, err := keys.Update(path, func(s *keys.Set) error { s.Add(next); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := ring.Reload(); err != nil {
		t.Fatalf("Reload() error = %v", err)
	}
	if got := len(ring.Published()); got != 2 {
		t.Errorf("len(Published()) = %d, want 2", got)
	}
	now = next.Activates()
	if got, _, _, _ := ring.SigningKey(); got != next.ID {
		t.Errorf("after activation SigningKey() = %s, want %s", got, next.ID)
	}
	now = next.Activates().Add(policy.MaxTokenLifetime + policy.Leeway)
	if _, _, err := ring.VerificationKey(ctx, kid); !errors.Is(err, keys.ErrUnknownKey) {
		t.Errorf("expired key VerificationKey() error = %v, want ErrUnknownKey", err)
	}
	if err := ring.Prune(); err != nil {
		t.Fatalf("Prune() error = %v", err)
	}
	if s, _ := keys.Load(path); s.Len() != 1 {
		t.Errorf("after Prune the file has %d keys, want 1", s.Len())
	}

	// A corrupt file is reported and the last good keys stay in use.
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ring.Reload(); !errors.Is(err, keys.ErrCorrupt) {
		t.Errorf("Reload(corrupt) error = %v, want ErrCorrupt", err)
	}
	if got, _, _, err := ring.SigningKey(); got != next.ID || err != nil {
		t.Errorf("after a bad reload SigningKey() = %s, %v, want %s", got, err, next.ID)
	}
}

func decodeB64(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return ed25519.PublicKey(b), err
}
