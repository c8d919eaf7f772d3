package revocation

// This file is the store's read path: IsRevoked (the filter first, Badger
// only for ids the filter may hold) and Len.

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
)

// IsRevoked reports whether id is revoked now. On error the answer is
// unknown; it then also returns true, so that even a caller that ignores
// the error fails closed.
func (b *Badger) IsRevoked(ctx context.Context, id uuid.UUID) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return true, fmt.Errorf("is revoked %s: %w", id, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("is revoked %s: %w", id, err)
	}
	if !b.filter.Load().mayContain(id) {
		return false, nil
	}
	key := id // captured by the closure instead of id, so that id stays on the stack on the filter's path
	err := b.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(key[:])
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	default:
		return true, fmt.Errorf("is revoked %s: %w", id, err)
	}
}

// Len returns the number of live (unexpired) entries. It walks every key, so
// it is meant for tests, the command line and occasional metrics, not for
// the request path.
func (b *Badger) Len(ctx context.Context) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, fmt.Errorf("count revocations: %w", ErrClosed)
	}
	n := 0
	err := b.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() { // skips expired entries
			if len(it.Item().Key()) != 16 {
				continue // the store's own records
			}
			n++
			if n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("count revocations: %w", err)
	}
	return n, nil
}
