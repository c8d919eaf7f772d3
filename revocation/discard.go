package revocation

// This file is Discard: the deliberate reset that sets a damaged or
// missing store aside.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Discarded says what [Discard] set aside.
type Discarded struct {
	// Dir is where the store's directory went; empty when there was none.
	Dir string
	// Seal is where its seal went; empty when there was none.
	Seal string
	// Journal is where its journal went; empty when there was none.
	Journal string
	// Acknowledged is the number of writes the seal recorded as
	// acknowledged at the store's last checkpoint (0 without a readable
	// seal); the journal may hold later ones.
	Acknowledged uint64
}

// Discard sets the store in dir aside so that the next [OpenBadger] starts
// an empty one: the directory, its seal and its journal are renamed, with the suffix
// ".discarded-" and the time in UTC, not deleted, so that they can still be
// examined or restored. It is the deliberate reset that OpenBadger's refusal
// of a damaged or missing store asks for, and it forgets every revocation
// in the store. It fails with an error wrapping [ErrLocked] while the store
// is open, here or in another process.
func Discard(dir string) (Discarded, error) {
	dir = filepath.Clean(dir)
	var d Discarded
	suffix := ".discarded-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if sl, err := openSeal(sealPath(dir)); err == nil {
		d.Acknowledged = sl.state.seq
		sl.close()
	}
	if _, err := os.Stat(dir); err == nil {
		unlock, err := lockDir(dir)
		if err != nil {
			return d, fmt.Errorf("discard revocation store %q: %w", dir, err)
		}
		defer unlock()
		d.Dir = dir + suffix
		if err := os.Rename(dir, d.Dir); err != nil {
			return Discarded{}, fmt.Errorf("discard revocation store: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return d, fmt.Errorf("discard revocation store: %w", err)
	}
	if _, err := os.Stat(sealPath(dir)); err == nil {
		d.Seal = sealPath(dir) + suffix
		if err := os.Rename(sealPath(dir), d.Seal); err != nil {
			return d, fmt.Errorf("discard revocation store seal: %w", err)
		}
	}
	if _, err := os.Stat(journalPath(dir)); err == nil {
		d.Journal = journalPath(dir) + suffix
		if err := os.Rename(journalPath(dir), d.Journal); err != nil {
			return d, fmt.Errorf("discard revocation store journal: %w", err)
		}
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return d, fmt.Errorf("discard revocation store: %w", err)
	}
	return d, nil
}

// RenewEpoch gives the store in dir a new epoch, keeping its entries and
// their sequence numbers, and records it in the seal. Verifiers that keep a
// copy of the list (the feed) then replace their copy with a snapshot at
// their next sync. It is for a store restored from a backup: under its old
// epoch, verifiers holding a newer copy would refuse the older list (as a
// replay) and fail closed. The store must not be open elsewhere.
func RenewEpoch(dir string, opts Options) (err error) {
	b, err := OpenBadger(dir, opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.Close(); err == nil {
			err = cerr
		}
	}()
	raw, err := newEpoch()
	if err != nil {
		return err
	}
	// No Revoke is in flight (the store was opened just now, here), so the
	// seal and the records are this function's alone.
	if err := b.db.Update(func(txn *badger.Txn) error { return txn.Set(epochKey, raw) }); err != nil {
		return fmt.Errorf("renew epoch: %w", err)
	}
	if err := b.db.Sync(); err != nil {
		return fmt.Errorf("renew epoch: %w", err)
	}
	// The journal is empty (OpenBadger ended with a checkpoint); its next
	// records, if any, are checked against the new epoch.
	st := b.seal.state
	st.epoch, st.seq = [16]byte(raw), max(b.seq, st.seq)
	if err := b.seal.write(st); err != nil {
		return fmt.Errorf("renew epoch: %w", err)
	}
	b.journal.epoch = [16]byte(raw)
	b.epoch = epochString(raw)
	return nil
}
