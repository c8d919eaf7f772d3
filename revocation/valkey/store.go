package valkey

// This file is the list itself: Revoke and CutOff/CutOffHash (one script each, then
// the durability wait), IsRevoked and Cutoff (client-side cached reads),
// Changes and Head (one atomic script), and the package's errors.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/sessiond/sessiond/revocation"
)

// Errors returned by this package, possibly wrapped; test with
// [errors.Is]. After [Store.Close] every method returns an error wrapping
// [revocation.ErrClosed].
var (
	// ErrNotDurable is returned by Revoke and CutOff when the server ran
	// the write but did not confirm its durability in time: WAITAOF
	// reported no local fsync or fewer replicas than Options.Replicas, or
	// WAIT fewer replicas. The record may or may not survive a crash; the
	// caller must not report the session as closed (it may retry).
	ErrNotDurable = errors.New("revocation store write is not known to be durable")

	// ErrReplaced is returned by every method when the store no longer
	// holds the list this Store opened: its epoch is gone (the server lost
	// its data, or it was flushed) or is another one. Reads fail closed;
	// restore the server's data, or restart the nodes to begin a new list.
	ErrReplaced = errors.New("revocation store lost or replaced the revocation list")
)

// unknownCutoff is what Cutoff answers with its errors: a cutoff after
// every token's iat, so that a caller that ignores the error still fails
// closed (as revocation.Badger does).
var unknownCutoff = time.Unix(math.MaxInt64/2, 0)

// trimPerWrite is how many expired members every 16th write (by sequence
// number) drops from its index: 16 a write on average, at one TIME and one
// ZRANGEBYSCORE per 16 writes instead of per write (a sixth of the
// script's cost on the server: 31 µs a write with them, 25 without).
const trimPerWrite = "256"

// Revoke implements [revocation.Store] with Badger's contract: it records
// id as revoked until expires plus the store's retention plus one second,
// rounded up to a whole second (the instant Badger's TTL would use), as a
// key with PXAT; a stored record with a later expiry is kept. It returns
// nil only after the write is in the server's AOF (WAITAOF 1, and on
// Options.Replicas replicas), or on a server without WAITAOF, after the
// server answered (and WAIT for the replicas); see docs/valkey.md. If the
// record would already be past at Options.Now it writes nothing and
// returns nil. An error means the record may or may not have been written;
// calling Revoke again is safe. Revocations that arrive while a write is
// on its way are written together after it, in one script and one WAITAOF
// (batch.go).
func (s *Store) Revoke(ctx context.Context, id uuid.UUID, expires time.Time) error {
	if s.closed.Load() {
		return errClosed("revoke " + id.String())
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	for range 3 {
		r := s.retention.Load()
		until := expires.Add(time.Duration(r))
		if !until.After(s.now()) {
			return nil
		}
		// One second more than the retention, as revocation.Badger: see
		// its Revoke.
		exp := expiresAt(until.Add(time.Second))
		if exp == 0 {
			return nil // before 1970-01-01T00:00:01Z: PXAT 0 is no expiry
		}
		retry, err := s.submit(ctx, &revokeReq{id: id, retention: r, exp: exp})
		if err != nil {
			return fmt.Errorf("revoke %s: %w", id, err)
		}
		if !retry {
			return nil
		}
	}
	return fmt.Errorf("revoke %s: the store's retention kept growing: retry", id)
}

// store runs a write script and reads its answer; retry reports that the
// store's retention was larger than ours (now raised).
func (s *Store) store(ctx context.Context, sc script, keys, args []string) (retry bool, err error) {
	res, err := s.write(ctx, sc, keys, args).ToArray()
	if err != nil {
		return false, s.wrap(err)
	}
	if len(res) != 2 {
		return false, fmt.Errorf("unexpected answer of %d values from the store's script", len(res))
	}
	status, _ := res[0].ToString()
	switch status {
	case "OK", "KEPT":
		return false, nil
	case "RETAIN":
		v, _ := res[1].ToString()
		return true, s.raiseRetention(v)
	}
	return false, fmt.Errorf("unexpected answer %q from the store's script", status)
}

// raiseRetention raises this node's retention to v, the store's (in ns, as
// a script answered it with RETAIN), and warns.
func (s *Store) raiseRetention(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("stored retention %q: %w", v, err)
	}
	for {
		old := s.retention.Load()
		if n <= old || s.retention.CompareAndSwap(old, n) {
			break
		}
	}
	// A node's retention is its leeway: this node now verifies with a
	// smaller leeway than another (see "One leeway across nodes" in
	// docs/valkey.md); it keeps running, for a rolling raise.
	s.log.Warn("revocation store retention raised by another node: restart this node with the same --leeway as the others", "to", time.Duration(n))
	return nil
}

