package token

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Type is the "typ" header of every session token (RFC 8725 §3.11: explicit
// typing, so that no other kind of JWT the same keys sign can pass as one).
const Type = "session+jwt"

// DefaultIssuer is the "iss" claim when none is configured.
const DefaultIssuer = "sessiond"

// MaxSize is the longest token Verify parses; a longer one is rejected
// unread. sessiond's tokens are 250 to 800 bytes long.
const MaxSize = 4096

// Claims are what a valid token says.
type Claims struct {
	ID       uuid.UUID // jti
	KeyID    string    // kid of the key that signed it
	Issuer   string    // iss
	IssuedAt time.Time // iat
	Expires  time.Time // exp
}

// SigningKeys gives the key that signs new tokens: its id, its JOSE
// algorithm name and the private key. keys.Keyring implements it.
type SigningKeys interface {
	SigningKey() (kid, alg string, key crypto.Signer, err error)
}

// KeySource finds the public key that verifies tokens signed under kid, with
// its JOSE algorithm name; tokens are only accepted under that algorithm.
// An unknown kid is an error; a failure to get the keys at all is an error
// that wraps [ErrKeysUnavailable]. keys.Keyring, [JWKS] and [RemoteJWKS]
// implement it.
type KeySource interface {
	VerificationKey(ctx context.Context, kid string) (alg string, key crypto.PublicKey, err error)
}

// RevocationChecker tells whether a token id has been revoked. An error
// means the answer is unknown; Verify then fails (closed).
type RevocationChecker interface {
	IsRevoked(ctx context.Context, id uuid.UUID) (bool, error)
}

// An Issuer signs new session tokens with the active key. It is safe for
// concurrent use.
type Issuer struct {
	keys    SigningKeys
	name    string
	issJSON []byte // name as a JSON string
	now     func() time.Time
	header  atomic.Pointer[headerSegment] // of the key that signed last
}

// headerSegment is the encoded JOSE header for one key: it only changes
// when the active key does, so it is made once per key.
type headerSegment struct {
	kid, alg, encoded string
}

// NewIssuer returns an Issuer that puts name in the "iss" claim (empty means
// DefaultIssuer) and signs with keys. now is the clock (nil: time.Now).
func NewIssuer(name string, keys SigningKeys, now func() time.Time) *Issuer {
	if name == "" {
		name = DefaultIssuer
	}
	if now == nil {
		now = time.Now
	}
	issJSON, _ := json.Marshal(name) // a string always encodes
	return &Issuer{keys: keys, name: name, issJSON: issJSON, now: now}
}

// Issue signs a token valid for lifetime (whole seconds) from now.
//
// The signing input is assembled here rather than by jwt.Token.SignedString,
// which marshals a header map and a claims struct through reflection on
// every call; the signature goes through the crypto.Signer interface, as
// for revocation documents (keys.Key's signer is opaque, so that it never
// prints). On the verifying side the claims are checked by golang-jwt's
// Validator.
func (i *Issuer) Issue(lifetime time.Duration) (string, Claims, error) {
	kid, alg, key, err := i.keys.SigningKey()
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue token: %w", err)
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		return "", Claims{}, fmt.Errorf("issue token: unsupported algorithm %q", alg)
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue token: %w", err)
	}
	c := Claims{
		ID:       id,
		KeyID:    kid,
		Issuer:   i.name,
		IssuedAt: i.now().UTC().Truncate(time.Second),
	}
	c.Expires = c.IssuedAt.Add(lifetime.Truncate(time.Second))

	var scratch [160]byte
	claims := append(scratch[:0], `{"iss":`...)
	claims = append(claims, i.issJSON...)
	claims = append(claims, `,"exp":`...)
	claims = strconv.AppendInt(claims, c.Expires.Unix(), 10)
	claims = append(claims, `,"iat":`...)
	claims = strconv.AppendInt(claims, c.IssuedAt.Unix(), 10)
	claims = append(claims, `,"jti":"`...)
	claims = append(claims, id.String()...)
	claims = append(claims, `"}`...)

	tok := make([]byte, 0, 512)
	tok = append(tok, i.headerFor(kid, alg)...)
	tok = append(tok, '.')
	tok = b64.AppendEncode(tok, claims)
	sig, err := sign(alg, key, tok)
	if err != nil {
		return "", Claims{}, fmt.Errorf("issue token: %w", err)
	}
	tok = append(tok, '.')
	tok = b64.AppendEncode(tok, sig)
	return string(tok), c, nil
}

