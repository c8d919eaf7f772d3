package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sessiond/sessiond/revocation/valkey"
)

var _ Store = (*valkey.Store)(nil)

// openValkey opens the Valkey store cfg.RevocationStore names, waiting at
// most valkey.DefaultDialTimeout for it to answer.
func openValkey(cfg Config, log *slog.Logger) (Store, error) {
	store, err := valkey.Open(context.Background(), cfg.RevocationStore, valkey.Options{
		Logger:    log.With("component", "valkey"),
		Retention: cfg.Leeway,
		Replicas:  cfg.RevocationStoreReplicas,
	})
	if err != nil {
		return nil, fmt.Errorf("--revocation-store: %w", err)
	}
	return store, nil
}

// sharedStore reports whether cfg names a store outside the data dir.
func sharedStore(cfg Config) bool {
	return cfg.RevocationStore != "" && cfg.RevocationStore != StoreBadger
}
