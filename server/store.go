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
	"github.com/sessiond/sessiond/revocation/valkey"
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
// Config.Leeway as its retention. `sessiond revocations import` opens its
// store with it; the server opens its own the same way and then also
// refuses a shared store whose retention is larger than its leeway
// ([ErrLeeway]), which OpenStore does not (an import verifies no token).
// The caller closes the store.
func OpenStore(cfg Config, log *slog.Logger) (Store, error) {
	return openAny(cfg, log, nil)
}

// ErrLeeway is the refusal of a node whose Config.Leeway is smaller than
// the retention of the shared store it opens, that is than the largest
// leeway any node opened the store with. Such a node would refuse as
// expired the tokens the other nodes still accept for up to the
// difference, and answer close_session true for them without revoking
// them (a close of a token it counts as expired is a no-op), so that the
// other nodes would go on accepting a token the caller was told is
// closed; close_all_sessions would likewise keep its cutoff for a shorter
// time than the other nodes accept its tokens. docs/valkey.md says why the
// node refuses rather than follows the store's retention.
var ErrLeeway = errors.New("--leeway is smaller than the shared revocation store's retention")

// openStore is the server's: OpenStore, and the check of the shared
// store's retention against Config.Leeway; committed, unless nil, is told
// the number of calls each group commit of Badger carried
// (revocation.Options.Committed).
func openStore(cfg Config, log *slog.Logger, committed func(calls int)) (Store, error) {
	store, err := openAny(cfg, log, committed)
	if err != nil {
		return nil, err
	}
	if r := store.Retention(); sharedStore(cfg) && r > cfg.Leeway {
		store.Close()
		return nil, fmt.Errorf("%w: this node has --leeway %s, but the store keeps records for %s past a token's expiry, "+
			"the largest --leeway a node opened it with; with the smaller leeway this node would refuse as expired tokens the "+
			"other nodes accept, and answer close_session true for them without closing them. "+
			"Give every node the same --leeway: --leeway %s. To lower the leeway of every node for good instead, stop every node, "+
			"then lower the store's retention with valkey-cli (the store keeps it in nanoseconds): SET '{%s}:retain' %d, "+
			"and start every node with --leeway %s",
			ErrLeeway, cfg.Leeway, r, r, valkey.DefaultPrefix, cfg.Leeway.Nanoseconds(), cfg.Leeway)
	}
	return store, nil
}

// openAny opens the store cfg names, for OpenStore and openStore.
func openAny(cfg Config, log *slog.Logger, committed func(calls int)) (Store, error) {
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
		revocation.Options{Logger: log.With("component", "badger"), Retention: cfg.Leeway, Committed: committed})
	if err != nil {
		return nil, err
	}
	return store, nil
}
