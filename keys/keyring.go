package keys

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/internal/lockedfile"
)

// KeyringOptions configures a [Keyring]. The zero value is usable.
type KeyringOptions struct {
	// Logger receives reloads, prunes and errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// A Keyring is the live key set of a running server: it signs with the
// active key, finds keys by id for verification, and follows the key file
// as the `sessiond keys` commands change it. It is safe for concurrent use;
// look-ups take no lock.
type Keyring struct {
	path   string
	policy Policy
	log    *slog.Logger
	now    func() time.Time

	reloadMu sync.Mutex // serialises Reload
	stamp    fileStamp  // of the file behind cur; guarded by reloadMu
	cur      atomic.Pointer[snapshot]

	// states is each key's state when Run last looked (by kid), so that it
	// can log the changes; guarded by statesMu.
	statesMu sync.Mutex
	states   map[string]State
}

// snapshot is an immutable key set with an index for verification.
type snapshot struct {
	set  *Set
	byID map[string]verificationKey
}

type verificationKey struct {
	key     *Key
	public  crypto.PublicKey // key.Public(), made once: it allocates
	expires time.Time        // zero: does not expire while the set stays as it is
}

// OpenKeyring loads the key file at path, which must have a key active now
// (else ErrNoActiveKey). When the file does not exist it creates it with one
// Ed25519 key, active at once (nobody can know an older key, so there is
// nothing to propagate); a dangling symbolic link is not "does not exist"
// but ErrNotRegular (see [Load]). The creation takes the lock of
// [Create], so servers that share one key file and start at once on a
// missing one end with one key: one creates it, the others load it.
func OpenKeyring(path string, policy Policy, opts KeyringOptions) (*Keyring, error) {
	r := &Keyring{path: path, policy: policy, log: opts.Logger, now: opts.Now}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	set, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		set, err = Create(path, func(s *Set) error {
			now := r.now()
			k, err := Generate(EdDSA, 0, now, now)
			if err != nil {
				return err
			}
			if k, err = s.First(k, now); err != nil {
				return err
			}
			r.log.Info("generated the first signing key", "key", k, "file", path)
			return nil
		})
		if errors.Is(err, fs.ErrExist) {
			set, err = Load(path) // created meanwhile by someone else
		}
	}
	if err != nil {
		return nil, err
	}
	if err := checkActive(set, path, r.now()); err != nil {
		return nil, err
	}
	stamp, _ := statFile(path)
	r.stamp = stamp
	r.cur.Store(r.index(set))
	r.noteStates(false)
	return r, nil
}

// Check tells whether the existing key file at path could start a
// [Keyring] at now: it loads as [Load] does, and a key must be active (else
// ErrNoActiveKey). It writes nothing, so a server can refuse a bad key file
// before it creates anything else; OpenKeyring makes the same checks.
func Check(path string, now time.Time) error {
	set, err := Load(path)
	if err != nil {
		return err
	}
	return checkActive(set, path, now)
}

// checkActive refuses a set that has no key to sign with at now.
func checkActive(set *Set, path string, now time.Time) error {
	if set.Active(now) == nil {
		return fmt.Errorf("%w: no key in %s has activated yet (the first activates at %s): run sessiond keys rotate --now",
			ErrNoActiveKey, path, set.Keys()[0].activates.Format(time.RFC3339))
	}
	return nil
}

func (r *Keyring) index(set *Set) *snapshot {
	snap := &snapshot{set: set, byID: make(map[string]verificationKey, set.Len())}
	now := r.now()
	for _, k := range set.keys {
		snap.byID[k.ID] = verificationKey{key: k, public: k.Public(), expires: set.Lifecycle(k, now, r.policy).Expires}
	}
	return snap
}

// Set returns the current key set. It must not be changed.
func (r *Keyring) Set() *Set { return r.cur.Load().set }

// Policy returns the lifecycle policy the keyring applies.
func (r *Keyring) Policy() Policy { return r.policy }

// SigningKey returns the active key: its id, algorithm and private key.
func (r *Keyring) SigningKey() (kid, alg string, key crypto.Signer, err error) {
	k := r.cur.Load().set.Active(r.now())
	if k == nil {
		return "", "", nil, ErrNoActiveKey
	}
	return k.ID, string(k.Algorithm), k.priv, nil
}

