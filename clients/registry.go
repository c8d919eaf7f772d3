package clients

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/internal/lockedfile"
)

// Registry is the live set of clients of a running server: it follows the
// clients file as the `sessiond clients` commands change it. It is safe for
// concurrent use; look-ups take no lock.
type Registry struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex // serialises Reload
	stamp stamp      // of the file behind cur; guarded by mu
	cur   atomic.Pointer[Set]
}

// stamp tells whether a file changed without reading it.
type stamp struct {
	exists bool
	mod    time.Time
	size   int64
	ino    uint64
}

func statStamp(path string) (stamp, error) {
	info, err := os.Lstat(path)
	if os.IsNotExist(err) {
		return stamp{}, nil
	}
	if err != nil {
		return stamp{}, err
	}
	return stamp{exists: true, mod: info.ModTime(), size: info.Size(), ino: lockedfile.Inode(info)}, nil
}

// OpenRegistry loads the clients file at path (a missing one holds no
// clients); log receives reloads and errors (nil discards them).
func OpenRegistry(path string, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{path: path, log: log}
	st, err := statStamp(path)
	if err != nil {
		return nil, fmt.Errorf("read clients file: %w", err)
	}
	set, err := Load(path)
	if err != nil {
		return nil, err
	}
	r.stamp = st
	r.cur.Store(set)
	return r, nil
}

// Path returns the clients file's path.
func (r *Registry) Path() string { return r.path }

// Set returns the current clients.
func (r *Registry) Set() *Set { return r.cur.Load() }

// Reload re-reads the clients file if it changed since it last looked. On
// error the registry keeps its last good clients and returns the error,
// once: it tries again when the file changes again.
// A file that was there and is gone is such an error, so that deleting the
// file by mistake never turns authentication off: `sessiond clients remove`
// leaves a file with no clients.
func (r *Registry) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := statStamp(r.path)
	if err != nil {
		return fmt.Errorf("reload clients: %w", err)
	}
	if st == r.stamp {
		return nil
	}
	r.stamp = st // a bad file is reported once, and read again when it changes
	if !st.exists {
		return fmt.Errorf("reload clients: %s is gone; keeping the %d clients it held (to remove every client, run sessiond clients remove for each, which leaves an empty file)", r.path, r.cur.Load().Len())
	}
	set, err := Load(r.path)
	if err != nil {
		return fmt.Errorf("reload clients: %w", err)
	}
	r.cur.Store(set)
	r.log.Info("reloaded clients", "file", r.path, "clients", set.Len())
	return nil
}

// Run follows the clients file until ctx ends, reloading it every interval
// and whenever reload receives. Errors are logged at Error; the registry
// keeps its last good clients.
func (r *Registry) Run(ctx context.Context, interval time.Duration, reload <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-reload:
		}
		if err := r.Reload(); err != nil {
			r.log.Error("keeping the last good clients", "err", err)
		}
	}
}
