package valkey

// This file is the node's memory of the answers it read, in front of
// rueidis's client-side cache: a map lookup instead of two DoCache calls
// (the record's and the epoch's, each a command built, a lock and an LRU
// step) on every verify.

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// knownShards is how many locks the memory is split under.
const knownShards = 16

// known is what this node read from the store and answers again without
// rueidis: whether an id is revoked, and a subject's cutoff. An answer
// goes in only after its record and the epoch were read through the
// client-side cache (so the connection tracks both) with no invalidation
// in between, and leaves with the invalidation that rueidis's cache gets:
// invalidate is the connection's OnInvalidations, called by its reader
// before it hands over any later reply. The invalidation of the epoch, a
// flush, and a lost connection (rueidis then calls it with nil) forget
// everything, so that an answer from memory always comes with an epoch
// that was current when it was read; so does a timer, every cacheTTL.
type known struct {
	// gen counts invalidations. remember* store only if it has not moved
	// since the caller began its read: an invalidation that arrived in
	// between may be for the answer being stored.
	gen         atomic.Uint64
	perShard    int // entries of each kind at most; beyond, answers are not kept
	record, cut string
	epoch       string
	shards      [knownShards]knownShard
}

type knownShard struct {
	mu   sync.RWMutex
	ids  map[uuid.UUID]bool // revoked or not
	cuts map[[sha256.Size]byte]knownCut
	_    [64]byte // one cache line each
}

// knownCut is a subject's cutoff as read: none (ok false), or at and the
// record's expiry, Unix seconds.
type knownCut struct {
	at, exp int64
	ok      bool
}

func newKnown(k keys, entries int) *known {
	m := &known{perShard: max(1, entries/knownShards), record: k.record, cut: k.cut, epoch: k.epoch}
	for i := range m.shards {
		m.shards[i].ids = map[uuid.UUID]bool{}
		m.shards[i].cuts = map[[sha256.Size]byte]knownCut{}
	}
	return m
}

func (m *known) revoked(id uuid.UUID) (revoked, ok bool) {
	sh := &m.shards[id[0]%knownShards]
	sh.mu.RLock()
	revoked, ok = sh.ids[id]
	sh.mu.RUnlock()
	return revoked, ok
}

// rememberRevoked keeps id's answer, read since gen was since.
func (m *known) rememberRevoked(since uint64, id uuid.UUID, revoked bool) {
	sh := &m.shards[id[0]%knownShards]
	sh.mu.Lock()
	if m.gen.Load() == since && len(sh.ids) < m.perShard {
		sh.ids[id] = revoked
	}
	sh.mu.Unlock()
}

func (m *known) cutoff(h [sha256.Size]byte) (c knownCut, ok bool) {
	sh := &m.shards[h[0]%knownShards]
	sh.mu.RLock()
	c, ok = sh.cuts[h]
	sh.mu.RUnlock()
	return c, ok
}

// rememberCutoff keeps the cutoff of the subject hashed h, read since gen
// was since.
func (m *known) rememberCutoff(since uint64, h [sha256.Size]byte, c knownCut) {
	sh := &m.shards[h[0]%knownShards]
	sh.mu.Lock()
	if m.gen.Load() == since && len(sh.cuts) < m.perShard {
		sh.cuts[h] = c
	}
	sh.mu.Unlock()
}

// invalidate is rueidis's OnInvalidations: keys nil means every key (a
// flush, or the connection was lost).
func (m *known) invalidate(keys []rueidis.RedisMessage) {
	if keys == nil {
		m.forgetAll()
		return
	}
	for _, k := range keys {
		key, err := k.ToString()
		if err != nil || !m.forget(key) {
			m.forgetAll()
			return
		}
	}
}

// forget drops the answer read from key, if any, and reports whether it
// knew what key is: false for the epoch (everything must go), and for a
// record or cutoff key it cannot parse.
func (m *known) forget(key string) bool {
	m.gen.Add(1)
	if rest, ok := strings.CutPrefix(key, m.record); ok {
		id, err := uuid.Parse(rest)
		if err != nil {
			return false
		}
		sh := &m.shards[id[0]%knownShards]
		sh.mu.Lock()
		delete(sh.ids, id)
		sh.mu.Unlock()
		return true
	}
	if rest, ok := strings.CutPrefix(key, m.cut); ok {
		var h [sha256.Size]byte
		if len(rest) != hex.EncodedLen(len(h)) {
			return false
		}
		if _, err := hex.Decode(h[:], []byte(rest)); err != nil {
			return false
		}
		sh := &m.shards[h[0]%knownShards]
		sh.mu.Lock()
		delete(sh.cuts, h)
		sh.mu.Unlock()
		return true
	}
	// The other keys of the store are never read through the cache, so
	// never tracked; but the epoch is, and its change voids everything.
	return key != m.epoch
}

// forgetAll drops every answer.
func (m *known) forgetAll() {
	m.gen.Add(1)
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		clear(sh.ids)
		clear(sh.cuts)
		sh.mu.Unlock()
	}
}
