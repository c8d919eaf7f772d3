package keys_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/keys"
)

// FuzzLoad feeds arbitrary bytes to the key file loader, through a real
// file with mode 0600. Load must never panic, and must either refuse with
// ErrCorrupt or ErrNoKeys, or return a non-empty set whose kids match their
// keys and which survives Save and Load unchanged. Seeds: the table of
// TestLoadRefuses, a key file without keys, and valid files of every
// algorithm, whole and cut short.
func FuzzLoad(f *testing.F) {
	for _, content := range corruptKeyFiles {
		f.Add([]byte(content))
	}
	f.Add([]byte(`{"version": 1, "keys": []}`))
	dir := f.TempDir()
	valid := filepath.Join(dir, "valid.json")
	if _, err := keys.Create(valid, func(s *keys.Set) error {
		for i, alg := range []keys.Algorithm{keys.EdDSA, keys.ES256, keys.RS256} {
			k, err := keys.Generate(alg, 0, t0, t0.Add(time.Duration(i)*time.Hour))
			if err != nil {
				return err
			}
			s.Add(k)
		}
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(valid)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte(strings.Replace(string(data), `"version": 1`, `"version": 1.5`, 1)))

	path := filepath.Join(dir, "keys.json")
	again := filepath.Join(dir, "again.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := keys.Load(path)
		if err != nil {
			if !errors.Is(err, keys.ErrCorrupt) && !errors.Is(err, keys.ErrNoKeys) {
				t.Fatalf("Load() error = %v, want ErrCorrupt or ErrNoKeys", err)
			}
			return
		}
		if s.Len() == 0 {
			t.Fatal("Load() returned an empty set without an error")
		}
		for _, k := range s.Keys() {
			if kid, err := keys.Thumbprint(k.Public()); err != nil || kid != k.ID {
				t.Fatalf("loaded key %s has thumbprint %q, %v", k.ID, kid, err)
			}
		}
		if err := keys.Save(again, s); err != nil {
			t.Fatalf("Save(loaded set) error = %v", err)
		}
		back, err := keys.Load(again)
		if err != nil {
			t.Fatalf("Load(saved set) error = %v", err)
		}
		got, want := back.Keys(), s.Keys()
		if len(got) != len(want) {
			t.Fatalf("round trip: %d keys, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID || !got[i].Activates().Equal(want[i].Activates()) || !got[i].Created().Equal(want[i].Created()) {
				t.Fatalf("round trip: key %d = %#v, want %#v", i, got[i], want[i])
			}
		}
	})
}
