// This file holds the Set: the ordered collection of keys that the key file
// stores, with its look-ups. The lifecycle rules that change a Set are in
// lifecycle.go.

package keys

import (
	"slices"
	"strings"
)

// A Set is an ordered collection of keys. It is not safe for concurrent
// mutation; a [Keyring] shares sets between goroutines only after they are
// complete and never changes them again. Keys enter a set through [Set.Add]
// (as made, for instance by [Generate]), [Set.First] or [Set.Rotate], and
// leave it through [Set.Remove] or [Set.Prune], which refuse to break the
// lifecycle.
type Set struct {
	keys []*Key // by activates, then created, then ID
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

// Add puts k in the set, in activation order, with the times it has. It
// reports false, and changes nothing, when a key with the same id is there
// already.
func (s *Set) Add(k *Key) bool {
	if s.Lookup(k.ID) != nil {
		return false
	}
	i, _ := slices.BinarySearchFunc(s.keys, k, compareKeys)
	s.keys = slices.Insert(s.keys, i, k)
	return true
}

// remove deletes the key with id kid, whatever its state, and reports
// whether it was there.
func (s *Set) remove(kid string) bool {
	n := len(s.keys)
	s.keys = slices.DeleteFunc(s.keys, func(k *Key) bool { return k.ID == kid })
	return len(s.keys) != n
}

func compareKeys(a, b *Key) int {
	if c := a.activates.Compare(b.activates); c != 0 {
		return c
	}
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