// headerFor returns the encoded header {"alg":…,"kid":…,"typ":"session+jwt"}.
func (i *Issuer) headerFor(kid, alg string) string {
	if h := i.header.Load(); h != nil && h.kid == kid && h.alg == alg {
		return h.encoded
	}
	header, _ := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, Type})
	h := &headerSegment{kid: kid, alg: alg, encoded: b64.EncodeToString(header)}
	i.header.Store(h)
	return h.encoded
}

// A Verifier checks session tokens: size, signature under the key named by
// "kid" with that key's algorithm only, "typ", "exp" (required), "iat" (not
// in the future), "nbf", "iss", "aud" when configured, and revocation when a
// checker is configured. It is safe for concurrent use.
type Verifier struct {
	keys       KeySource
	revocation RevocationChecker
	issuer     string
	audience   string
	leeway     time.Duration
	now        func() time.Time
	validator  *jwt.Validator // of the claims of a token whose signature verified
	cacheSize  int
	// slow bounds the signature checks running at once (nil: no bound).
	slow  chan struct{}
	cache *cache
}

// An Option configures a [Verifier].
type Option func(*Verifier)

// WithIssuer sets the required "iss" claim (empty: DefaultIssuer).
func WithIssuer(iss string) Option { return func(v *Verifier) { v.issuer = iss } }

// WithAudience requires the "aud" claim to contain aud.
func WithAudience(aud string) Option { return func(v *Verifier) { v.audience = aud } }