// wrap turns a script's or the server's error into this package's: the
// epoch check into ErrReplaced; the password is never in the text.
func (s *Store) wrap(err error) error {
	var re *rueidis.RedisError
	if errors.As(err, &re) && strings.Contains(re.Error(), "SESSIOND_EPOCH") {
		return fmt.Errorf("%w: the store at %s has not the epoch %s this node opened: restore its data, or restart every node to begin a new list", ErrReplaced, s.url, s.epoch)
	}
	if errors.Is(err, ErrNotDurable) {
		return err // made by checkWait: no server text in it
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("revocation store %s: %s", s.url, s.redact(err))
}

// CutOff implements [revocation.Cutoffs] with Badger's contract: every
// token of subject issued at or before at.Unix() is closed, until until
// rounded up to a whole second plus one second (not extended by the
// retention; a larger retention at a later Open extends it). The stored
// cutoff never moves back and its expiry never shortens. Durability, errors
// and the past case as Revoke. It refuses an empty subject and an at before
// 1970. It is [Store.CutOffHash] of the subject's hash, with until plus the
// second.
func (s *Store) CutOff(ctx context.Context, subject string, at, until time.Time) error {
	if subject == "" {
		return fmt.Errorf("cut off sessions: empty subject: give the subject (sub) whose sessions to close")
	}
	if !until.After(s.now()) {
		return nil
	}
	return s.CutOffHash(ctx, sha256.Sum256([]byte(subject)), at, until.Add(time.Second))
}

// CutOffHash is CutOff for a subject known only by its SHA-256, as
// Changes (the feed) and `sessiond revocations export` give it, with
// revocation.Badger's CutOffHash contract: CutOff's, except that the
// record expires at exactly until, rounded up to a whole second, with no
// second added (until is the record's expiry as [revocation.Cutoff.Until]
// gives it, so importing a record gives it back unchanged).
func (s *Store) CutOffHash(ctx context.Context, hash [sha256.Size]byte, at, until time.Time) error {
	if at.Unix() < 0 {
		return fmt.Errorf("cut off sessions: cutoff %s is before 1970: give the current time", at.UTC().Format(time.RFC3339))
	}
	if s.closed.Load() {
		return errClosed("cut off sessions")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cut off sessions: %w", err)
	}
	if !until.After(s.now()) {
		return nil
	}
	exp := expiresAt(until)
	if exp == 0 {
		return nil
	}
	hx := hex.EncodeToString(hash[:])
	_, err := s.store(ctx, cutScript,
		[]string{s.keys.cut + hx, s.keys.seq, s.keys.cseq, s.keys.cexp, s.keys.epoch},
		[]string{s.epoch, strconv.FormatInt(at.Unix(), 10), strconv.FormatUint(exp, 10), hx, trimPerWrite})
	if err != nil {
		return fmt.Errorf("cut off sessions: %w", err)
	}
	return nil
}

// expiresAt returns until in whole Unix seconds, rounded up; 0 before
// 1970-01-01T00:00:01Z (revocation.Badger's rule).
func expiresAt(until time.Time) uint64 {
	sec := until.Unix()
	if until.Nanosecond() > 0 {
		sec++
	}
	if sec <= 0 {
		return 0
	}
	return uint64(sec)
}

// IsRevoked implements [revocation.Store]. An id read before answers from
// this node's memory (known), with no round trip, until Valkey invalidates
// its record (any client wrote it, or it expired), or the epoch, or the
// connection is lost, which forgets everything; an absent record is
// remembered too. A read that is not remembered goes through the
// client-side cache and then also reads the epoch (cached the same way),
// so that a server that lost its data (or was flushed) is an error, not
// "never revoked". On error the answer is unknown and it returns true, so
// that even a caller that ignores the error fails closed.
func (s *Store) IsRevoked(ctx context.Context, id uuid.UUID) (bool, error) {
	if s.closed.Load() {
		return true, errClosed("is revoked " + id.String())
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("is revoked %s: %w", id, err)
	}
	if revoked, ok := s.known.revoked(id); ok {
		return revoked, nil
	}
	since := s.known.gen.Load()
	// The record first, then the epoch: a flush between the two is caught
	// by the second.
	err := s.client.DoCache(ctx, s.client.B().Get().Key(s.recordKey(id)).Cache(), cacheTTL).Error()
	revoked := err == nil
	if err != nil && !rueidis.IsRedisNil(err) {
		return true, fmt.Errorf("is revoked %s: %w", id, s.wrap(err))
	}
	if err := s.checkEpoch(ctx); err != nil {
		return true, fmt.Errorf("is revoked %s: %w", id, err)
	}
	s.known.rememberRevoked(since, id, revoked)
	return revoked, nil
}

// recordKey is the key of id's record, made with one allocation (the
// string, which rueidis keeps as the cache's key).
func (s *Store) recordKey(id uuid.UUID) string {
	const hexd = "0123456789abcdef"
	var buf [128]byte
	k := append(buf[:0], s.keys.record...)
	for i, b := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			k = append(k, '-')
		}
		k = append(k, hexd[b>>4], hexd[b&0xf])
	}
	return string(k)
}

