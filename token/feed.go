// This file is the revocation document as a verifier reads it: what it
// says ([RevocationList]) and [Verifier.ParseRevocations]. The feed that
// fetches and applies documents is feedsource.go, its saved file
// feedfile.go; package issue signs them.

package token

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
)

// A RevocationList is what a revocation document says: the revoked token
// ids of an issuer that have not expired, or the changes to them since an
// earlier document.
//
// # The document
//
// A revocation document is a JWS in compact serialization, signed with the
// issuer's active session-signing key, so it verifies against the same JWK
// Set as the tokens:
//
//	header:  {"alg":"EdDSA","kid":"<RFC 7638 thumbprint>","typ":"revocations+jwt"}
//	payload: {"iss":"sessiond","iat":1764633600,"fresh_until":1764633900,
//	          "epoch":"7qM0…","seq":1042,"since":1040,"snapshot":false,
//	          "retain":0,"revoked":"<base64url of the revoked list>"}
//
// with "cutoffs":"<base64url of the cutoff list>" before "revoked" when
// the list has subject cutoffs (a document without it has none).
//
// iat and fresh_until are NumericDates (Unix seconds). epoch names the
// server's list and seq numbers its writes (see [RevocationList.Epoch] and
// [RevocationList.Seq]). since is the seq the changes start after; 0 in a
// snapshot. retain is how long, in whole seconds, an id stays on the list
// after its token's "exp" (see [RevocationList.Retain]); a document without
// it means 0.
//
// The revoked list is binary: the number of entries as a uvarint, then each
// entry, in ascending order of id with no id twice: the id's 16 bytes and
// its expiry in Unix seconds as a uvarint (5 bytes until the year 2514).
// Every number is in its shortest form, so that a list has one encoding.
// Token ids are random (version 4 UUIDs): they do not compress, so the list
// is exact and uncompressed, 21 bytes per id. Base64 inside the JSON
// payload and base64 of the payload again make that 37.3 bytes per id in the
// document: 37 MB for a million ids.
//
// The cutoff list is binary in the same way: the number of cutoffs as a
// uvarint, then each cutoff, in ascending order of hash with no hash
// twice: the 32 bytes of the SHA-256 of the subject ([SubjectHash]), the
// cutoff second in Unix seconds as a uvarint and the cutoff's expiry
// likewise (both before the year 10000; the expiry after 1970), 42 bytes
// a cutoff until the year 2514, 75 in the document. Subjects are never in the
// document, only their hashes: an observer of the feed learns how many
// subjects were cut off and when, and can test a subject it guesses
// against the list, but cannot read a subject off it.
type RevocationList struct {
	Issuer     string    // iss
	IssuedAt   time.Time // iat
	FreshUntil time.Time // fresh_until: the issuer vouches for the list until then
	// Epoch identifies the issuer's list; a different epoch is a different
	// list (wiped or replaced), whose Seq numbers start again.
	Epoch string
	// Seq is the sequence number of the latest write the document includes.
	Seq uint64
	// Since is the Seq of the list the changes apply to; 0 in a snapshot.
	Since uint64
	// Snapshot reports that Revoked is the whole list, not changes to add
	// to an earlier one.
	Snapshot bool
	// Retain is how long after its token's expiry ("exp") every id stays
	// on the issuer's list, in whole seconds ("retain"): the issuer's own
	// clock-skew leeway. Past exp + Retain a closed token is off the list,
	// so a verifier that relies on the list must refuse it as expired
	// whatever leeway it allows itself; a [Verifier] with a
	// [RevocationFeed] does. issue.SignRevocations truncates it to seconds.
	Retain time.Duration
	// Revoked are the revoked ids with their expiries, in ascending order of
	// id after [Verifier.ParseRevocations]; issue.SignRevocations sorts
	// them.
	Revoked []Revoked
	// Cutoffs are the subject cutoffs ("cutoffs"), in ascending order of
	// hash after [Verifier.ParseRevocations]; issue.SignRevocations sorts
	// them. In a snapshot they are all of them; in changes, the cutoffs
	// written since, each replacing the one held for its subject.
	Cutoffs []Cutoff
	// KeyID is the kid of the key that signed the document; set by
	// [Verifier.ParseRevocations], ignored by issue.SignRevocations.
	KeyID string
}

// Revoked is one revoked token id and the time from which its token is
// expired anyway, so that the id can be forgotten. Expires is a whole
// second.
type Revoked struct {
	ID      uuid.UUID
	Expires time.Time
}

// Cutoff is one subject cutoff: every token whose "sub" has the SHA-256
// Subject and whose "iat" is at or before At is closed (sessiond's
// session.close_all_sessions). Expires is when the cutoff may be
// forgotten: no token it closes can be alive by then. At and Expires are
// whole seconds.
type Cutoff struct {
	Subject [sha256.Size]byte
	At      time.Time
	Expires time.Time
}

