package revocation

// This file keeps per-subject cutoffs: the Cutoffs interface, CutOff (which
// queues its write for the group-commit writer in write.go), Cutoff (which
// answers from the map in memory), the stored form of a cutoff record and
// that map.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// Cutoffs is implemented by stores that keep per-subject cutoffs: "every
// session of this subject issued at or before this second is closed".
// [Badger] implements it.
type Cutoffs interface {
	// CutOff records that every token of subject whose iat is at or before
	// the whole second of at (at.Unix()) is closed, keeping the record until
	// the instant until. It returns nil only once the record is durable
	// (fsynced and counted in the seal, like Revoke). A cutoff never moves
	// back: an earlier at than the stored one keeps the stored one (until is
	// extended to the later of the two). ErrDiskFull like Revoke.
	CutOff(ctx context.Context, subject string, at, until time.Time) error
	// Cutoff returns the subject's cutoff second and whether it has one (an
	// expired record is none). It answers from memory (no disk read): it is
	// on the verify hot path. An error means unknown (fail closed).
	Cutoff(ctx context.Context, subject string) (at time.Time, ok bool, err error)
}

var _ Cutoffs = (*Badger)(nil)

// cutPrefix starts the key of every cutoff record; the rest of the key is
// the SHA-256 of the subject, so that subjects (which may be e-mail
// addresses) are never stored in clear. Keys of 37 bytes can never collide
// with an entry's (16 bytes) or the store's own records ("\x00meta/...").
const cutPrefix = "\x01cut/"

// cutKeyLen is the length of a cutoff record's key.
const cutKeyLen = len(cutPrefix) + sha256.Size

// unknownCutoff is what Cutoff answers with its errors: a cutoff after
// every token's iat, so that a caller that ignores the error still fails
// closed.
var unknownCutoff = time.Unix(math.MaxInt64/2, 0)

// subjectHash is how a subject is named in the store and its map.
type subjectHash = [sha256.Size]byte

// CutOff implements [Cutoffs]. The record lasts until until, rounded up to
// a whole second, plus one second (the margin Revoke adds, for the same
// reason): until is not extended by the retention, the caller's until
// already covers the verifiers' leeway; a larger retention at a later open
// extends it by the difference, like every entry. The write goes through
// the same group commit as Revoke, with a sequence number of its own, and
// keeps the later cutoff and the later expiry of the stored record and this
// one. If until is already past at Options.Now, CutOff writes nothing and
// returns nil. It refuses an empty subject and an at before 1970. An error,
// including the context's, means the record may or may not have been
// written; calling CutOff again is safe. It is [Badger.CutOffHash] of the
// subject's hash, with until plus the second.
func (b *Badger) CutOff(ctx context.Context, subject string, at, until time.Time) error {
	if subject == "" {
		return fmt.Errorf("cut off sessions: empty subject: give the subject (sub) whose sessions to close")
	}
	if !until.After(b.now()) {
		return nil
	}
	return b.CutOffHash(ctx, hashSubject(subject), at, until.Add(time.Second))
}

