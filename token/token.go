package token

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
)

// DefaultIssuer is the "iss" claim when none is configured.
const DefaultIssuer = "sessiond"

// MaxSize is the longest token Verify parses; a longer one is rejected
// unread. sessiond's tokens are 250 to 800 bytes long.
const MaxSize = 4096

// MaxSubjectSize is the longest "sub" claim, in bytes, that a session
// token may carry.
const MaxSubjectSize = 256

// Claims are what a valid token says.
type Claims struct {
	ID       uuid.UUID // jti
	KeyID    string    // kid of the key that signed it
	Issuer   string    // iss
	Subject  string    // sub; empty when the token has none
	IssuedAt time.Time // iat
	Expires  time.Time // exp
}

// ValidSubject reports whether s may be the "sub" of a session token: 1 to
// [MaxSubjectSize] bytes of valid UTF-8 without control characters (Unicode
// category Cc: U+0000 to U+001F and U+007F to U+009F). Verify refuses a
// token whose "sub" is anything else as malformed.
func ValidSubject(s string) bool {
	if len(s) == 0 || len(s) > MaxSubjectSize || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
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

// A Verifier checks session tokens: size, signature under the key named by
// "kid" with that key's algorithm only, "typ", "exp" (required), "iat" (not
// in the future), "nbf", "iss", and revocation when a checker or feed is
// configured. It is safe for concurrent use.
//
// A session token is a JWS compact-serialised JWT (RFC 7519):
//
//	header:  {"alg":"EdDSA","kid":"<RFC 7638 thumbprint>","typ":"session+jwt"}
//	claims:  {"iss":"sessiond","exp":1767225600,"iat":1764633600,"jti":"<UUID>"}
//
// with "sub" after "iss" when the session has a subject (see [ValidSubject]).
//
// Verification pins the algorithm to the key the "kid" names, whatever the
// header's "alg" says, and never follows "jku", "x5u" or "jwk" headers.
// Revocation documents ("typ" revocations+jwt, see [RevocationList]) go
// through the same check, and neither kind passes for the other.
type Verifier struct {
	keys       KeySource
	revocation RevocationChecker
	feed       *RevocationFeed     // of WithFeed; nil without
	checkers   []RevocationChecker // revocation, then feed, those set
	wantFeed   bool
	feedURL    string
	feedOpts   []FeedOption
	issuer     string
	leeway     time.Duration
	now        func() time.Time
	cacheSize  int
	// slow bounds the signature checks running at once (nil: no bound).
	slow  chan struct{}
	cache *cache
}

// An Option configures a [Verifier].
type Option func(*Verifier)

// WithIssuer sets the required "iss" claim (empty: DefaultIssuer).
func WithIssuer(iss string) Option { return func(v *Verifier) { v.issuer = iss } }

// WithLeeway allows for clock skew when checking "exp", "iat" and "nbf",
// and the "iat" of revocation documents.
func WithLeeway(d time.Duration) Option { return func(v *Verifier) { v.leeway = d } }

// WithClock sets the clock (default time.Now), for tokens and for the
// revocation feed alike.
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// WithRevocation makes Verify consult rc for every token that is otherwise
// valid (and the feed too, with [WithFeed]). If rc has a method
// Retention() time.Duration, as a [RevocationFeed] does, a token is expired
// once exp + min(leeway, Retention()) has passed: the leeway never outlasts
// rc's knowledge. If rc has a method
// Cutoff(ctx context.Context, subject string) (time.Time, bool, error), as
// a RevocationFeed does, a token with a "sub" whose "iat" is at or before
// that subject's cutoff is refused with [ErrSubjectClosed]; an error from
// Cutoff fails Verify as unknown.
func WithRevocation(rc RevocationChecker) Option { return func(v *Verifier) { v.revocation = rc } }

// WithFeed gives the Verifier a [RevocationFeed] that follows the
// revocation feed at url (sessiond's GET /revocations; empty for a feed
// that only loads files) and that Verify consults for every token that is
// otherwise valid. The feed verifies its documents with the Verifier's own
// key source, issuer, leeway and clock, so that the two cannot disagree;
// opts configure the rest. [Verifier.Feed] returns it, to run or load.
func WithFeed(url string, opts ...FeedOption) Option {
	return func(v *Verifier) { v.wantFeed, v.feedURL, v.feedOpts = true, url, opts }
}

// WithCache sets how many verified tokens the Verifier remembers, so that
// verifying one again skips the signature check (default [DefaultCacheSize];
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
		// As for issue.New. golang-jwt would take "" as "any iss, or none".
		v.issuer = DefaultIssuer
	}
	v.cache = newCache(v.cacheSize)
	if v.revocation != nil {
		v.checkers = append(v.checkers, v.revocation)
	}
	if v.wantFeed {
		v.feed = newRevocationFeed(v.feedURL, v, v.feedOpts)
		v.checkers = append(v.checkers, v.feed)
		v.feedOpts = nil
	}
	return v
}

