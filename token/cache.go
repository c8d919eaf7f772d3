package token

import (
	"crypto"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultCacheSize is how many verified tokens a [Verifier] remembers
// unless [WithCache] says otherwise.
const DefaultCacheSize = 16384

// cache remembers tokens whose signature verified, keyed by the exact token
// string, so that verifying one again skips the signature and the parsing.
// What it skips can never change for the same bytes under the same key; what
// can change is checked on every hit (see Verifier.recheck): the clock
// against exp and iat, and whether the key is still published. Revocation
// is never cached.
//
// Only authentic tokens get in, so forged traffic cannot fill it. When a
// shard is full, an arbitrary entry makes room (Go's map iteration order is
// random): cheap, and good enough for a working set that is either far
// smaller than the cache or far larger.
type cache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

const cacheShards = 16

type cacheShard struct {
	mu      sync.RWMutex
	entries map[string]cached
	max     int
	_       [40]byte // keeps shards on separate cache lines
}

// cached is what a verification established about a token.
type cached struct {
	claims Claims
	alg    string
	key    crypto.PublicKey
}

func newCache(size int) *cache {
	if size <= 0 {
		return nil
	}
	c := &cache{seed: maphash.MakeSeed()}
	per := max(1, size/cacheShards)
	for i := range c.shards {
		c.shards[i] = cacheShard{entries: make(map[string]cached), max: per}
	}
	return c
}

func (c *cache) shard(tok string) *cacheShard {
	return &c.shards[maphash.String(c.seed, tok)%cacheShards]
}

func (c *cache) get(tok string) (cached, bool) {
	s := c.shard(tok)
	s.mu.RLock()
	e, ok := s.entries[tok]
	s.mu.RUnlock()
	return e, ok
}

func (c *cache) put(tok string, e cached) {
	s := c.shard(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) >= s.max {
		for k := range s.entries {
			delete(s.entries, k)
			break
		}
	}
	s.entries[tok] = e
}

func (c *cache) delete(tok string) {
	s := c.shard(tok)
	s.mu.Lock()
	delete(s.entries, tok)
	s.mu.Unlock()
}

// publicKeyEqual reports whether a and b are the same public key. All the
// key types of the standard library have an Equal method.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// stillValid re-checks what can change for a token that verified before:
// the clock against exp and iat (leeway included), and whether its key is
// still published under the same id. Removing a key thus takes effect at
// once, cache or no cache.
func (v *Verifier) stillValid(e cached, now time.Time, alg string, key crypto.PublicKey) error {
	switch {
	case !now.Before(e.claims.Expires.Add(v.leeway)):
		return ErrExpired
	case e.claims.IssuedAt.After(now.Add(v.leeway)):
		return ErrNotYetValid
	case alg != e.alg || !publicKeyEqual(e.key, key):
		return ErrUnknownKey
	}
	return nil
}
