// Package issue is the server side of sessiond's tokens: it signs new
// session tokens ([Issuer]), revocation documents ([SignRevocations]) and
// publishes verification keys as a JWK Set ([MarshalJWKS]). Every document
// it makes is one that package token verifies; a program that only
// verifies never imports this package.
//
// # Start here
//
// [New] returns an [Issuer] over the [SigningKeys] that give the active key
// (keys.Keyring implements it). The server's handlers in package publish
// sign the revocation feed and serve the JWK Set with the same keys.
package issue

import (
	"crypto"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/token"
)

// SigningKeys gives the key that signs new tokens and documents: its id,
// its JOSE algorithm name and the private key. keys.Keyring implements it.
type SigningKeys interface {
	SigningKey() (kid, alg string, key crypto.Signer, err error)
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

// An Option configures an [Issuer].
type Option func(*Issuer)

// WithIssuer sets the "iss" claim of new tokens (default and empty:
// token.DefaultIssuer). A verifier must require the same (token.WithIssuer).
func WithIssuer(name string) Option { return func(i *Issuer) { i.name = name } }

// WithClock sets the clock that dates new tokens (default time.Now).
func WithClock(now func() time.Time) Option { return func(i *Issuer) { i.now = now } }

// New returns an Issuer that signs with the active key of keys.
func New(keys SigningKeys, opts ...Option) *Issuer {
	i := &Issuer{keys: keys}
	for _, opt := range opts {
		opt(i)
	}
	if i.name == "" {
		i.name = token.DefaultIssuer
	}
	if i.now == nil {
		i.now = time.Now
	}
	i.issJSON, _ = json.Marshal(i.name) // a string always encodes
	return i
}

// Issue signs a token valid for lifetime (whole seconds) from now, with no
// subject: IssueFor with subject "".
func (i *Issuer) Issue(lifetime time.Duration) (string, token.Claims, error) {
	return i.IssueFor("", lifetime)
}

// IssueFor signs a token valid for lifetime (whole seconds) from now whose
// "sub" claim is subject; "" means no "sub" at all. A subject that is not a
// [token.ValidSubject] is an error, and nothing is signed.
//
// The signing input is assembled here rather than by jwt.Token.SignedString,
// which marshals a header map and a claims struct through reflection on
// every call; the signature goes through the crypto.Signer interface, as
// for revocation documents (keys.Key's signer is opaque, so that it never
// prints).
func (i *Issuer) IssueFor(subject string, lifetime time.Duration) (string, token.Claims, error) {
	if subject != "" && !token.ValidSubject(subject) {
		return "", token.Claims{}, fmt.Errorf("issue token: the subject must be 1 to %d bytes of valid UTF-8 without control characters", token.MaxSubjectSize)
	}
	kid, alg, key, err := i.keys.SigningKey()
	if err != nil {
		return "", token.Claims{}, fmt.Errorf("issue token: %w", err)
	}
	if jwt.GetSigningMethod(alg) == nil {
		return "", token.Claims{}, fmt.Errorf("issue token: unsupported algorithm %q", alg)
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return "", token.Claims{}, fmt.Errorf("issue token: %w", err)
	}
	c := token.Claims{
		ID:       id,
		KeyID:    kid,
		Issuer:   i.name,
		Subject:  subject,
		IssuedAt: i.now().UTC().Truncate(time.Second),
	}
	c.Expires = c.IssuedAt.Add(lifetime.Truncate(time.Second))

	var scratch [160]byte
	claims := append(scratch[:0], `{"iss":`...)
	claims = append(claims, i.issJSON...)
	if subject != "" {
		claims = append(claims, `,"sub":"`...)
		claims = appendJSONString(claims, subject)
		claims = append(claims, '"')
	}
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
	tok = jose.B64.AppendEncode(tok, claims)
	sig, err := jose.Sign(alg, key, tok)
	if err != nil {
		return "", token.Claims{}, fmt.Errorf("issue token: %w", err)
	}
	tok = append(tok, '.')
	tok = jose.B64.AppendEncode(tok, sig)
	return string(tok), c, nil
}

// appendJSONString appends s, a [token.ValidSubject], as the inside of a
// JSON string: with no control characters in it, only '"' and '\' need
// escaping, and valid UTF-8 goes as is.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return dst
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
	}{alg, kid, jose.TypeSession})
	h := &headerSegment{kid: kid, alg: alg, encoded: jose.B64.EncodeToString(header)}
	i.header.Store(h)
	return h.encoded
}