// VerificationKey returns the algorithm and public key of the published key
// kid. A key that is unknown, removed or expired gives ErrUnknownKey.
func (r *Keyring) VerificationKey(_ context.Context, kid string) (alg string, key crypto.PublicKey, err error) {
	vk, ok := r.cur.Load().byID[kid]
	if !ok || !vk.expires.IsZero() && !r.now().Before(vk.expires) {
		return "", nil, ErrUnknownKey
	}
	return string(vk.key.Algorithm), vk.public, nil
}

// Published returns the keys verifiers should know at now: next, active and
// retired ones, in activation order.
func (r *Keyring) Published() []*Key {
	snap := r.cur.Load()
	now := r.now()
	keys := make([]*Key, 0, snap.set.Len())
	for _, k := range snap.set.keys {
		if vk := snap.byID[k.ID]; vk.expires.IsZero() || now.Before(vk.expires) {
			keys = append(keys, k)
		}
	}
	return keys
}

// Reload re-reads the key file if it changed since the last load. On error
// the keyring keeps its last good keys and returns the error.
func (r *Keyring) Reload() error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	stamp, err := statFile(r.path)
	if err != nil {
		return fmt.Errorf("reload keys: %w", err)
	}
	if stamp == r.stamp {
		return nil
	}
	set, err := Load(r.path)
	if err != nil {
		return fmt.Errorf("reload keys: %w", err)
	}
	r.stamp = stamp
	r.cur.Store(r.index(set))
	r.log.Info("reloaded signing keys", "keys", set.Len())
	return nil
}

// Prune removes expired keys from the key file (and so from the keyring).
func (r *Keyring) Prune() error {
	now := r.now()
	set := r.cur.Load().set
	expired := false
	for _, k := range set.keys {
		expired = expired || set.Lifecycle(k, now, r.policy).State == Expired
	}
	if !expired {
		return nil
	}
	var gone []string
	if _, err := Update(r.path, func(s *Set) error {
		gone = s.Prune(now, r.policy)
		return nil
	}); err != nil {
		return fmt.Errorf("prune keys: %w", err)
	}
	r.log.Info("pruned expired signing keys", "kids", gone)
	return r.Reload()
}

// Run follows the key file until ctx ends: every interval (a server passes
// [ReloadInterval], which the lifecycle counts on), and whenever
// reload receives, it reloads the file and prunes expired keys. Errors are
// logged; the keyring keeps serving its last good keys. Each time it also
// logs, at Info, every key whose state changed since it last looked: one
// added to the file ("signing key added"), one that became active
// ("signing key activated", the one that signs from then on), retired
// ("signing key retired") or expired ("signing key expired"), and one gone
// from the file, pruned or removed ("signing key removed").
func (r *Keyring) Run(ctx context.Context, interval time.Duration, reload <-chan os.Signal) {
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
			r.log.Error("keeping the last good signing keys", "err", err)
		} else if err := r.Prune(); err != nil {
			r.log.Error("prune keys", "err", err)
		}
		r.noteStates(true)
	}
}

// noteStates records each key's state now and, when log is set, logs the
// changes since the last call (see Run).
func (r *Keyring) noteStates(log bool) {
	r.statesMu.Lock()
	defer r.statesMu.Unlock()
	set, now := r.cur.Load().set, r.now()
	states := make(map[string]State, set.Len())
	for _, k := range set.keys {
		st := set.Lifecycle(k, now, r.policy).State
		states[k.ID] = st
		old, known := r.states[k.ID]
		switch {
		case !log || known && old == st:
		case !known:
			r.log.Info("signing key added", "key", k, "state", st, "activates", k.activates)
		case st == Active:
			r.log.Info("signing key activated", "key", k)
		case st == Retired:
			r.log.Info("signing key retired", "key", k)
		default:
			r.log.Info("signing key "+string(st), "key", k)
		}
	}
	if log {
		for kid, old := range r.states {
			if _, ok := states[kid]; !ok {
				r.log.Info("signing key removed", "kid", kid, "was", old)
			}
		}
	}
	r.states = states
}

// fileStamp tells whether a file changed without reading it.
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func statFile(path string) (fileStamp, error) {
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: info.ModTime(), size: info.Size(), ino: lockedfile.Inode(info)}, nil
}
