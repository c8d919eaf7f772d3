package issue_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/token"
)

// signer is a key set of one key, the active one.
type signer struct {
	kid, alg string
	key      crypto.Signer
	err      error
}

func (s *signer) SigningKey() (string, string, crypto.Signer, error) {
	return s.kid, s.alg, s.key, s.err
}

// newSigner returns a signer of a new key for alg (EdDSA, ES256, RS256).
func newSigner(t *testing.T, kid, alg string) *signer {
	t.Helper()
	var key crypto.Signer
	var err error
	switch alg {
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil || key == nil {
		t.Fatalf("generate %s key: %v", alg, err)
	}
	return &signer{kid: kid, alg: alg, key: key}
}

// verifierOf returns a verifier of the keys' published JWK Set, written by
// MarshalJWKS and read by token.ParseJWKS, at the clock now.
func verifierOf(t *testing.T, now time.Time, keys ...*signer) *token.Verifier {
	t.Helper()
	pub := make([]token.PublicKey, len(keys))
	for i, k := range keys {
		pub[i] = token.PublicKey{ID: k.kid, Algorithm: k.alg, Key: k.key.Public()}
	}
	doc, err := issue.MarshalJWKS(pub)
	if err != nil {
		t.Fatalf("MarshalJWKS() = %v", err)
	}
	set, err := token.ParseJWKS(doc)
	if err != nil {
		t.Fatalf("ParseJWKS(MarshalJWKS()) = %v", err)
	}
	return token.NewVerifier(set, token.WithClock(func() time.Time { return now }))
}

// Every algorithm the key file supports signs tokens that the offline
// verifier accepts through the JWK Set, with the claims Issue reports, and
// that golang-jwt's own parser accepts too (an independent reader of the
// format).
func TestIssueVerifies(t *testing.T) {
	now := time.Unix(1_800_000_000, 700_000_000)
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			k := newSigner(t, "k-"+alg, alg)
			iss := issue.New(k, issue.WithClock(func() time.Time { return now }))
			tok, c, err := iss.IssueFor(`a"b\c é`, 90*time.Minute+1500*time.Millisecond)
			if err != nil {
				t.Fatalf("IssueFor() = %v", err)
			}
			if want := now.Truncate(time.Second); !c.IssuedAt.Equal(want) {
				t.Errorf("IssuedAt = %v, want %v (whole seconds)", c.IssuedAt, want)
			}
			if got, want := c.Expires.Sub(c.IssuedAt), 90*time.Minute+time.Second; got != want {
				t.Errorf("lifetime = %v, want %v (whole seconds)", got, want)
			}
			got, err := verifierOf(t, now, k).Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			if got.ID != c.ID || got.Subject != c.Subject || got.KeyID != k.kid || got.Issuer != token.DefaultIssuer ||
				!got.Expires.Equal(c.Expires) || !got.IssuedAt.Equal(c.IssuedAt) {
				t.Errorf("Verify() = %+v, want %+v", got, c)
			}

			parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return k.key.Public(), nil },
				jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(func() time.Time { return now }))
			if err != nil {
				t.Fatalf("jwt.Parse() = %v", err)
			}
			claims := parsed.Claims.(jwt.MapClaims)
			if claims["sub"] != `a"b\c é` || claims["jti"] != c.ID.String() || parsed.Header["kid"] != k.kid || parsed.Header["typ"] != "session+jwt" {
				t.Errorf("jwt.Parse() header %v claims %v", parsed.Header, claims)
			}
		})
	}
}

// A token without a subject has no "sub" at all, and every token gets a
// fresh random (version 4) id.
func TestIssueWithoutSubject(t *testing.T) {
	k := newSigner(t, "k1", "EdDSA")
	iss := issue.New(k, issue.WithIssuer("login.example"))
	seen := map[uuid.UUID]bool{}
	for range 100 {
		tok, c, err := iss.Issue(time.Hour)
		if err != nil {
			t.Fatalf("Issue() = %v", err)
		}
		if c.ID.Version() != 4 || seen[c.ID] {
			t.Fatalf("Issue() id %v: want a new version 4 UUID", c.ID)
		}
		seen[c.ID] = true
		parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
		if err != nil {
			t.Fatalf("ParseUnverified() = %v", err)
		}
		if _, ok := parsed.Claims.(jwt.MapClaims)["sub"]; ok {
			t.Fatalf("token without a subject has a sub: %v", parsed.Claims)
		}
		if iss := parsed.Claims.(jwt.MapClaims)["iss"]; iss != "login.example" {
			t.Fatalf("iss = %v, want login.example", iss)
		}
	}
}

