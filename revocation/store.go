package revocation

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Store is a revocation list. Implementations must be safe for concurrent use.
type Store interface {
	// Revoke records id as revoked until the instant until (the token's expiry plus leeway).
	// When it returns nil the record is durable (on disk, fsynced): it survives a crash or SIGKILL.
	// Revoking an id again is harmless; a later `until` extends the record, an earlier one never shortens it.
	Revoke(ctx context.Context, id uuid.UUID, until time.Time) error
	// IsRevoked reports whether id is revoked now. An error means the answer is unknown
	// (callers fail closed on it).
	IsRevoked(ctx context.Context, id uuid.UUID) (bool, error)
}

// Errors returned by this package, possibly wrapped; test with [errors.Is].
var (
	// ErrLocked is returned by [OpenBadger] when the directory is held by
	// another process, or by another open [Badger] in this process.
	ErrLocked = errors.New("revocation store is in use by another process")

	// ErrClosed is returned by every method of a [Badger] after [Badger.Close].
	ErrClosed = errors.New("revocation store is closed")
)
