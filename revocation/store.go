package revocation

// This file declares the Store interface and the package's errors.

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Store is a revocation list. Implementations must be safe for concurrent use.
type Store interface {
	// Revoke records id, the ID of a token that expires at expires, as
	// revoked until expires plus the store's retention (at least the leeway
	// any verifier of the store allows on exp). When it returns nil the
	// record is durable (on disk, fsynced): it survives a crash or SIGKILL.
	// Revoking an id again is harmless; a later expiry extends the record,
	// an earlier one never shortens it.
	Revoke(ctx context.Context, id uuid.UUID, expires time.Time) error
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

	// ErrDiskFull is returned by [Badger.Revoke] while the file system that
	// holds the store has less free space than the store's reserve, and by
	// [OpenBadger] when it cannot open for that reason. Nothing is written;
	// writes succeed again once space is freed.
	ErrDiskFull = errors.New("not enough free disk space for the revocation store")

	// ErrDamaged is returned by [OpenBadger] when the store on disk is not
	// the store its seal records: files are missing, truncated or corrupt,
	// the store was replaced by another one, or it holds fewer writes than it
	// acknowledged. Opening it would forget closed sessions, so nothing is
	// opened and nothing on disk is changed.
	ErrDamaged = errors.New("revocation store is damaged")

	// ErrMissing is returned by [OpenBadger] when the store's directory is
	// gone (or empty) but its seal says it existed.
	ErrMissing = errors.New("revocation store is missing")
)