// checkEpoch reads the epoch through the cache and compares it with the
// one this Store opened.
func (s *Store) checkEpoch(ctx context.Context) error {
	got, err := s.client.DoCache(ctx, s.client.B().Get().Key(s.keys.epoch).Cache(), cacheTTL).ToString()
	switch {
	case rueidis.IsRedisNil(err):
		return fmt.Errorf("%w: the store at %s has no epoch (it lost its data, or was flushed): restore its data, or restart every node to begin a new list", ErrReplaced, s.url)
	case err != nil:
		return s.wrap(err)
	case got != s.epoch:
		return fmt.Errorf("%w: the store at %s holds the list %s, not %s: restart every node to follow it", ErrReplaced, s.url, got, s.epoch)
	}
	return nil
}

// Cutoff implements [revocation.Cutoffs]: a remembered or cached read, as
// IsRevoked. A record is none from its expiry on by Options.Now. On error
// it returns ok true and a cutoff far in the future, so that even a caller
// that ignores the error fails closed.
func (s *Store) Cutoff(ctx context.Context, subject string) (time.Time, bool, error) {
	if s.closed.Load() {
		return unknownCutoff, true, errClosed("cutoff")
	}
	if err := ctx.Err(); err != nil {
		return unknownCutoff, true, fmt.Errorf("cutoff: %w", err)
	}
	h := hashSubject(subject)
	c, ok := s.known.cutoff(h)
	if !ok {
		var err error
		if c, err = s.readCutoff(ctx, h); err != nil {
			return unknownCutoff, true, fmt.Errorf("cutoff: %w", err)
		}
	}
	if !c.ok || c.exp <= s.now().Unix() {
		return time.Time{}, false, nil
	}
	return time.Unix(c.at, 0), true, nil
}

// readCutoff reads the cutoff of the subject hashed h through the
// client-side cache, then the epoch, and remembers it.
func (s *Store) readCutoff(ctx context.Context, h [sha256.Size]byte) (knownCut, error) {
	since := s.known.gen.Load()
	var hx [64]byte
	hex.Encode(hx[:], h[:])
	v, err := s.client.DoCache(ctx, s.client.B().Get().Key(s.keys.cut+string(hx[:])).Cache(), cacheTTL).ToString()
	absent := rueidis.IsRedisNil(err)
	if err != nil && !absent {
		return knownCut{}, s.wrap(err)
	}
	if err := s.checkEpoch(ctx); err != nil {
		return knownCut{}, err
	}
	var c knownCut
	if !absent {
		if c.at, c.exp, c.ok = parseCutValue(v); !c.ok {
			return knownCut{}, fmt.Errorf("stored record %q is not \"at exp seq\"", v)
		}
	}
	s.known.rememberCutoff(since, h, c)
	return c, nil
}

// hashSubject is the SHA-256 of subject, without allocating for subjects
// of up to 256 bytes (revocation.Badger's).
func hashSubject(subject string) [32]byte {
	var buf [256]byte
	if len(subject) <= len(buf) {
		return sha256.Sum256(append(buf[:0], subject...))
	}
	return sha256.Sum256([]byte(subject))
}

// parseCutValue reads "at exp seq".
func parseCutValue(v string) (at, exp int64, ok bool) {
	a, rest, ok1 := strings.Cut(v, " ")
	e, _, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	at, err1 := strconv.ParseInt(a, 10, 64)
	exp, err2 := strconv.ParseInt(e, 10, 64)
	return at, exp, err1 == nil && err2 == nil
}

