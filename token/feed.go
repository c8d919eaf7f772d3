package token

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// RevocationsType is the "typ" header of a revocation document. It differs
// from [Type], so that neither kind of document passes for the other: a
// [Verifier] refuses a revocation document with [ErrType], and
// [ParseRevocations] refuses a session token the same way.
const RevocationsType = "revocations+jwt"

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
	// [RevocationFeed] does. [SignRevocations] truncates it to seconds.
	Retain time.Duration
	// Revoked are the revoked ids with their expiries, in ascending order of
	// id after [ParseRevocations]; [SignRevocations] sorts them.
	Revoked []Revoked
	// KeyID is the kid of the key that signed the document; set by
	// [ParseRevocations], ignored by [SignRevocations].
	KeyID string
}

// Revoked is one revoked token id and the time from which its token is
// expired anyway, so that the id can be forgotten. Expires is a whole
// second.
type Revoked struct {
	ID      uuid.UUID
	Expires time.Time
}

// Errors of revocation documents and of [RevocationFeed]. A document that
// is refused gives an error matching [ErrFeed] and one precise reason:
// [ErrMalformed], [ErrType], [ErrUnknownKey], [ErrAlgorithm],
// [ErrSignature], [ErrIssuer], [ErrNotYetValid] (issued in the future),
// [ErrExpired] (no longer fresh), [ErrOutdated] or [ErrTooLarge].
var (
	// ErrFeed matches every reason a revocation document is refused.
	ErrFeed = errors.New("revocation document refused")

	// ErrOutdated means an authentic document older than the list already
	// held: a replay, or a server that went back in time. The list is kept.
	ErrOutdated = errors.New("revocation document is older than the list held")

	// ErrStale means a [RevocationFeed] cannot tell whether a token is
	// revoked: it has no list yet, or its list is older than allowed (see
	// [FeedOptions.MaxStaleness]). It never matches [ErrInvalid]: validity is
	// unknown, and [Verifier.Verify] fails.
	ErrStale = errors.New("revocation list is stale")
)

// refused is a refused revocation document: it matches ErrFeed, its reason
// and the detail.
type refused struct{ reason, detail error }

func (r *refused) Error() string {
	msg := r.reason.Error()
	if r.detail != nil {
		msg = (&detailed{r.reason, r.detail}).Error()
	}
	return ErrFeed.Error() + ": " + msg
}

func (r *refused) Unwrap() []error {
	if r.detail == nil {
		return []error{ErrFeed, r.reason}
	}
	return []error{ErrFeed, r.reason, r.detail}
}

func refuse(reason error, format string, args ...any) error {
	return &refused{reason, fmt.Errorf(format, args...)}
}

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
	Revoked    *string          `json:"revoked"`
}

