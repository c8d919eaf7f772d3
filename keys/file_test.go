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

// createKeyFile makes a key file at path holding ks.
func createKeyFile(t *testing.T, path string, ks ...*keys.Key) {
	t.Helper()
	if _, err := keys.Create(path, func(s *keys.Set) error {
		for _, k := range ks {
			s.Add(k)
		}
		return nil
	}); err != nil {
		t.Fatalf("Create() error = %v", err)
	}
}

// isSymlink reports whether path is still a symbolic link to target.
func isSymlink(t *testing.T, path, target string) bool {
	t.Helper()
	got, err := os.Readlink(path)
	return err == nil && got == target
}

// A key file must be a regular file. A symbolic link is refused, never
// followed: Save replaces the file by renaming a new one over it, which
// would turn the link into a regular file, and a dangling link would pass
// for a missing file and get a fresh key. The refusal says what to do.
func TestKeyFileSymlinkRefused(t *testing.T) {
	elsewhere := filepath.Join(t.TempDir(), "real-keys.json")
	createKeyFile(t, elsewhere, generate(t, keys.EdDSA, t0))
	before, _ := os.ReadFile(elsewhere)

	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	if err := os.Symlink(elsewhere, path); err != nil {
		t.Fatal(err)
	}
	checkErr := func(t *testing.T, what string, err error, fix string) {
		t.Helper()
		if !errors.Is(err, keys.ErrNotRegular) || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), fix) {
			t.Errorf("%s error = %v, want ErrNotRegular saying it is a symbolic link and how to fix it", what, err)
		}
	}
	t.Run("to a key file", func(t *testing.T) {
		_, err := keys.Load(path)
		checkErr(t, "Load()", err, "mv "+elsewhere+" "+path)
		_, err = keys.Update(path, func(s *keys.Set) error { s.Add(generate(t, keys.ES256, t0)); return nil })
		checkErr(t, "Update()", err, "mv ")
		_, err = keys.OpenKeyring(path, policy, keys.KeyringOptions{})
		checkErr(t, "OpenKeyring()", err, "mv ")
		if !isSymlink(t, path, elsewhere) {
			t.Error("the symbolic link was replaced")
		}
		if after, _ := os.ReadFile(elsewhere); string(after) != string(before) {
			t.Error("the link's target changed")
		}
	})
	t.Run("dangling", func(t *testing.T) {
		dangling := filepath.Join(dir, "dangling.json")
		missing := filepath.Join(t.TempDir(), "missing.json")
		if err := os.Symlink(missing, dangling); err != nil {
			t.Fatal(err)
		}
		_, err := keys.Load(dangling)
		checkErr(t, "Load()", err, "rm "+dangling)
		if errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load() error = %v matches fs.ErrNotExist: a caller would make a fresh key", err)
		}
		_, err = keys.OpenKeyring(dangling, policy, keys.KeyringOptions{})
		checkErr(t, "OpenKeyring()", err, "rm "+dangling)
		if _, err := os.Lstat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OpenKeyring() created the link's target: %v", err)
		}
		if !isSymlink(t, dangling, missing) {
			t.Error("the dangling link was replaced")
		}
		if _, err := keys.Create(dangling, func(s *keys.Set) error { s.Add(generate(t, keys.EdDSA, t0)); return nil }); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Create() over a dangling link error = %v, want fs.ErrExist", err)
		}
	})
	t.Run("a directory", func(t *testing.T) {
		sub := filepath.Join(dir, "sub.json")
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Load(sub); !errors.Is(err, keys.ErrNotRegular) {
			t.Errorf("Load(directory) error = %v, want ErrNotRegular", err)
		}
	})
}

// A key file always holds a key: Load refuses one without, Save and Update
// never write one, and a keyring refuses to start without a key that signs.
func TestKeyFileWithoutKeysRefused(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte(`{"version": 1, "keys": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Load(empty); !errors.Is(err, keys.ErrNoKeys) || !strings.Contains(err.Error(), "keys init") {
		t.Errorf("Load(no keys) error = %v, want ErrNoKeys saying how to make a key", err)
	}
	if _, err := keys.OpenKeyring(empty, policy, keys.KeyringOptions{}); !errors.Is(err, keys.ErrNoKeys) {
		t.Errorf("OpenKeyring(no keys) error = %v, want ErrNoKeys", err)
	}
	if err := keys.Save(filepath.Join(dir, "new.json"), new(keys.Set)); !errors.Is(err, keys.ErrNoKeys) {
		t.Errorf("Save(empty set) error = %v, want ErrNoKeys", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "new.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Save(empty set) wrote a file: %v", err)
	}

	path := filepath.Join(dir, "keys.json")
	only := generate(t, keys.EdDSA, t0)
	createKeyFile(t, path, only)
	before, _ := os.ReadFile(path)
	if _, err := keys.Update(path, func(s *keys.Set) error { return s.Remove(only.ID, t0.Add(-time.Second)) }); !errors.Is(err, keys.ErrNoKeys) {
		t.Errorf("Update() removing the last key error = %v, want ErrNoKeys", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("a refused Update changed the key file")
	}

	future := filepath.Join(dir, "future.json")
	createKeyFile(t, future, generate(t, keys.EdDSA, t0.Add(time.Hour)))
	_, err := keys.OpenKeyring(future, policy, keys.KeyringOptions{Now: func() time.Time { return t0 }})
	if !errors.Is(err, keys.ErrNoActiveKey) || !strings.Contains(err.Error(), "rotate --now") {
		t.Errorf("OpenKeyring(no active key) error = %v, want ErrNoActiveKey saying rotate --now", err)
	}
}