// WithLeeway allows for clock skew when checking "exp", "iat" and "nbf".
func WithLeeway(d time.Duration) Option { return func(v *Verifier) { v.leeway = d } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// WithRevocation makes Verify consult rc for every token that is otherwise
// valid. If rc has a method Retention() time.Duration, as a
// [RevocationFeed] does, a token is expired once exp + min(leeway,
// Retention()) has passed: the leeway never outlasts rc's knowledge.
func WithRevocation(rc RevocationChecker) Option { return func(v *Verifier) { v.revocation = rc } }

// WithCache sets how many verified tokens the Verifier remembers, so that
// verifying one again skips the signature check (default DefaultCacheSize;
// 0 turns the cache off). A remembered token is still checked on every call
// against the clock, the key source (a removed key takes effect at once) and
// the revocation checker.
func WithCache(size int) Option { return func(v *Verifier) { v.cacheSize = size } }

// WithConcurrencyLimit lets at most n signature checks (of tokens not in
// the cache) run at once; the others wait their turn, or until their
// context ends. Tokens that verified before never wait. A server sets it
// to its number of cores, so that a flood of forged tokens, each costing
// a full signature check, queues behind itself instead of taking the CPU
// from traffic that the cache answers. 0 (the default) means no limit.
func WithConcurrencyLimit(n int) Option {
	return func(v *Verifier) {
		v.slow = nil
		if n > 0 {
			v.slow = make(chan struct{}, n)
		}
	}
}

// NewVerifier returns a Verifier that finds keys in keys.
func NewVerifier(keys KeySource, opts ...Option) *Verifier {
	v := &Verifier{keys: keys, issuer: DefaultIssuer, now: time.Now, cacheSize: DefaultCacheSize}
	for _, opt := range opts {
		opt(v)
	}
	if v.issuer == "" {
		// As for NewIssuer. golang-jwt would take "" as "any iss, or none".
		v.issuer = DefaultIssuer
	}
	v.cache = newCache(v.cacheSize)
	v.validator = jwt.NewValidator(
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(v.issuer),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	)
	return v
}

// Leeway returns the clock-skew allowance.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// Verify checks s and returns its claims. A token that is not valid gives an
// error matching [ErrInvalid] and, more precisely, one of the reasons in this
// package's error block. Any other error (a failed revocation look-up, say)
// means validity is unknown; callers must treat the token as not valid.
// The signature is checked, by the routine that checks revocation
// documents too, before anything of the claims is read.
func (v *Verifier) Verify(ctx context.Context, s string) (Claims, error) {
	c, err := v.verifySignature(ctx, s)
	if err != nil {
		return Claims{}, err
	}
	if v.revocation != nil {
		revoked, err := v.revocation.IsRevoked(ctx, c.ID)
		if err != nil {
			return Claims{}, fmt.Errorf("check revocation: %w", err)
		}
		if revoked {
			return Claims{}, ErrRevoked
		}
		if r, ok := v.revocation.(retentionReporter); ok {
			// Past exp + retain the id is off the list: whether the
			// token was closed is unknowable, so it is expired here
			// whatever the leeway.
			if retain := r.Retention(); retain < v.leeway && !v.now().Before(c.Expires.Add(retain)) {
				return Claims{}, &detailed{ErrExpired, fmt.Errorf("expired at %s; the revocation list keeps ids only %s past expiry, less than the leeway of %s",
					c.Expires.Format(time.RFC3339), retain, v.leeway)}
			}
		}
	}
	return c, nil
}

// retentionReporter is a [RevocationChecker] that says how long after a
// token's expiry it still knows whether the token was revoked, such as
// [RevocationFeed].
type retentionReporter interface {
	Retention() time.Duration
}

// VerifyIgnoringRevocation is Verify without the revocation check.
func (v *Verifier) VerifyIgnoringRevocation(ctx context.Context, s string) (Claims, error) {
	return v.verifySignature(ctx, s)
}

func (v *Verifier) verifySignature(ctx context.Context, s string) (Claims, error) {
	if len(s) > MaxSize {
		return Claims{}, ErrTooLarge
	}
	if v.cache != nil {
		if e, ok := v.cache.get(s); ok {
			return v.verifyCached(ctx, s, e)
		}
	}
	if v.slow != nil {
		select {
		case v.slow <- struct{}{}:
			defer func() { <-v.slow }()
		case <-ctx.Done():
			return Claims{}, fmt.Errorf("wait to verify: %w", ctx.Err())
		}
	}
	sj, err := v.verifyJWS(ctx, s, Type)
	if err != nil {
		return Claims{}, err
	}
	raw, err := b64.Strict().DecodeString(sj.payload)
	if err != nil {
		return Claims{}, &detailed{ErrMalformed, fmt.Errorf("claims: %w", err)}
	}
	var rc claims
	if err := json.Unmarshal(raw, &rc); err != nil {
		return Claims{}, &detailed{ErrMalformed, fmt.Errorf("claims: %w", err)}
	}
	if err := v.validator.Validate(&rc); err != nil {
		return Claims{}, classify(err)
	}
	kid, alg, key := sj.kid, sj.alg, sj.key
	id, err := uuid.Parse(rc.ID)
	if err != nil || len(rc.ID) != 36 {
		return Claims{}, fmt.Errorf("%w: jti is not a UUID", ErrMalformed)
	}
	if rc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: no iat", ErrMalformed)
	}
	// Checked here rather than by jwt.WithAudience, which calls a missing
	// "aud" a missing claim rather than the wrong audience.
	if v.audience != "" && !slices.Contains(rc.Audience, v.audience) {
		return Claims{}, fmt.Errorf("%w: want %q, have %q", ErrAudience, v.audience, rc.Audience)
	}
	c := Claims{
		ID:       id,
		KeyID:    kid,
		Issuer:   rc.Issuer,
		IssuedAt: rc.IssuedAt.UTC(),
		Expires:  rc.ExpiresAt.UTC(),
	}
	if v.cache != nil {
		v.cache.put(s, cached{claims: c, alg: alg, key: key})
	}
	return c, nil
}