// Changes implements [revocation.Feed], from the store, in one atomic
// read: every node answers the same since with the same list (one
// sequence counter and one epoch, in the store). The snapshot rule is
// Badger's (since 0, since after the latest sequence number, or more than
// half of the entries in the delta anyway). Expired records are skipped
// (by Options.Now); their index members are trimmed by the writes and
// [Store.Trim]. A delta never misses a live record: a record's member
// carries the sequence number of its latest write.
func (s *Store) Changes(ctx context.Context, since uint64) (revocation.Changes, error) {
	if s.closed.Load() {
		return revocation.Changes{}, errClosed("revocation changes")
	}
	if err := ctx.Err(); err != nil {
		return revocation.Changes{}, fmt.Errorf("revocation changes: %w", err)
	}
	res, err := s.feed(ctx, since, "changes")
	if err != nil {
		return revocation.Changes{}, fmt.Errorf("revocation changes: %w", err)
	}
	seq, _ := res[1].AsUint64()
	snap, _ := res[2].AsInt64()
	out := revocation.Changes{Epoch: s.epoch, Seq: seq, Snapshot: snap == 1}
	now := s.now().Unix()
	entries, _ := res[3].AsStrSlice()
	out.Entries = make([]revocation.Entry, 0, len(entries)/2)
	for i := 0; i+1 < len(entries); i += 2 {
		idText, expText, _ := strings.Cut(entries[i], " ")
		id, err1 := uuid.Parse(idText)
		exp, err2 := strconv.ParseInt(expText, 10, 64)
		seq, err3 := strconv.ParseUint(entries[i+1], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return revocation.Changes{}, fmt.Errorf("revocation changes: index member %q, %q is not \"id exp\", seq", entries[i], entries[i+1])
		}
		if exp <= now {
			continue
		}
		out.Entries = append(out.Entries, revocation.Entry{ID: id, Until: time.Unix(exp, 0), Seq: seq})
	}
	cuts, _ := res[4].AsStrSlice()
	out.Cutoffs = make([]revocation.Cutoff, 0, len(cuts)/2) // never nil, as Badger's
	for i := 0; i+1 < len(cuts); i += 2 {
		f := strings.Fields(cuts[i])
		var c revocation.Cutoff
		var at, exp int64
		var err1, err2, err3, err4 error
		if len(f) == 3 {
			_, err1 = hex.Decode(c.Subject[:], []byte(f[0]))
			at, err2 = strconv.ParseInt(f[1], 10, 64)
			exp, err3 = strconv.ParseInt(f[2], 10, 64)
			c.Seq, err4 = strconv.ParseUint(cuts[i+1], 10, 64)
		}
		if len(f) != 3 || len(f[0]) != 64 || err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return revocation.Changes{}, fmt.Errorf("revocation changes: cutoff member %q, %q is not \"hash at exp\", seq", cuts[i], cuts[i+1])
		}
		if exp <= now {
			continue
		}
		c.At, c.Until = time.Unix(at, 0), time.Unix(exp, 0)
		out.Cutoffs = append(out.Cutoffs, c)
	}
	slices.SortFunc(out.Cutoffs, func(a, b revocation.Cutoff) int { return bytes.Compare(a.Subject[:], b.Subject[:]) })
	return out, nil
}

// Head implements [revocation.Feed]: the same atomic read as Changes,
// counting instead of copying. The counts include expired members not yet
// trimmed (upper bounds, as the interface allows).
func (s *Store) Head(ctx context.Context, since uint64) (revocation.Head, error) {
	if s.closed.Load() {
		return revocation.Head{}, errClosed("revocation head")
	}
	if err := ctx.Err(); err != nil {
		return revocation.Head{}, fmt.Errorf("revocation head: %w", err)
	}
	res, err := s.feed(ctx, since, "head")
	if err != nil {
		return revocation.Head{}, fmt.Errorf("revocation head: %w", err)
	}
	seq, _ := res[1].AsUint64()
	snap, _ := res[2].AsInt64()
	total, _ := res[3].AsInt64()
	n, _ := res[4].AsInt64()
	cuts, _ := res[5].AsInt64()
	return revocation.Head{Epoch: s.epoch, Seq: seq, Snapshot: snap == 1, Total: int(total), Entries: int(n), Cutoffs: int(cuts)}, nil
}

// feed runs feedScript and checks its epoch.
func (s *Store) feed(ctx context.Context, since uint64, mode string) ([]rueidis.RedisMessage, error) {
	res, err := s.run(ctx, feedScript, []string{s.keys.epoch, s.keys.seq, s.keys.rseq, s.keys.cseq},
		[]string{strconv.FormatUint(since, 10), mode}).ToArray()
	if err != nil {
		return nil, s.wrap(err)
	}
	want := 5
	if mode == "head" {
		want = 6
	}
	if len(res) != want {
		return nil, fmt.Errorf("unexpected answer of %d values from the feed script", len(res))
	}
	epoch, err := res[0].ToString()
	if err != nil || epoch != s.epoch {
		// A Lua false (no epoch) arrives as nil.
		return nil, fmt.Errorf("%w: the store at %s has not the epoch %s this node opened: restore its data, or restart every node to begin a new list", ErrReplaced, s.url, s.epoch)
	}
	return res, nil
}