// What cannot be signed is refused, and nothing is signed: an invalid
// subject, a key set that has no key, an algorithm golang-jwt does not know.
func TestIssueRefuses(t *testing.T) {
	k := newSigner(t, "k1", "EdDSA")
	for _, subject := range []string{strings.Repeat("x", token.MaxSubjectSize+1), "a\nb", "\xff"} {
		if tok, _, err := issue.New(k).IssueFor(subject, time.Hour); err == nil || tok != "" {
			t.Errorf("IssueFor(%q) = %q, %v; want an error and no token", subject, tok, err)
		}
	}
	noKey := errors.New("no active key")
	if tok, _, err := issue.New(&signer{err: noKey}).Issue(time.Hour); !errors.Is(err, noKey) || tok != "" {
		t.Errorf("Issue() without a key = %q, %v; want an error wrapping %v", tok, err, noKey)
	}
	odd := &signer{kid: "k2", alg: "XS999", key: k.key}
	if tok, _, err := issue.New(odd).Issue(time.Hour); err == nil || !strings.Contains(err.Error(), "XS999") || tok != "" {
		t.Errorf("Issue() with alg XS999 = %q, %v; want an error naming it", tok, err)
	}
}

// The encoded header is remembered per key: after the active key changes,
// new tokens name the new key and verify under it, not the old one.
func TestIssueFollowsTheActiveKey(t *testing.T) {
	now := time.Now()
	old, next := newSigner(t, "old", "EdDSA"), newSigner(t, "next", "ES256")
	active := &signer{kid: old.kid, alg: old.alg, key: old.key}
	iss := issue.New(active)
	v := verifierOf(t, now, old, next)
	for _, k := range []*signer{old, next, old} {
		*active = *k
		tok, _, err := iss.Issue(time.Hour)
		if err != nil {
			t.Fatalf("Issue() = %v", err)
		}
		c, err := v.Verify(context.Background(), tok)
		if err != nil || c.KeyID != k.kid {
			t.Fatalf("Verify() = %+v, %v; want a token of key %s", c, err, k.kid)
		}
	}
}

// A signed revocation list reads back as what was signed, cutoffs and all;
// lists that break the format's rules are refused before anything is
// signed.
func TestSignRevocations(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := newSigner(t, "k1", "EdDSA")
	a, b := uuid.New(), uuid.New()
	list := &token.RevocationList{
		Issuer: token.DefaultIssuer, IssuedAt: now, FreshUntil: now.Add(time.Minute),
		Epoch: "e1", Seq: 7, Since: 5, Retain: 30 * time.Second,
		Revoked: []token.Revoked{{ID: b, Expires: now.Add(time.Hour)}, {ID: a, Expires: now.Add(2 * time.Hour)}},
		Cutoffs: []token.Cutoff{{Subject: token.SubjectHash("alice"), At: now.Add(-time.Minute), Expires: now.Add(24 * time.Hour)}},
	}
	doc, err := issue.SignRevocations(k, list)
	if err != nil {
		t.Fatalf("SignRevocations() = %v", err)
	}
	got, err := verifierOf(t, now, k).ParseRevocations(context.Background(), string(doc))
	if err != nil {
		t.Fatalf("ParseRevocations() = %v", err)
	}
	if got.Seq != 7 || got.Since != 5 || got.Epoch != "e1" || got.Retain != 30*time.Second || got.Snapshot || got.KeyID != "k1" {
		t.Errorf("ParseRevocations() = %+v", got)
	}
	if len(got.Revoked) != 2 || len(got.Cutoffs) != 1 || got.Cutoffs[0].Subject != token.SubjectHash("alice") {
		t.Fatalf("ParseRevocations() revoked %v cutoffs %v", got.Revoked, got.Cutoffs)
	}
	for _, r := range got.Revoked {
		if want := map[uuid.UUID]time.Time{a: now.Add(2 * time.Hour), b: now.Add(time.Hour)}[r.ID]; !r.Expires.Equal(want) {
			t.Errorf("entry %v expires %v, want %v", r.ID, r.Expires, want)
		}
	}

	for name, bad := range map[string]token.RevocationList{
		"an id twice":             {IssuedAt: now, FreshUntil: now.Add(time.Minute), Revoked: []token.Revoked{{ID: a, Expires: now}, {ID: a, Expires: now}}},
		"a snapshot with a since": {IssuedAt: now, FreshUntil: now.Add(time.Minute), Snapshot: true, Since: 3},
		"fresh_until not after":   {IssuedAt: now, FreshUntil: now},
		"an expiry past 9999":     {IssuedAt: now, FreshUntil: now.Add(time.Minute), Revoked: []token.Revoked{{ID: a, Expires: time.Date(10000, 6, 1, 0, 0, 0, 0, time.UTC)}}},
	} {
		if doc, err := issue.SignRevocations(k, &bad); err == nil {
			t.Errorf("SignRevocations(%s) = %.40q…, want an error", name, doc)
		}
	}
}

// The JWK Set holds only what it can publish correctly.
func TestMarshalJWKSRefuses(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]token.PublicKey{
		"a P-384 key":  {ID: "p384", Algorithm: "ES384", Key: &p384.PublicKey},
		"a byte slice": {ID: "raw", Algorithm: "HS256", Key: []byte("secret")},
	} {
		if doc, err := issue.MarshalJWKS([]token.PublicKey{k}); err == nil || !strings.Contains(err.Error(), k.ID) {
			t.Errorf("MarshalJWKS(%s) = %s, %v; want an error naming the key", name, doc, err)
		}
	}
}
