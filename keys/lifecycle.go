// This file holds the key lifecycle: the Policy, the states a key passes
// through, and the only operations that change which key signs — the first
// key, rotation, emergency removal and pruning — each on a Set and on the
// key file (under its lock, with the clock read under the lock).

package keys

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ReloadInterval is how often a running server re-reads the key file (the
// interval it passes to [Keyring.Run]). [Policy.ActivationDelay] counts on
// it: a new key must reach the server before verifiers' caches start to
// count down.
const ReloadInterval = 2 * time.Second

// Policy holds the settings that turn a key's activation time into the rest
// of its lifecycle. The server and the `sessiond keys` commands must use the
// same Policy, which is why both take the same flags.
type Policy struct {
	// MaxTokenLifetime is the longest lifetime a token can be issued with.
	MaxTokenLifetime time.Duration
	// Leeway is the clock skew verifiers allow past a token's expiry.
	Leeway time.Duration
	// PropagationDelay is how long a new key is published before it signs,
	// so that verifiers that cache the key set (for up to the JWKS max-age)
	// know it before they meet the first token it signed.
	PropagationDelay time.Duration
}

// ActivationDelay is how long a new key waits, by default, between being
// added to the key file and signing: ReloadInterval (a running server
// publishes the key when it next reads the file) plus PropagationDelay
// (then every verifier has a whole cache lifetime to fetch it). Waiting
// that long also lets the server learn of the key before it activates, so
// the old key signs nothing after it retires.
func (p Policy) ActivationDelay() time.Duration { return ReloadInterval + p.PropagationDelay }

// State is where a key stands in its lifecycle.
type State string

// The lifecycle: next → active → retired → expired (then pruned).
const (
	// Next keys are published but do not sign yet.
	Next State = "next"
	// Active is the one key that signs new tokens: the one with the latest
	// activation time that has passed.
	Active State = "active"
	// Retired keys no longer sign but still verify the tokens they signed.
	Retired State = "retired"
	// Expired keys signed only tokens that have all expired; prune removes them.
	Expired State = "expired"
)

// Lifecycle is a key's state at some instant and the times that bound it.
type Lifecycle struct {
	State     State
	Activates time.Time
	// Retires is when the next key in line takes over; zero while no
	// successor is scheduled.
	Retires time.Time
	// Expires is when the last token the key can have signed expires
	// (Retires + MaxTokenLifetime + Leeway); zero while Retires is.
	Expires time.Time
}

// Active returns the key that signs at now, or nil when no key has activated.
func (s *Set) Active(now time.Time) *Key {
	for i := len(s.keys) - 1; i >= 0; i-- {
		if !s.keys[i].activates.After(now) {
			return s.keys[i]
		}
	}
	return nil
}

// Lifecycle tells where k stands at now under p. k must belong to s.
func (s *Set) Lifecycle(k *Key, now time.Time, p Policy) Lifecycle {
	lc := Lifecycle{Activates: k.activates}
	i := slices.Index(s.keys, k)
	if i >= 0 && i+1 < len(s.keys) {
		lc.Retires = s.keys[i+1].activates
		lc.Expires = lc.Retires.Add(p.MaxTokenLifetime + p.Leeway)
	}
	switch {
	case k.activates.After(now):
		lc.State = Next
	case lc.Retires.IsZero() || lc.Retires.After(now):
		lc.State = Active
	case lc.Expires.After(now):
		lc.State = Retired
	default:
		lc.State = Expired
	}
	return lc
}

// First makes k the first key of the empty set s: created and active at
// now, since no verifier can know an older key and there is nothing to
// propagate. It returns the key as added (k itself is not changed), and
// refuses a set that holds a key already.
func (s *Set) First(k *Key, now time.Time) (*Key, error) {
	if s.Len() != 0 {
		return nil, fmt.Errorf("the key set holds %d keys already: add a key by rotation instead", s.Len())
	}
	return s.Rotate(k, now, 0)
}

// Rotate adds k as the next key: created at now, signing from now + delay
// (use [Policy.ActivationDelay] unless the operator chose otherwise; 0
// activates it at once, retiring the active key). It returns the key as
// added (k itself is not changed). It refuses a negative delay and a key
// that is in the set already.
func (s *Set) Rotate(k *Key, now time.Time, delay time.Duration) (*Key, error) {
	if delay < 0 {
		return nil, fmt.Errorf("activation delay %s is negative: give 0 to activate the key at once", delay)
	}
	added := *k
	now = now.UTC()
	// activates is not truncated: that would move the activation up to a
	// second earlier, cutting into the propagation delay, and would let a
	// key activated at once tie with one activated earlier in the same
	// second (the tie then goes by kid, so the new key might never sign).
	added.created, added.activates = now.Truncate(time.Second), now.Add(delay)
	if !s.Add(&added) {
		return nil, fmt.Errorf("key %s is in the key set already: generate a new key", k.ID)
	}
	return &added, nil
}

// Remove is the emergency removal of a compromised key: every token it
// signed stops verifying once servers reload the set. It refuses the key
// active at now ([ErrActiveKey]) whatever else the set holds — without it,
// either nothing could sign or an older, retired key would silently sign
// again — and an id the set does not hold ([ErrUnknownKey]).
func (s *Set) Remove(kid string, now time.Time) error {
	if active := s.Active(now); active != nil && active.ID == kid {
		return fmt.Errorf("%w: key %s signs new tokens now; run \"sessiond keys rotate --now\" first, then remove it", ErrActiveKey, kid)
	}
	if !s.remove(kid) {
		return fmt.Errorf("%w: no key %q (sessiond keys list shows the ids)", ErrUnknownKey, kid)
	}
	return nil
}

// Prune removes the keys that are expired at now and returns their ids.
func (s *Set) Prune(now time.Time, p Policy) []string {
	var gone []string
	for _, k := range s.keys {
		if s.Lifecycle(k, now, p).State == Expired {
			gone = append(gone, k.ID)
		}
	}
	for _, kid := range gone {
		s.remove(kid)
	}
	return gone
}

// Init creates the key file at path holding k as its first key, active at
// once (see [Set.First]). When something is at path already it changes
// nothing and returns an error matching fs.ErrExist, as [Create] does.
func Init(path string, k *Key) (*Key, error) {
	var added *Key
	_, err := Create(path, func(s *Set) (err error) {
		added, err = s.First(k, time.Now())
		return err
	})
	return added, err
}

// Rotate adds k to the existing key file at path as the next key, signing
// delay after it is saved (see [Set.Rotate]). The clock is read under the
// file's lock, just before the save, so that neither making the key (an RSA
// key takes a while) nor waiting for another command's lock eats into the
// delay.
func Rotate(path string, k *Key, delay time.Duration) (*Key, error) {
	var added *Key
	_, err := Update(path, func(s *Set) (err error) {
		added, err = s.Rotate(k, time.Now(), delay)
		return err
	})
	return added, err
}

// Remove takes the key kid out of the existing key file at path, with the
// refusals of [Set.Remove].
func Remove(path, kid string) error {
	_, err := Update(path, func(s *Set) error { return s.Remove(kid, time.Now()) })
	if errors.Is(err, ErrUnknownKey) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return err
}

// Prune removes the keys expired under p from the existing key file at path
// and returns their ids.
func Prune(path string, p Policy) ([]string, error) {
	var gone []string
	_, err := Update(path, func(s *Set) error {
		gone = s.Prune(time.Now(), p)
		return nil
	})
	return gone, err
}
