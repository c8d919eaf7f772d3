package token

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
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
// can change is checked on every hit (see Verifier.stillValid): the clock
// against exp and iat, and whether the key is still published. Revocation
// is never cached.
//
// Only authentic tokens get in, so forged traffic cannot fill it. When a
// shard is full, an arbitrary entry makes room (Go's map iteration order is
// random): cheap, and good enough for a working set that is either far
// smaller than the cache or far larger.
//
// A token is hashed once (its end: see hashedTail): the hash picks the
// shard and is the key in the shard's map; the entry holds the token, which
// a hit must equal. Two tokens with the same hash share a slot, and the one
// put last keeps it.
type cache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

const cacheShards = 16

type cacheShard struct {
	mu      sync.RWMutex
	entries map[uint64]*cached
	max     int
	_       [40]byte // keeps shards on separate cache lines
}

// cached is what a verification established about a token. It is never
// changed once in the cache.
type cached struct {
	tok    string
	claims Claims
	alg    string
	key    crypto.PublicKey
	// expired is exp + leeway, from when the token is expired;
	// issued is iat - leeway, before which it is not valid yet.
	expired, issued time.Time
}

func newCache(size int) *cache {
	if size <= 0 {
		return nil
	}
	c := &cache{seed: maphash.MakeSeed()}
	per := max(1, size/cacheShards)
	for i := range c.shards {
		c.shards[i] = cacheShard{entries: make(map[uint64]*cached), max: per}
	}
	return c
}

// hashedTail is how much of the end of a token the cache hashes: the last
// 32 characters of the signature, 192 bits that differ for every token the
// keys ever signed. A hash only picks a slot; a hit must equal the whole
// token, so input that ends like a cached token only misses. Hashing the
// whole token (300 bytes and more) was a quarter of a cached verification.
const hashedTail = 32

func (c *cache) shard(tok string) (*cacheShard, uint64) {
	h := maphash.String(c.seed, tok[max(0, len(tok)-hashedTail):])
	return &c.shards[h%cacheShards], h
}

func (c *cache) get(tok string) (*cached, bool) {
	s, h := c.shard(tok)
	s.mu.RLock()
	e, ok := s.entries[h]
	s.mu.RUnlock()
	if !ok || e.tok != tok {
		return nil, false
	}
	return e, true
}

func (c *cache) put(e *cached) {
	s, h := c.shard(e.tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[h]; !ok && len(s.entries) >= s.max {
		for k := range s.entries {
			delete(s.entries, k)
			break
		}
	}
	s.entries[h] = e
}

// delete forgets tok, if it is the token in its slot.
func (c *cache) delete(tok string) {
	s, h := c.shard(tok)
	s.mu.Lock()
	if e, ok := s.entries[h]; ok && e.tok == tok {
		delete(s.entries, h)
	}
	s.mu.Unlock()
}

// publicKeyEqual reports whether a and b are the same public key. Public
// keys are not secret, so an Ed25519 key is compared with bytes.Equal
// rather than its Equal method's constant-time compare, which cost a tenth
// of a cached verification. All the key types of the standard library have
// an Equal method.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	if a, ok := a.(ed25519.PublicKey); ok {
		b, ok := b.(ed25519.PublicKey)
		return ok && len(a) == ed25519.PublicKeySize && bytes.Equal(a, b)
	}
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// stillValid re-checks what can change for a token that verified before:
// the clock against exp and iat (leeway included), and whether its key is
// still published under the same id. Removing a key thus takes effect at
// once, cache or no cache.
func (v *Verifier) stillValid(e *cached, now time.Time, alg string, key crypto.PublicKey) error {
	switch {
	case !now.Before(e.expired):
		return ErrExpired
	case now.Before(e.issued):
		return ErrNotYetValid
	case alg != e.alg || !publicKeyEqual(e.key, key):
		return ErrUnknownKey
	}
	return nil
}
