package keys

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sessiond/sessiond/internal/lockedfile"
)

// fileVersion is the format of the key file; a file of another version is
// refused rather than misread.
const fileVersion = 1

// fileKey is one key as stored: PKCS #8 DER for the private key, whatever
// its algorithm.
type fileKey struct {
	ID         string    `json:"kid"`
	Algorithm  Algorithm `json:"alg"`
	Created    time.Time `json:"created"`
	Activates  time.Time `json:"activates"`
	PrivateKey []byte    `json:"private_key_pkcs8"`
}

type fileSet struct {
	Version int       `json:"version"`
	Keys    []fileKey `json:"keys"`
}

// Load reads the key file at path. The file must be a regular file
// (a symbolic link is refused, not followed: ErrNotRegular) readable by its
// owner only (otherwise ErrInsecure, and it is not read), and it must hold
// at least one key (ErrNoKeys). A missing file is an error matching
// fs.ErrNotExist; a dangling link is not missing, but ErrNotRegular.
func Load(path string) (*Set, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if err := checkRegular(path, info); err != nil {
		return nil, err
	}
	f, err := openNoFollow(path)
	if errors.Is(err, errSymlink) {
		info, err = os.Lstat(path)
		if err == nil {
			err = checkRegular(path, info)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	defer f.Close()
	info, err = f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if err := checkRegular(path, info); err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; private keys must be readable by their owner only: run chmod 600 %s",
			ErrInsecure, path, perm, path)
	}
	var stored fileSet
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&stored); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return decodeSet(stored, path)
}

// checkRegular refuses anything at path but a regular file, saying what it
// is and what to do about it.
func checkRegular(path string, info fs.FileInfo) error {
	mode := info.Mode()
	switch {
	case mode.IsRegular():
		return nil
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return fmt.Errorf("%w: %s is a symbolic link: %v", ErrNotRegular, path, err)
		}
		resolved := target
		if !filepath.IsAbs(resolved) {
			resolved = filepath.Join(filepath.Dir(path), resolved)
		}
		const why = "sessiond does not follow it, because saving the keys replaces the file, which would replace the link"
		if _, err := os.Stat(resolved); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s is a symbolic link to %s, which does not exist; %s: point --data-dir at the directory that holds the key file, or remove the link (rm %s) for a new key",
				ErrNotRegular, path, target, why, path)
		}
		return fmt.Errorf("%w: %s is a symbolic link to %s; %s: move the key file into place (rm %s && mv %s %s), or point --data-dir at the directory that holds it",
			ErrNotRegular, path, target, why, path, resolved, path)
	case mode.IsDir():
		return fmt.Errorf("%w: %s is a directory; it must be the key file itself", ErrNotRegular, path)
	default:
		return fmt.Errorf("%w: %s has file mode %s; it must be the key file itself", ErrNotRegular, path, mode.Type())
	}
}

func decodeSet(stored fileSet, path string) (*Set, error) {
	if stored.Version != fileVersion {
		return nil, fmt.Errorf("%w: %s: format version %d, want %d", ErrCorrupt, path, stored.Version, fileVersion)
	}
	if len(stored.Keys) == 0 {
		return nil, fmt.Errorf("%w: %s, so nothing can sign: remove it, then run sessiond keys init (or start sessiond serve) to make a first key",
			ErrNoKeys, path)
	}
	s := new(Set)
	for i, fk := range stored.Keys {
		priv, err := x509.ParsePKCS8PrivateKey(fk.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: key %d: %v", ErrCorrupt, path, i, err)
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: %s: key %d: %T cannot sign", ErrCorrupt, path, i, priv)
		}
		k, err := newKey(fk.Algorithm, signer, fk.Created, fk.Activates)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: key %d: %v", ErrCorrupt, path, i, err)
		}
		if k.ID != fk.ID {
			return nil, fmt.Errorf("%w: %s: key %d: kid %q does not match its key", ErrCorrupt, path, i, fk.ID)
		}
		if !s.Add(k) {
			return nil, fmt.Errorf("%w: %s: key %s appears twice", ErrCorrupt, path, k.ID)
		}
	}
	return s, nil
}

// Save writes s to path atomically: a temporary file in the same directory,
// fsynced, renamed over path, and the directory fsynced, so a crash leaves
// either the old file or the new one. The file has mode 0600. Callers that
// read, change and save must hold the lock (use [Update]). An empty set is
// refused (ErrNoKeys), and so is a path that holds anything but a regular
// file (ErrNotRegular).
func Save(path string, s *Set) error {
	if s.Len() == 0 {
		return fmt.Errorf("write key file %s: %w: a key file must hold a key", path, ErrNoKeys)
	}
	if info, err := os.Lstat(path); err == nil {
		if err := checkRegular(path, info); err != nil {
			return err
		}
	}
	stored := fileSet{Version: fileVersion, Keys: make([]fileKey, 0, len(s.keys))}
	for _, k := range s.keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv.key())
		if err != nil {
			return fmt.Errorf("encode key %s: %w", k.ID, err)
		}
		stored.Keys = append(stored.Keys, fileKey{k.ID, k.Algorithm, k.created, k.activates, der})
	}
	data, err := json.MarshalIndent(stored, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// lockTimeout bounds how long Update waits for another process's lock.
const lockTimeout = 10 * time.Second

// errSymlink is what openNoFollow returns for a symbolic link.
var errSymlink = errors.New("key file is a symbolic link")

// Update changes the existing key file at path under an exclusive lock (a
// lock file beside it), so that concurrent commands serialise and none loses
// another's key: it loads the set, calls fn, and saves the result unless fn
// fails. It returns the saved set. A missing key file is an error matching
// fs.ErrNotExist, and nothing is created: use [Create] to make one.
func Update(path string, fn func(*Set) error) (*Set, error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	s, err := Load(path)
	if err != nil {
		return nil, err
	}
	if err := fn(s); err != nil {
		return nil, err
	}
	if err := Save(path, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Create makes a new key file at path under the lock of [Update]: it calls
// fn with an empty set and saves the result unless fn fails. When something
// is at path already (even a dangling symbolic link) it changes nothing and
// returns an error matching fs.ErrExist; of two concurrent calls, one
// succeeds. The directory must exist.
func Create(path string, fn func(*Set) error) (*Set, error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("create key file: %s: %w", path, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	s := new(Set)
	if err := fn(s); err != nil {
		return nil, err
	}
	if err := Save(path, s); err != nil {
		return nil, err
	}
	return s, nil
}

// openNoFollow opens path for reading, refusing a symbolic link
// (errSymlink) and never blocking on a FIFO (package lockedfile).
func openNoFollow(path string) (*os.File, error) {
	f, err := lockedfile.OpenNoFollow(path)
	if errors.Is(err, lockedfile.ErrSymlink) {
		err = errSymlink
	}
	return f, err
}

// lockFile takes the exclusive lock of the lock file at path (package
// lockedfile: flock(2) on Unix, the lock file's existence elsewhere),
// waiting up to lockTimeout for another process to release it.
func lockFile(path string) (unlock func(), err error) {
	unlock, err = lockedfile.Lock(path, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("lock key file: %w", err)
	}
	return unlock, nil
}