func (c *revocationClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (c *revocationClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c *revocationClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *revocationClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *revocationClaims) GetSubject() (string, error)                  { return "", nil }
func (c *revocationClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// SignRevocations returns the revocation document of list, signed with the
// active key of keys. It sorts list.Revoked by id, in place; an id that
// appears twice, an expiry outside the years 1970 to 9999, a FreshUntil not
// after IssuedAt, or a snapshot with a Since are errors. Times are
// truncated to whole seconds; callers round expiries up first if that
// matters.
func SignRevocations(keys SigningKeys, list *RevocationList) ([]byte, error) {
	if !slices.IsSortedFunc(list.Revoked, compareRevoked) {
		slices.SortFunc(list.Revoked, compareRevoked)
	}
	return SignRevocationsFunc(keys, list, len(list.Revoked), func(i int) Revoked { return list.Revoked[i] })
}

// SignRevocationsFunc is [SignRevocations] for a list too large to copy
// into list.Revoked, which it ignores: the document lists n entries, the
// i-th being entry(i), in ascending order of id (it is an error otherwise).
// entry is called twice for each i.
//
// The document is written into one buffer of its final size, without
// intermediate copies of the list: a million ids cost the document's 37 MB.
func SignRevocationsFunc(keys SigningKeys, list *RevocationList, n int, entry func(i int) Revoked) ([]byte, error) {
	listLen, err := checkList(list, n, entry)
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	kid, alg, key, err := keys.SigningKey()
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	sigLen, err := signatureSize(alg, key)
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, RevocationsType})
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	// The payload is written in two parts around the revoked list, which is
	// the one that may be large.
	head, err := json.Marshal(struct {
		Issuer     string           `json:"iss"`
		IssuedAt   *jwt.NumericDate `json:"iat"`
		FreshUntil *jwt.NumericDate `json:"fresh_until"`
		Epoch      string           `json:"epoch"`
		Seq        uint64           `json:"seq"`
		Since      uint64           `json:"since"`
		Snapshot   bool             `json:"snapshot"`
		Retain     int64            `json:"retain"`
	}{list.Issuer, jwt.NewNumericDate(list.IssuedAt), jwt.NewNumericDate(list.FreshUntil), list.Epoch, list.Seq, list.Since, list.Snapshot,
		int64(list.Retain / time.Second)})
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	head = append(head[:len(head)-1], `,"revoked":"`...)
	const tail = `"}`
	payloadLen := len(head) + b64.EncodedLen(listLen) + len(tail)
	size := b64.EncodedLen(len(header)) + 1 + b64.EncodedLen(payloadLen) + 1 + b64.EncodedLen(sigLen)

	var doc bytes.Buffer
	doc.Grow(size)
	doc.WriteString(b64.EncodeToString(header))
	doc.WriteByte('.')
	payload := base64.NewEncoder(b64, &doc)
	payload.Write(head)
	revoked := base64.NewEncoder(b64, payload)
	// Writes to a bytes.Buffer do not fail, so neither do the encoders'.
	chunk := binary.AppendUvarint(make([]byte, 0, 48<<10), uint64(n))
	for i := range n {
		if len(chunk) > cap(chunk)-32 {
			revoked.Write(chunk)
			chunk = chunk[:0]
		}
		r := entry(i)
		chunk = append(chunk, r.ID[:]...)
		chunk = binary.AppendUvarint(chunk, uint64(r.Expires.Unix()))
	}
	revoked.Write(chunk)
	revoked.Close()
	payload.Write([]byte(tail))
	payload.Close()

	sig, err := sign(alg, key, doc.Bytes())
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	doc.WriteByte('.')
	doc.WriteString(b64.EncodeToString(sig))
	return doc.Bytes(), nil
}

// checkList validates list and its n entries for signing, and returns the
// length of the binary revoked list.
func checkList(list *RevocationList, n int, entry func(i int) Revoked) (int, error) {
	switch {
	case !list.FreshUntil.After(list.IssuedAt):
		return 0, errors.New("fresh until must be after issued at")
	case list.Snapshot && list.Since != 0:
		return 0, errors.New("a snapshot has no since")
	case list.Since > list.Seq:
		return 0, errors.New("since is after seq")
	case n < 0:
		return 0, errors.New("negative number of entries")
	case list.Retain < 0:
		return 0, errors.New("negative retain")
	}
	size := uvarintLen(uint64(n))
	var prev Revoked
	for i := range n {
		r := entry(i)
		exp := r.Expires.Unix()
		if exp < 1 || exp > maxExpiry {
			return 0, fmt.Errorf("id %s expires at %v, outside the years 1970 to 9999", r.ID, r.Expires)
		}
		if i > 0 && compareRevoked(prev, r) >= 0 {
			return 0, fmt.Errorf("id %s twice or out of order", r.ID)
		}
		size += 16 + uvarintLen(uint64(exp))
		prev = r
	}
	return size, nil
}

