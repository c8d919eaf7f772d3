package keys

import (
	"slices"
	"strings"
	"time"
)

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

// A Set is an ordered collection of keys. It is not safe for concurrent
// mutation; a [Keyring] shares sets between goroutines only after they are
// complete and never changes them again.
type Set struct {
	keys []*Key // by Activates, then Created, then ID
}

// Keys returns the keys in activation order.
func (s *Set) Keys() []*Key { return slices.Clone(s.keys) }

// Len returns the number of keys.
func (s *Set) Len() int { return len(s.keys) }

// Lookup returns the key with id kid, or nil.
func (s *Set) Lookup(kid string) *Key {
	for _, k := range s.keys {
		if k.ID == kid {
			return k
		}
	}
	return nil
}

// Add puts k in the set, in activation order. It reports false, and changes
// nothing, when a key with the same id is there already.
func (s *Set) Add(k *Key) bool {
	if s.Lookup(k.ID) != nil {
		return false
	}
	i, _ := slices.BinarySearchFunc(s.keys, k, compareKeys)
	s.keys = slices.Insert(s.keys, i, k)
	return true
}

// Remove deletes the key with id kid and reports whether it was there.
func (s *Set) Remove(kid string) bool {
	n := len(s.keys)
	s.keys = slices.DeleteFunc(s.keys, func(k *Key) bool { return k.ID == kid })
	return len(s.keys) != n
}

// Active returns the key that signs at now, or nil when no key has activated.
func (s *Set) Active(now time.Time) *Key {
	for i := len(s.keys) - 1; i >= 0; i-- {
		if !s.keys[i].Activates.After(now) {
			return s.keys[i]
		}
	}
	return nil
}

// Lifecycle tells where k stands at now under p. k must belong to s.
func (s *Set) Lifecycle(k *Key, now time.Time, p Policy) Lifecycle {
	lc := Lifecycle{Activates: k.Activates}
	i := slices.Index(s.keys, k)
	if i >= 0 && i+1 < len(s.keys) {
		lc.Retires = s.keys[i+1].Activates
		lc.Expires = lc.Retires.Add(p.MaxTokenLifetime + p.Leeway)
	}
	switch {
	case k.Activates.After(now):
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

// Prune removes the keys that are expired at now and returns their ids.
func (s *Set) Prune(now time.Time, p Policy) []string {
	var gone []string
	for _, k := range s.keys {
		if s.Lifecycle(k, now, p).State == Expired {
			gone = append(gone, k.ID)
		}
	}
	for _, kid := range gone {
		s.Remove(kid)
	}
	return gone
}

func compareKeys(a, b *Key) int {
	if c := a.Activates.Compare(b.Activates); c != 0 {
		return c
	}
	if c := a.Created.Compare(b.Created); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