// CutOffHash is CutOff for a subject known only by its SHA-256, as
// [Changes] (the feed) and `sessiond revocations export` give it, so that
// a list's cutoffs can be moved into another store. Its contract is
// CutOff's (durable before nil, the cutoff never moves back, the later
// expiry kept; nothing written when until is past; an at before 1970
// refused), except that the record lasts until exactly until, rounded up
// to a whole second, with no second added: until is the record's expiry,
// as [Cutoff.Until] gives it, and importing a record gives it back
// unchanged.
func (b *Badger) CutOffHash(ctx context.Context, hash [sha256.Size]byte, at, until time.Time) error {
	if at.Unix() < 0 {
		return fmt.Errorf("cut off sessions: cutoff %s is before 1970: give the current time", at.UTC().Format(time.RFC3339))
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return fmt.Errorf("cut off sessions: %w", ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cut off sessions: %w", err)
	}
	if !until.After(b.now()) {
		return nil
	}
	exp := expiresAt(until)
	if exp == 0 {
		return nil // before 1970-01-01T00:00:01Z: see Revoke
	}

	req := &revokeRequest{cut: true, subject: hash, at: uint64(at.Unix()), expiresAt: exp, done: make(chan error, 1)}
	select {
	case b.writes <- req:
	case <-ctx.Done():
		return fmt.Errorf("cut off sessions: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("cut off sessions: %w", err)
		}
		return nil
	case <-ctx.Done():
		// The request may still be committed; that is harmless.
		return fmt.Errorf("cut off sessions: %w", ctx.Err())
	}
}

// Cutoff implements [Cutoffs]: a hash of the subject and a lookup in a map,
// no disk read and no allocation. A record is none from its expiry on by
// Options.Now, as Badger's rule has it for the record on disk. On error the
// answer is unknown; it then also returns ok true and a cutoff far in the
// future, so that even a caller that ignores the error fails closed.
func (b *Badger) Cutoff(ctx context.Context, subject string) (time.Time, bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return unknownCutoff, true, fmt.Errorf("cutoff: %w", ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return unknownCutoff, true, fmt.Errorf("cutoff: %w", err)
	}
	c, ok := b.cuts.get(hashSubject(subject))
	if !ok || c.expires <= unixNow(b.now()) {
		return time.Time{}, false, nil
	}
	return time.Unix(int64(c.at), 0), true, nil
}

// hashSubject returns the hash that names subject in the store. A subject
// of up to 256 bytes (an e-mail address has at most 254) is copied to the
// stack for hashing: []byte(subject) would allocate beyond 32 bytes.
func hashSubject(subject string) subjectHash {
	var buf [256]byte
	if len(subject) <= len(buf) {
		return sha256.Sum256(append(buf[:0], subject...))
	}
	return sha256.Sum256([]byte(subject))
}

// unixNow is now in Badger's whole Unix seconds; 0 before 1970.
func unixNow(now time.Time) uint64 {
	return uint64(max(now.Unix(), 0))
}

// cutKey is the key of the cutoff record of the subject with hash h.
func cutKey(h subjectHash) []byte {
	k := make([]byte, 0, cutKeyLen)
	k = append(k, cutPrefix...)
	return append(k, h[:]...)
}

// cutHash returns the subject hash of a cutoff record's key, and whether
// key is one.
func cutHash(key []byte) (subjectHash, bool) {
	var h subjectHash
	if len(key) != cutKeyLen || string(key[:len(cutPrefix)]) != cutPrefix {
		return h, false
	}
	copy(h[:], key[len(cutPrefix):])
	return h, true
}

// decodeCutoff reads a cutoff record's value: the cutoff second and the
// sequence number of its write, 8 bytes big-endian each (the layout of
// encodeValue, with the cutoff in place of the expiry, which Badger keeps
// as the record's ExpiresAt).
func decodeCutoff(v []byte) (at, seq uint64, err error) {
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("cutoff record of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

// cutoff is a subject's record in memory.
type cutoff struct {
	at      uint64 // the cutoff, Unix seconds
	expires uint64 // Unix seconds, as Badger's ExpiresAt
	seq     uint64 // of the write that stored it, for Changes
}

// cutMap is the map Cutoff answers from: every unexpired cutoff record on
// disk, loaded by the scan at open and updated by the writer after each
// commit, which is its only writer; Reclaim drops expired records.
type cutMap struct {
	mu sync.RWMutex
	m  map[subjectHash]cutoff
}

func (c *cutMap) get(h subjectHash) (cutoff, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[h]
	return v, ok
}

// replace makes m the map (scan).
func (c *cutMap) replace(m map[subjectHash]cutoff) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = m
}

// set records committed writes.
func (c *cutMap) set(written map[subjectHash]cutoff) {
	if len(written) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[subjectHash]cutoff, len(written))
	}
	maps.Copy(c.m, written)
}

// all returns a copy of the map, for applyRetention.
func (c *cutMap) all() map[subjectHash]cutoff {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return maps.Clone(c.m)
}

// changes returns the records with a sequence number after since that
// have not expired at now, in ascending order of subject hash, and how many
// records there are in all (expired ones included).
func (c *cutMap) changes(since, now uint64) []Cutoff {
	c.mu.RLock()
	out := make([]Cutoff, 0, len(c.m))
	for h, v := range c.m {
		if v.seq > since && v.expires > now {
			out = append(out, Cutoff{Subject: h, At: time.Unix(int64(v.at), 0), Until: time.Unix(int64(v.expires), 0), Seq: v.seq})
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Cutoff) int { return bytes.Compare(a.Subject[:], b.Subject[:]) })
	return out
}

// len returns the number of records in the map.
func (c *cutMap) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// compact drops the records that expired at or before now and returns how
// many it dropped.
func (c *cutMap) compact(now uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for h, v := range c.m {
		if v.expires <= now {
			delete(c.m, h)
			n++
		}
	}
	return n
}
