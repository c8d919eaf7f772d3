package session

// This file rations the signature checks that fail: each caller gets a
// budget of failed checks per second, and past it its verifications of
// tokens not seen before are refused without a check.

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/rpc"
)

// CodeTooManyInvalid is the JSON-RPC error code of errTooManyInvalid.
const CodeTooManyInvalid = -32005

// errTooManyInvalid answers a verification refused because its caller
// spent its budget of failed signature checks.
var errTooManyInvalid = &rpc.Error{Code: CodeTooManyInvalid, Message: "too many invalid tokens, retry later"}

// DefaultInvalidTokenBudget is the budget the server gives each caller
// unless told otherwise: the failed signature checks it may cause per
// second (and at once). Without WithInvalidTokenBudget there is none.
const DefaultInvalidTokenBudget = 100

// WithInvalidTokenBudget gives every caller a budget of perSecond failed
// signature checks per second, perSecond of them at once: a verification
// or introspection whose token fails its signature check costs its caller
// one, and a caller with none left gets error -32005 "too many invalid
// tokens, retry later" for every token the verifier has not seen before,
// without a signature check, until its budget refills. Tokens seen before
// cost no check and are always answered, so a caller flooding forged
// tokens cannot take the cores from others, nor from its own valid
// sessions. caller names the caller of a request from its context (a
// client's name, else its remote address); requests it names "" share one
// budget, as do all when caller is nil. refused, unless nil, is told of
// each refusal (with the call's context), so that the server can make the
// refused caller wait for its answer (see server's tarpit). perSecond 0 or
// less, the default, means no budget.
func WithInvalidTokenBudget(perSecond int, caller func(ctx context.Context) string, refused func(ctx context.Context)) Option {
	return func(s *settings) { s.budget, s.caller, s.refused = perSecond, caller, refused }
}

// budget is a token bucket per caller: capacity tokens, refilled at rate
// per second; a failed signature check takes one. Only callers whose bucket
// is not full have an entry, so the table holds the callers that failed
// lately; when a shard is full, entries that refilled are dropped (at most
// once a second), and if none did, every caller without an entry of that shard shares its
// overflow bucket rather than getting a fresh one, so that a flood from
// many addresses buys no more than one budget per shard.
type budget struct {
	rate   float64 // tokens per second
	now    func() time.Time
	seed   maphash.Seed
	shards [budgetShards]budgetShard
}

const (
	budgetShards   = 16
	budgetPerShard = 4096
)

type budgetShard struct {
	mu       sync.Mutex
	size     atomic.Int64 // len(buckets), read without mu
	buckets  map[string]*bucket
	overflow bucket    // of the callers without an entry while the shard is full
	swept    time.Time // when a full shard last dropped its refilled entries
	_        [48]byte  // keeps shards on separate cache lines (128 bytes each)
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newBudget(perSecond int, now func() time.Time) *budget {
	if perSecond <= 0 {
		return nil
	}
	b := &budget{rate: float64(perSecond), now: now, seed: maphash.MakeSeed()}
	for i := range b.shards {
		b.shards[i].buckets = map[string]*bucket{}
		b.shards[i].overflow.tokens = b.rate
	}
	return b
}

func (b *budget) shard(caller string) *budgetShard {
	return &b.shards[maphash.String(b.seed, caller)%budgetShards]
}

// refill brings k up to date at now and reports whether it is full.
func (b *budget) refill(k *bucket, now time.Time) bool {
	if d := now.Sub(k.at).Seconds(); d > 0 {
		k.tokens = min(b.rate, k.tokens+d*b.rate)
	}
	k.at = now
	return k.tokens >= b.rate
}

// allows reports whether caller has a failed check left to spend. While no
// caller of its shard failed lately, it takes no lock.
func (b *budget) allows(caller string) bool {
	s := b.shard(caller)
	if s.size.Load() == 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.lookup(caller)
	if k == nil {
		return true
	}
	if b.refill(k, b.now()) && k != &s.overflow {
		delete(s.buckets, caller) // full again: as good as none
		s.size.Store(int64(len(s.buckets)))
	}
	return k.tokens >= 1
}

// lookup returns caller's bucket: its entry, else the overflow bucket while
// the shard is full, else nil (a full budget).
func (s *budgetShard) lookup(caller string) *bucket {
	if k := s.buckets[caller]; k != nil {
		return k
	}
	if len(s.buckets) >= budgetPerShard {
		return &s.overflow
	}
	return nil
}

// charge takes one failed check from caller's budget.
func (b *budget) charge(caller string) {
	now := b.now()
	s := b.shard(caller)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[caller] == nil && len(s.buckets) >= budgetPerShard && now.Sub(s.swept) >= time.Second {
		s.swept = now // at most once a second: a sweep reads every entry
		for name, other := range s.buckets {
			if b.refill(other, now) {
				delete(s.buckets, name)
			}
		}
		s.size.Store(int64(len(s.buckets)))
	}
	k := s.lookup(caller)
	if k == nil {
		k = &bucket{tokens: b.rate, at: now}
		s.buckets[caller] = k
		s.size.Store(int64(len(s.buckets)))
	}
	b.refill(k, now)
	k.tokens = max(0, k.tokens-1)
}
