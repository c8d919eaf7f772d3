package server

// This file selects the revocation store: Badger under the data dir, or a
// Valkey/Redis server or cluster shared by several nodes.

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/sessiond/sessiond/revocation"
)

// StoreBadger is the value of Config.RevocationStore that names the
// embedded Badger store under the data dir, as "" does.
const StoreBadger = "badger"

// errStoreURL is the start of every refusal of a store URL.
var errStoreURL = errors.New("bad --revocation-store")

// CheckStoreURL checks a Config.RevocationStore offline: "" or "badger",
// or a redis:// or rediss:// URL. It connects to nothing and writes
// nothing. The rest of a Valkey URL is checked by [OpenStore] before it
// connects, and [Server.Open] opens a Valkey store before it writes
// anything, so a bad URL leaves nothing behind either way.
func CheckStoreURL(raw string) error {
	if raw == "" || raw == StoreBadger {
		return nil
	}
	// Only the scheme is looked at, and only it is printed: the rest of
	// the URL may hold a password.
	scheme, _, ok := strings.Cut(raw, "://")
	switch {
	case ok && (scheme == "redis" || scheme == "rediss"):
		return nil
	case ok && len(scheme) <= 16:
		return fmt.Errorf("%w: unknown scheme %q: want %s", errStoreURL, scheme, storeURLForms)
	}
	return fmt.Errorf("%w: neither badger nor a URL: want %s", errStoreURL, storeURLForms)
}

// storeURLForms says what a store URL may be.
const storeURLForms = `"badger" (the default: Badger under --data-dir), redis://[user:password@]host:port[/db] (one Valkey or Redis server), rediss://... (the same over TLS) or redis://host:port?addr=host2:port2&addr=host3:port3 (a Valkey or Redis Cluster)`

// OpenStore opens the revocation store cfg names (Config.RevocationStore):
// Badger in DataDir/revocations, or the Valkey store of the URL, with
// Config.Leeway as its retention. The server opens its store with it; so
// does `sessiond revocations import`. The caller closes the store.
func OpenStore(cfg Config, log *slog.Logger) (Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := CheckStoreURL(cfg.RevocationStore); err != nil {
		return nil, err
	}
	if sharedStore(cfg) {
		return openValkey(cfg, log)
	}
	if cfg.RevocationStoreReplicas != 0 {
		return nil, fmt.Errorf("--revocation-store-replicas %d needs a Valkey or Redis --revocation-store; Badger has no replicas", cfg.RevocationStoreReplicas)
	}
	store, err := revocation.OpenBadger(filepath.Join(cfg.DataDir, "revocations"),
		revocation.Options{Logger: log.With("component", "badger"), Retention: cfg.Leeway})
	if err != nil {
		return nil, err
	}
	return store, nil
}