// Feed returns the revocation feed of [WithFeed], nil without one. Verify
// consults it; the caller runs it ([RevocationFeed.Run]) or loads and
// syncs it by hand.
func (v *Verifier) Feed() *RevocationFeed { return v.feed }

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
	for _, rc := range v.checkers {
		revoked, err := rc.IsRevoked(ctx, c.ID)
		if err != nil {
			return Claims{}, fmt.Errorf("check revocation: %w", err)
		}
		if revoked {
			return Claims{}, ErrRevoked
		}
		if sc, ok := rc.(subjectCutoffs); ok && c.Subject != "" {
			at, ok, err := sc.Cutoff(ctx, c.Subject)
			if err != nil {
				return Claims{}, fmt.Errorf("check revocation: %w", err)
			}
			if ok && !c.IssuedAt.After(at) {
				return Claims{}, &detailed{ErrSubjectClosed, fmt.Errorf("issued at %s, at or before its subject's cutoff %s",
					c.IssuedAt.Format(time.RFC3339), at.UTC().Format(time.RFC3339))}
			}
		}
		if r, ok := rc.(retentionReporter); ok {
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

// subjectCutoffs is a [RevocationChecker] that also keeps per-subject
// cutoffs ("every session of this subject issued at or before this second
// is closed"), such as [RevocationFeed] (and sessiond's revocation store).
// Cutoff returns the subject's cutoff, a whole second, and whether it has
// one; an error means unknown, and Verify fails.
type subjectCutoffs interface {
	Cutoff(ctx context.Context, subject string) (at time.Time, ok bool, err error)
}

// retentionReporter is a [RevocationChecker] that says how long after a
// token's expiry it still knows whether the token was revoked, such as
// [RevocationFeed].
type retentionReporter interface {
	Retention() time.Duration
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
	sj, err := v.verifyJWS(ctx, s, jose.TypeSession)
	if err != nil {
		return Claims{}, err
	}
	var claimsBuf [claimsBufSize]byte
	raw, err := decodeSegmentInto(claimsBuf[:], sj.payload)
	if err != nil {
		return Claims{}, &detailed{ErrMalformed, fmt.Errorf("claims: %w", err)}
	}
	rc, err := parseClaims(raw)
	if err != nil {
		return Claims{}, &detailed{ErrMalformed, fmt.Errorf("claims: %w", err)}
	}
	c, err := v.checkClaims(&rc)
	if err != nil {
		return Claims{}, err
	}
	c.KeyID = sj.kid
	alg, key := sj.alg, sj.key
	if v.cache != nil {
		v.cache.put(&cached{tok: s, claims: c, alg: alg, key: key,
			expired: c.Expires.Add(v.leeway), issued: c.IssuedAt.Add(-v.leeway)})
	}
	return c, nil
}

// verifyCached finishes the verification of a token whose signature
// verified before.
func (v *Verifier) verifyCached(ctx context.Context, s string, e *cached) (Claims, error) {
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

// claimsBufSize is the stack buffer the claims of a token are decoded
// into: enough for sessiond's, with a subject of MaxSubjectSize bytes.
const claimsBufSize = 512

// maxNumericDate is 9999-12-31T23:59:59Z in Unix seconds.
const maxNumericDate = 253402300799

// checkClaims checks claims whose signature verified against the clock and
// the issuer, and returns them. "exp", "iat", "iss" and "jti" are
// required. When several checks fail, the reason is the first of:
// ErrExpired, ErrNotYetValid ("iat", then "nbf"), ErrIssuer, ErrMalformed
// (a required claim missing, "jti" not a UUID), the order golang-jwt's
// validator gave them in before this decoder replaced it.
func (v *Verifier) checkClaims(rc *tokenClaims) (Claims, error) {
	now := v.now()
	exp, iat := time.Unix(rc.exp, 0).UTC(), time.Unix(rc.iat, 0).UTC()
	switch {
	case rc.hasExp && !now.Before(exp.Add(v.leeway)):
		return Claims{}, &detailed{ErrExpired, fmt.Errorf("expired at %s", exp.Format(time.RFC3339))}
	case rc.hasIat && now.Before(iat.Add(-v.leeway)):
		return Claims{}, &detailed{ErrNotYetValid, fmt.Errorf("issued at %s, in the future", iat.Format(time.RFC3339))}
	case rc.hasNbf && now.Before(time.Unix(rc.nbf, 0).Add(-v.leeway)):
		return Claims{}, &detailed{ErrNotYetValid, fmt.Errorf("not valid before %s", time.Unix(rc.nbf, 0).UTC().Format(time.RFC3339))}
	case len(rc.iss) > 0 && (string(rc.iss) != v.issuer || !utf8.Valid(rc.iss)):
		return Claims{}, &detailed{ErrIssuer, fmt.Errorf("iss %q, want %q", string(rc.iss), v.issuer)}
	case len(rc.iss) == 0:
		return Claims{}, fmt.Errorf("%w: no iss", ErrMalformed)
	case !rc.hasExp:
		return Claims{}, fmt.Errorf("%w: no exp", ErrMalformed)
	}
	id, ok := parseUUID(rc.jti)
	if !ok {
		return Claims{}, fmt.Errorf("%w: jti is not a UUID", ErrMalformed)
	}
	if !rc.hasIat {
		return Claims{}, fmt.Errorf("%w: no iat", ErrMalformed)
	}
	c := Claims{ID: id, Issuer: v.issuer, IssuedAt: iat, Expires: exp}
	if rc.hasSub {
		c.Subject = string(rc.sub)
	}
	return c, nil
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
