package keys_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/keys"
)

func TestActivationDelay(t *testing.T) {
	if got, want := policy.ActivationDelay(), policy.PropagationDelay+keys.ReloadInterval; got != want {
		t.Errorf("ActivationDelay() = %s, want %s (PropagationDelay + ReloadInterval)", got, want)
	}
}

func TestFirstAndRotate(t *testing.T) {
	var s keys.Set
	made := generate(t, keys.EdDSA, t0.Add(time.Hour))
	now := t0.Add(1500 * time.Millisecond)
	first, err := s.First(made, now)
	if err != nil {
		t.Fatalf("First() error = %v", err)
	}
	if !first.Activates().Equal(now) || !first.Created().Equal(now.Truncate(time.Second)) {
		t.Errorf("First() key created %v, activates %v; want %v and %v", first.Created(), first.Activates(), now.Truncate(time.Second), now)
	}
	if !made.Activates().Equal(t0.Add(time.Hour)) {
		t.Errorf("First() changed its argument: activates %v", made.Activates())
	}
	if s.Active(now) != first {
		t.Errorf("Active() = %v, want the first key", s.Active(now))
	}
	if _, err := s.First(generate(t, keys.EdDSA, t0), now); err == nil || !strings.Contains(err.Error(), "rotation") {
		t.Errorf("First() on a set with a key: error = %v, want a refusal pointing to rotation", err)
	}

	later := now.Add(time.Minute)
	next, err := s.Rotate(generate(t, keys.ES256, t0), later, policy.ActivationDelay())
	if err != nil {
		t.Fatalf("Rotate() error = %v", err)
	}
	if want := later.Add(policy.ActivationDelay()); !next.Activates().Equal(want) {
		t.Errorf("Rotate() key activates %v, want %v", next.Activates(), want)
	}
	if st := s.Lifecycle(next, later, policy).State; st != keys.Next {
		t.Errorf("rotated key state = %s, want next", st)
	}
	if s.Active(next.Activates()) != next || s.Lifecycle(first, next.Activates(), policy).State != keys.Retired {
		t.Error("at the rotated key's activation it does not sign, or the first key is not retired")
	}
	if _, err := s.Rotate(next, later, 0); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("Rotate(key in the set) error = %v, want a refusal", err)
	}
	if _, err := s.Rotate(generate(t, keys.EdDSA, t0), later, -time.Second); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("Rotate(negative delay) error = %v, want a refusal", err)
	}
	if s.Len() != 2 {
		t.Errorf("after refused rotations: Len() = %d, want 2", s.Len())
	}

	// --now: active at once, although the first key activated in the same
	// second.
	var tie keys.Set
	a, _ := tie.First(generate(t, keys.EdDSA, t0), now)
	b, err := tie.Rotate(generate(t, keys.EdDSA, t0), now.Add(time.Millisecond), 0)
	if err != nil || tie.Active(b.Activates()) != b || tie.Lifecycle(a, b.Activates(), policy).State != keys.Retired {
		t.Errorf("Rotate(now) = %v, %v: want it to sign at once", b, err)
	}
}

func TestRemoveRefusals(t *testing.T) {
	var s keys.Set
	old, _ := s.First(generate(t, keys.EdDSA, t0), t0)
	cur, _ := s.Rotate(generate(t, keys.EdDSA, t0), t0.Add(time.Minute), 0)
	next, _ := s.Rotate(generate(t, keys.EdDSA, t0), t0.Add(2*time.Minute), time.Hour)
	now := t0.Add(3 * time.Minute)

	if err := s.Remove(cur.ID, now); !errors.Is(err, keys.ErrActiveKey) || !strings.Contains(err.Error(), "rotate --now") {
		t.Errorf("Remove(active) error = %v, want ErrActiveKey advising rotate --now", err)
	}
	if err := s.Remove("nope", now); !errors.Is(err, keys.ErrUnknownKey) || !strings.Contains(err.Error(), `no key "nope"`) {
		t.Errorf("Remove(unknown) error = %v, want ErrUnknownKey naming the id", err)
	}
	if s.Len() != 3 {
		t.Fatalf("after refused removals: Len() = %d, want 3", s.Len())
	}
	for _, k := range []*keys.Key{old, next} {
		if err := s.Remove(k.ID, now); err != nil {
			t.Errorf("Remove(%s key) error = %v", s.Lifecycle(k, now, policy).State, err)
		}
	}
	// The only key, active: refused as well.
	if err := s.Remove(cur.ID, now); !errors.Is(err, keys.ErrActiveKey) || s.Len() != 1 {
		t.Errorf("Remove(only key) error = %v, Len() = %d; want ErrActiveKey and the key kept", err, s.Len())
	}
}

// The file operations are the Set's, under the lock, on the real file.
func TestFileLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	short := keys.Policy{MaxTokenLifetime: time.Second}

	if _, err := keys.Rotate(path, generate(t, keys.EdDSA, t0), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Rotate(no key file) error = %v, want fs.ErrNotExist", err)
	}
	first, err := keys.Init(path, generate(t, keys.EdDSA, t0))
	if err != nil {
		t.Fatalf("Init() error = %v", err)
	}
	if _, err := keys.Init(path, generate(t, keys.EdDSA, t0)); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Init() error = %v, want fs.ErrExist", err)
	}
	if err := keys.Remove(path, first.ID); !errors.Is(err, keys.ErrActiveKey) {
		t.Errorf("Remove(active) error = %v, want ErrActiveKey", err)
	}
	if err := keys.Remove(path, "nope"); !errors.Is(err, keys.ErrUnknownKey) || !strings.Contains(err.Error(), path) {
		t.Errorf("Remove(unknown) error = %v, want ErrUnknownKey naming the file", err)
	}
	before := time.Now()
	second, err := keys.Rotate(path, generate(t, keys.ES256, t0), 0)
	if err != nil {
		t.Fatalf("Rotate() error = %v", err)
	}
	if second.Activates().Before(before) {
		t.Errorf("Rotate() key activates %v, before the call at %v: the clock must be read under the lock", second.Activates(), before)
	}
	third, err := keys.Rotate(path, generate(t, keys.EdDSA, t0), time.Hour)
	if err != nil {
		t.Fatalf("Rotate() error = %v", err)
	}
	// With a 1s token lifetime the first key expires a second after the
	// second key took over.
	deadline := time.Now().Add(10 * time.Second)
	var gone []string
	for len(gone) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if gone, err = keys.Prune(path, short); err != nil {
			t.Fatalf("Prune() error = %v", err)
		}
	}
	if len(gone) != 1 || gone[0] != first.ID {
		t.Fatalf("Prune() = %v, want [%s]", gone, first.ID)
	}
	if err := keys.Remove(path, third.ID); err != nil {
		t.Errorf("Remove(next) error = %v", err)
	}
	s, err := keys.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || s.Lookup(second.ID) == nil {
		t.Errorf("key file holds %v, want only %s", s.Keys(), second.ID)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", info.Mode(), err)
	}
}