// SubjectHash is how a subject is named in a revocation document: the
// SHA-256 of its bytes, as sessiond's revocation store keys it.
func SubjectHash(subject string) [sha256.Size]byte { return sha256.Sum256([]byte(subject)) }

// revocationClaims is the payload of a revocation document.
type revocationClaims struct {
	Issuer     string           `json:"iss"`
	IssuedAt   *jwt.NumericDate `json:"iat"`
	FreshUntil *jwt.NumericDate `json:"fresh_until"`
	Epoch      string           `json:"epoch"`
	Seq        uint64           `json:"seq"`
	Since      uint64           `json:"since"`
	Snapshot   bool             `json:"snapshot"`
	Retain     uint64           `json:"retain"`
	Cutoffs    json.RawMessage  `json:"cutoffs"` // absent: none; null is malformed
	Revoked    *string          `json:"revoked"`
}

func (c *revocationClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c *revocationClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *revocationClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *revocationClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *revocationClaims) GetSubject() (string, error)                  { return "", nil }
func (c *revocationClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// ParseRevocations verifies a revocation document and returns what it
// says. The rules are those of session tokens: the signature must verify
// under the key its "kid" names in v's key source, with that key's
// algorithm only; "typ" must be revocations+jwt; "iss" must be v's issuer
// ([WithIssuer]); "iat" must not be in the future (by v's clock, allowing
// v's leeway); "fresh_until" must be after "iat".
//
// Whether the list is still fresh is for the caller to judge; a
// [RevocationFeed] does. An error matches [ErrFeed] and one reason (see
// the error block), or, when the key source could not say whether the key
// exists, wraps [ErrKeysUnavailable] and does not match ErrFeed: validity
// is unknown, as for a token. Nothing in the document is returned then.
//
// The document is authenticated before its payload is decoded, by the
// routine that checks tokens, so a forged one costs no more than its
// signature check; a document of more than 256 MiB is refused unread with
// [ErrTooLarge].
func (v *Verifier) ParseRevocations(ctx context.Context, doc string) (*RevocationList, error) {
	return v.parseRevocations(ctx, doc, defaultMaxRevocationsSize)
}

// defaultMaxRevocationsSize bounds a document that [Verifier.ParseRevocations]
// reads: 256 MiB, some 7 million ids, as [WithFeedMaxSize] by default.
const defaultMaxRevocationsSize = 256 << 20

// revocationsValidator checks the claims of a revocation document of v.
func (v *Verifier) revocationsValidator() *jwt.Validator {
	return jwt.NewValidator(
		jwt.WithIssuedAt(),
		jwt.WithIssuer(v.issuer),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	)
}

// parseRevocations verifies doc, of at most maxSize bytes, through the
// same JWS check as tokens ([Verifier.verifyJWS]): the signature is
// checked over the raw bytes before anything of the payload is decoded, so
// that a forged document costs no more than reading it.
func (v *Verifier) parseRevocations(ctx context.Context, doc string, maxSize int64) (*RevocationList, error) {
	if int64(len(doc)) > maxSize {
		return nil, refuse(ErrTooLarge, "document of %d bytes, more than the %d read", len(doc), maxSize)
	}
	sj, err := v.verifyJWS(ctx, doc, jose.TypeRevocations)
	if errors.Is(err, ErrKeysUnavailable) {
		return nil, fmt.Errorf("verify revocation document: %w", err)
	}
	if err != nil {
		var d *detailed
		if !errors.As(err, &d) {
			d = &detailed{ErrMalformed, err}
		}
		return nil, &refused{d.reason, d.detail}
	}
	payload, err := decodeSegment(sj.payload)
	if err != nil {
		return nil, refuse(ErrMalformed, "payload: %v", err)
	}
	var c revocationClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, refuse(ErrMalformed, "payload: %v", err)
	}
	if err := v.revocationsValidator().Validate(&c); err != nil {
		var d *detailed
		errors.As(classify(err), &d) // classify gives one for any error but ErrKeysUnavailable
		return nil, &refused{d.reason, d.detail}
	}
	kid := sj.kid
	switch {
	case c.IssuedAt == nil:
		return nil, refuse(ErrMalformed, "no iat")
	case c.FreshUntil == nil:
		return nil, refuse(ErrMalformed, "no fresh_until")
	case !c.FreshUntil.After(c.IssuedAt.Time):
		return nil, refuse(ErrMalformed, "fresh_until is not after iat")
	case c.Epoch == "":
		return nil, refuse(ErrMalformed, "no epoch")
	case c.Revoked == nil:
		return nil, refuse(ErrMalformed, "no revoked list")
	case c.Since > c.Seq || c.Snapshot && c.Since != 0:
		return nil, refuse(ErrMalformed, "since %d does not fit seq %d, snapshot %v", c.Since, c.Seq, c.Snapshot)
	case c.Retain > jose.MaxExpiry:
		return nil, refuse(ErrMalformed, "retain %d is more than %d seconds", c.Retain, jose.MaxExpiry)
	}
	raw, err := decodeSegment(*c.Revoked)
	if err != nil {
		return nil, refuse(ErrMalformed, "revoked list: %v", err)
	}
	l := &RevocationList{
		Issuer:     c.Issuer,
		IssuedAt:   c.IssuedAt.UTC(),
		FreshUntil: c.FreshUntil.UTC(),
		Epoch:      c.Epoch,
		Seq:        c.Seq,
		Since:      c.Since,
		Snapshot:   c.Snapshot,
		Retain:     time.Duration(c.Retain) * time.Second,
		KeyID:      kid,
	}
	err = decodeRevoked(raw, func(n int) { l.Revoked = make([]Revoked, 0, n) }, func(id uuid.UUID, exp int64) {
		l.Revoked = append(l.Revoked, Revoked{ID: id, Expires: time.Unix(exp, 0).UTC()})
	})
	if err != nil {
		return nil, refuse(ErrMalformed, "revoked list: %v", err)
	}
	if c.Cutoffs != nil {
		var member string
		if c.Cutoffs[0] != '"' || json.Unmarshal(c.Cutoffs, &member) != nil {
			return nil, refuse(ErrMalformed, "cutoff list is not a string")
		}
		raw, err := decodeSegment(member)
		if err != nil {
			return nil, refuse(ErrMalformed, "cutoff list: %v", err)
		}
		if l.Cutoffs, err = decodeCutoffs(raw); err != nil {
			return nil, refuse(ErrMalformed, "cutoff list: %v", err)
		}
	}
	return l, nil
}

