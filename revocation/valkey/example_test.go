package valkey_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/revocation/valkey"
)

// Open a store shared by every node that opens the same URL, close a
// session on it, and check a token, failing closed.
func ExampleOpen() {
	ctx := context.Background()
	store, err := valkey.Open(ctx, "redis://127.0.0.1:6379", valkey.Options{
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Retention: time.Minute, // the verifiers' leeway on exp
		Replicas:  0,           // replicas that must have each close in their AOF
	})
	if err != nil {
		return // a bad URL, an unreachable store (after 10 s), no AOF: refuse to serve
	}
	defer store.Close()

	jti, exp := uuid.New(), time.Now().Add(time.Hour)
	if err := store.Revoke(ctx, jti, exp); err != nil {
		return // the session is NOT known to be closed: answer -32603
	}
	revoked, err := store.IsRevoked(ctx, jti) // from memory once read
	if err != nil || revoked {
		return // unknown counts as revoked
	}
}
