package clients

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sessiond/sessiond/internal/lockedfile"
)

// FileName is the clients file's name in the data directory.
const FileName = "clients.json"

// fileVersion is the format of the clients file; another is refused.
const fileVersion = 1

// maxFileSize is the largest clients file Load reads.
const maxFileSize = 16 << 20

type fileClient struct {
	Name    string       `json:"name"`
	Allow   []Permission `json:"allow"`
	Created time.Time    `json:"created"`
	SHA256  string       `json:"secret_sha256"` // hex
}

type fileSet struct {
	Version int          `json:"version"`
	Clients []fileClient `json:"clients"`
}

// Load reads the clients file at path. A missing file is an empty set (no
// clients), not an error. The file must be a regular file (a symbolic link
// is refused and never followed: ErrNotRegular) that only its owner can read
// and write (else ErrInsecure), in the format [Update] writes (else
// ErrCorrupt).
func Load(path string) (*Set, error) {
	f, err := openNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newSet(nil), nil
	}
	if errors.Is(err, errSymlink) {
		return nil, fmt.Errorf("%w: %s is a symbolic link, which sessiond does not follow (saving the file renames a new one over it, which would replace the link): move the file into place, or point --clients-file at it", ErrNotRegular, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read clients file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read clients file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s has file mode %s; it must be the clients file itself", ErrNotRegular, path, info.Mode().Type())
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; whoever can change it can add a client, so it must be readable and writable by its owner only: run chmod 600 %s",
			ErrInsecure, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read clients file: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, path, maxFileSize)
	}
	return parse(data, path)
}

// parse decodes a clients file's content.
func parse(data []byte, path string) (*Set, error) {
	var stored fileSet
	if err := json.Unmarshal(data, &stored); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if stored.Version != fileVersion {
		return nil, fmt.Errorf("%w: %s: format version %d, want %d", ErrCorrupt, path, stored.Version, fileVersion)
	}
	list := make([]*Client, 0, len(stored.Clients))
	seen := map[string]bool{}
	for i, fc := range stored.Clients {
		if err := ValidName(fc.Name); err != nil {
			return nil, fmt.Errorf("%w: %s: client %d: %v", ErrCorrupt, path, i, err)
		}
		if seen[fc.Name] {
			return nil, fmt.Errorf("%w: %s: client %q appears twice", ErrCorrupt, path, fc.Name)
		}
		seen[fc.Name] = true
		c := &Client{Name: fc.Name, Created: fc.Created}
		for _, p := range fc.Allow {
			switch p {
			case Open, Close, Verify:
			default:
				return nil, fmt.Errorf("%w: %s: client %q: permission %q is not open, close or verify", ErrCorrupt, path, fc.Name, p)
			}
			if !slices.Contains(c.Allow, p) {
				c.Allow = append(c.Allow, p)
			}
		}
		if len(c.Allow) == 0 {
			return nil, fmt.Errorf("%w: %s: client %q has no permission", ErrCorrupt, path, fc.Name)
		}
		slices.Sort(c.Allow)
		h, err := hex.DecodeString(fc.SHA256)
		if err != nil || len(h) != len(c.hash) {
			return nil, fmt.Errorf("%w: %s: client %q: secret_sha256 must be 64 hex digits", ErrCorrupt, path, fc.Name)
		}
		copy(c.hash[:], h)
		list = append(list, c)
	}
	return newSet(list), nil
}

func joinPerms(perms []Permission) string {
	s := make([]string, len(perms))
	for i, p := range perms {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

// save writes s to path atomically, mode 0600: a temporary file in the same
// directory, fsynced, renamed over path, then the directory fsynced. The
// caller holds the lock. Anything at path but a regular file is refused.
func save(path string, s *Set) error {
	if info, err := os.Lstat(path); err == nil && !info.Mode().IsRegular() {
		return fmt.Errorf("%w: %s has file mode %s; sessiond does not replace it: move the clients file into place, or point --clients-file at it", ErrNotRegular, path, info.Mode().Type())
	}
	stored := fileSet{Version: fileVersion, Clients: make([]fileClient, 0, s.Len())}
	for _, c := range s.clients {
		stored.Clients = append(stored.Clients, fileClient{Name: c.Name, Allow: c.Allow, Created: c.Created, SHA256: hex.EncodeToString(c.hash[:])})
	}
	data, err := json.MarshalIndent(stored, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write clients file: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(append(data, '\n'))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write clients file: %w", err)
	}
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

// Update changes the clients file at path under an exclusive lock (the
// lock file path + ".lock"), so that concurrent commands serialise and none
// loses another's change: it loads the set (a missing file is empty), lets
// fn return the new list, and saves it unless fn fails. The directory must
// exist.
func Update(path string, fn func([]*Client) ([]*Client, error)) error {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	s, err := Load(path)
	if err != nil {
		return err
	}
	list, err := fn(s.Clients())
	if err != nil {
		return err
	}
	return save(path, newSet(list))
}

// Add adds a client named name with the permissions allow to the clients
// file at path (creating the file if need be) and returns its new secret,
// which exists nowhere else: the file keeps only its SHA-256. A name the
// file holds already is refused (ErrExists).
func Add(path, name string, allow []Permission, now time.Time) (Secret, error) {
	if err := ValidName(name); err != nil {
		return Secret{}, err
	}
	allow, err := ParsePermissions(joinPerms(allow))
	if err != nil {
		return Secret{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return Secret{}, err
	}
	err = Update(path, func(list []*Client) ([]*Client, error) {
		for _, c := range list {
			if c.Name == name {
				return nil, fmt.Errorf("%w: %s already holds a client named %q: pick another name, or remove it first (sessiond clients remove %s)", ErrExists, path, name, name)
			}
		}
		return append(list, &Client{Name: name, Allow: allow, Created: now.UTC().Truncate(time.Second), hash: secret.hash()}), nil
	})
	if err != nil {
		return Secret{}, err
	}
	return secret, nil
}

// Remove removes the client named name from the clients file at path; its
// secret stops working once a server reloads the file. A name the file does
// not hold is ErrNotFound.
func Remove(path, name string) error {
	return Update(path, func(list []*Client) ([]*Client, error) {
		for i, c := range list {
			if c.Name == name {
				return append(list[:i:i], list[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("%w named %q in %s: sessiond clients list shows the names", ErrNotFound, name, path)
	})
}

// lockTimeout bounds how long Update waits for another process's lock.
const lockTimeout = 10 * time.Second

// errSymlink is what openNoFollow returns for a symbolic link.
var errSymlink = errors.New("clients file is a symbolic link")

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
// lockedfile), waiting up to lockTimeout for another process to release
// it.
func lockFile(path string) (unlock func(), err error) {
	unlock, err = lockedfile.Lock(path, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("lock clients file: %w", err)
	}
	return unlock, nil
}