// decodeCutoffs reads the binary cutoff list, which must be canonical:
// hashes in ascending order, none twice, numbers in their shortest uvarint,
// nothing after the last cutoff.
func decodeCutoffs(raw []byte) ([]Cutoff, error) {
	n, k := binary.Uvarint(raw)
	if k <= 0 || k != jose.UvarintLen(n) {
		return nil, errors.New("bad count")
	}
	raw = raw[k:]
	const minLen = sha256.Size + 2 // every cutoff takes at least 34 bytes
	if n > uint64(len(raw)/minLen) {
		return nil, fmt.Errorf("count %d does not fit %d bytes", n, len(raw))
	}
	out := make([]Cutoff, 0, n)
	for i := range n {
		if len(raw) < minLen {
			return nil, errors.New("truncated")
		}
		var c Cutoff
		copy(c.Subject[:], raw)
		if i > 0 && bytes.Compare(c.Subject[:], out[i-1].Subject[:]) <= 0 {
			return nil, errors.New("hashes not in ascending order")
		}
		raw = raw[sha256.Size:]
		at, k := binary.Uvarint(raw)
		if k <= 0 || k != jose.UvarintLen(at) || at > jose.MaxExpiry {
			return nil, fmt.Errorf("bad cutoff second of cutoff %d", i)
		}
		raw = raw[k:]
		exp, k := binary.Uvarint(raw)
		if k <= 0 || k != jose.UvarintLen(exp) || exp < 1 || exp > jose.MaxExpiry {
			return nil, fmt.Errorf("bad expiry of cutoff %d", i)
		}
		raw = raw[k:]
		c.At, c.Expires = time.Unix(int64(at), 0).UTC(), time.Unix(int64(exp), 0).UTC()
		out = append(out, c)
	}
	if len(raw) > 0 {
		return nil, fmt.Errorf("%d bytes after the last cutoff", len(raw))
	}
	return out, nil
}

// decodeRevoked reads the binary revoked list: it calls start with the
// number of entries, then each for every entry. The list must be canonical:
// ids in ascending order, none twice, numbers in their shortest uvarint,
// nothing after the last entry.
func decodeRevoked(raw []byte, start func(n int), each func(id uuid.UUID, exp int64)) error {
	n, k := binary.Uvarint(raw)
	if k <= 0 || k != jose.UvarintLen(n) {
		return errors.New("bad count")
	}
	raw = raw[k:]
	if n > uint64(len(raw)/17) { // every entry takes at least 17 bytes
		return fmt.Errorf("count %d does not fit %d bytes", n, len(raw))
	}
	start(int(n))
	var prev uuid.UUID
	for i := range n {
		if len(raw) < 17 {
			return errors.New("truncated")
		}
		id := uuid.UUID(raw[:16])
		if i > 0 && bytes.Compare(id[:], prev[:]) <= 0 {
			return errors.New("ids not in ascending order")
		}
		exp, k := binary.Uvarint(raw[16:])
		if k <= 0 || k != jose.UvarintLen(exp) || exp < 1 || exp > jose.MaxExpiry {
			return fmt.Errorf("bad expiry of %s", id)
		}
		raw = raw[16+k:]
		each(id, int64(exp))
		prev = id
	}
	if len(raw) > 0 {
		return fmt.Errorf("%d bytes after the last entry", len(raw))
	}
	return nil
}