// compareRevoked orders entries by id, as bytes.Compare of the ids would,
// in two integer comparisons.
func compareRevoked(a, b Revoked) int {
	if c := cmp.Compare(binary.BigEndian.Uint64(a.ID[:8]), binary.BigEndian.Uint64(b.ID[:8])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(a.ID[8:]), binary.BigEndian.Uint64(b.ID[8:]))
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// signatureSize is the length of a JWS signature of alg with key.
func signatureSize(alg string, key crypto.Signer) (int, error) {
	switch alg {
	case "EdDSA", "ES256":
		return 64, nil
	case "RS256":
		pub, ok := key.Public().(interface{ Size() int })
		if !ok {
			return 0, fmt.Errorf("RS256 key of type %T", key.Public())
		}
		return pub.Size(), nil
	}
	return 0, fmt.Errorf("unsupported algorithm %q", alg)
}

// sign computes the JWS signature (RFC 7515, RFC 7518 §3, RFC 8037) of msg
// with the crypto.Signer itself rather than through golang-jwt, whose
// SigningMethod.Sign takes the message as a string and copies it, twice for
// EdDSA: 74 MB for a document of a million ids.
func sign(alg string, key crypto.Signer, msg []byte) ([]byte, error) {
	switch alg {
	case "EdDSA":
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	case "RS256":
		digest := sha256.Sum256(msg)
		return key.Sign(rand.Reader, digest[:], crypto.SHA256)
	case "ES256":
		digest := sha256.Sum256(msg)
		der, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		// crypto.Signer gives ASN.1 DER; JWS wants R and S, 32 bytes each.
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
			return nil, errors.New("ES256 signer returned a malformed signature")
		}
		sig := make([]byte, 64)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
		return sig, nil
	}
	return nil, fmt.Errorf("unsupported algorithm %q", alg)
}

// ParseRevocations verifies a revocation document and returns what it
// says. The rules are those of session tokens: the signature must verify
// under the key its "kid" names, with that key's algorithm only; "typ" must
// be [RevocationsType]; "iss" must be the issuer (DefaultIssuer unless
// [WithIssuer] says otherwise); "iat" must not be in the future (allowing
// [WithLeeway], by [WithClock]); "fresh_until" must be after "iat".
// The other options of [NewVerifier] do not apply.
//
// Whether the list is still fresh is for the caller to judge; a
// [RevocationFeed] does. An error matches [ErrFeed] and one reason (see
// ErrFeed), or, when keys could not say whether the key exists, wraps
// [ErrKeysUnavailable] and does not match ErrFeed: validity is unknown, as
// for a token. Nothing in the document is returned then.
//
// The document is authenticated before its payload is decoded (see
// [Verifier.Verify]: one routine checks both), so a forged one costs no
// more than its signature check; a document of more than 256 MiB is
// refused unread with [ErrTooLarge].
func ParseRevocations(ctx context.Context, doc string, keys KeySource, opts ...Option) (*RevocationList, error) {
	v := &Verifier{keys: keys, issuer: DefaultIssuer, now: time.Now}
	for _, opt := range opts {
		opt(v)
	}
	return v.parseRevocations(ctx, doc, defaultMaxRevocationsSize)
}

// defaultMaxRevocationsSize bounds a document that [ParseRevocations]
// reads: 256 MiB, some 7 million ids, as [FeedOptions.MaxSize].
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
	sj, err := v.verifyJWS(ctx, doc, RevocationsType)
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
	payload, err := b64.Strict().DecodeString(sj.payload)
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
	case c.Retain > maxExpiry:
		return nil, refuse(ErrMalformed, "retain %d is more than %d seconds", c.Retain, maxExpiry)
	}
	raw, err := b64.Strict().DecodeString(*c.Revoked)
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
	return l, nil
}

// maxExpiry bounds an expiry in the revoked list (the year 10000), so
// that it always fits a time.Time.
const maxExpiry = 253402300800

// decodeRevoked reads the binary revoked list: it calls start with the
// number of entries, then each for every entry. The list must be canonical:
// ids in ascending order, none twice, numbers in their shortest uvarint,
// nothing after the last entry.
func decodeRevoked(raw []byte, start func(n int), each func(id uuid.UUID, exp int64)) error {
	n, k := binary.Uvarint(raw)
	if k <= 0 || k != uvarintLen(n) {
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
		if k <= 0 || k != uvarintLen(exp) || exp < 1 || exp > maxExpiry {
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