// verifyCached finishes the verification of a token whose signature
// verified before.
func (v *Verifier) verifyCached(ctx context.Context, s string, e cached) (Claims, error) {
	alg, key, err := v.keys.VerificationKey(ctx, e.claims.KeyID)
	if errors.Is(err, ErrKeysUnavailable) {
		return Claims{}, err
	}
	if err != nil {
		v.cache.delete(s)
		return Claims{}, &detailed{ErrUnknownKey, err}
	}
	if err := v.stillValid(e, v.now(), alg, key); err != nil {
		v.cache.delete(s)
		return Claims{}, err
	}
	return e.claims, nil
}

// claims are the registered claims, read strictly: "exp", "iat" and "nbf",
// when present, must be JSON integers from 0 to maxNumericDate, as Issue
// writes them. golang-jwt alone also takes a string ("9999999999"), a
// fraction or an exponent, and turns values past time.Time's range into
// arbitrary times (1e300 "expired", 9.2e18 "never expires"); other JWT
// libraries read such claims differently or not at all.
type claims struct{ jwt.RegisteredClaims }

// maxNumericDate is 9999-12-31T23:59:59Z in Unix seconds.
const maxNumericDate = 253402300799

func (c *claims) UnmarshalJSON(data []byte) error {
	// One decoding pass: the dates as raw JSON, checked and converted here,
	// the rest as RegisteredClaims would read them (encoding/json matches
	// member names case-insensitively, the last duplicate winning).
	var raw struct {
		Issuer   string           `json:"iss"`
		Subject  string           `json:"sub"`
		Audience jwt.ClaimStrings `json:"aud"`
		ID       string           `json:"jti"`
		Exp      json.RawMessage  `json:"exp"`
		Iat      json.RawMessage  `json:"iat"`
		Nbf      json.RawMessage  `json:"nbf"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	c.RegisteredClaims = jwt.RegisteredClaims{Issuer: raw.Issuer, Subject: raw.Subject, Audience: raw.Audience, ID: raw.ID}
	for _, d := range []struct {
		raw json.RawMessage
		dst **jwt.NumericDate
	}{{raw.Exp, &c.ExpiresAt}, {raw.Iat, &c.IssuedAt}, {raw.Nbf, &c.NotBefore}} {
		if d.raw == nil {
			continue
		}
		n, err := strconv.ParseUint(string(d.raw), 10, 64)
		if err != nil || n > maxNumericDate {
			return fmt.Errorf("exp, iat and nbf must be whole seconds from 0 to %d", maxNumericDate)
		}
		*d.dst = jwt.NewNumericDate(time.Unix(int64(n), 0))
	}
	return nil
}

// classify turns a golang-jwt error into one of this package's reasons,
// keeping the original for its detail.
func classify(err error) error {
	if errors.Is(err, ErrKeysUnavailable) {
		return err
	}
	var r *reason
	if errors.As(err, &r) {
		return &detailed{r, err}
	}
	for _, m := range []struct{ jwt, ours error }{
		{jwt.ErrTokenMalformed, ErrMalformed},
		{jwt.ErrTokenSignatureInvalid, ErrSignature},
		{jwt.ErrTokenExpired, ErrExpired},
		{jwt.ErrTokenUsedBeforeIssued, ErrNotYetValid},
		{jwt.ErrTokenNotValidYet, ErrNotYetValid},
		{jwt.ErrTokenInvalidIssuer, ErrIssuer},
		// Left over from the keyfunc's reasons: an "alg" that names no
		// signing method ("None", "RSA-OAEP") or none at all. Like one
		// outside WithValidMethods ("none", "HS256"), which golang-jwt
		// calls an invalid signature, no signature under it is acceptable.
		{jwt.ErrTokenUnverifiable, ErrSignature},
	} {
		if errors.Is(err, m.jwt) {
			return &detailed{m.ours, err}
		}
	}
	return &detailed{ErrMalformed, err}
}

// detailed is a reason with the error that gave rise to it.
type detailed struct{ reason, detail error }

func (d *detailed) Error() string {
	msg := d.detail.Error()
	if strings.HasPrefix(msg, d.reason.Error()) {
		return msg
	}
	return d.reason.Error() + ": " + msg
}

func (d *detailed) Unwrap() []error { return []error{d.reason, d.detail} }
