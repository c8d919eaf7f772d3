package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/internal/jose"
)

// verifySignature's two paths, golang-jwt's signing methods (tokens) and
// the direct check (large documents), give the same answer for every
// algorithm, key and tampering: right signatures pass, altered messages,
// signatures, truncations and keys of the wrong type or algorithm fail.
func TestVerifyPathsAgree(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	keys := map[string]crypto.Signer{"EdDSA": edKey, "ES256": ecKey, "RS256": rsaKey}
	for alg, key := range keys {
		msg := "eyJhbGciOiJFZERTQSJ9." + strings.Repeat("x", 300)
		sig, err := jose.Sign(alg, key, []byte(msg))
		if err != nil {
			t.Fatalf("Sign(%s) = %v", alg, err)
		}
		flipped := append([]byte(nil), sig...)
		flipped[len(flipped)/2] ^= 1
		cases := []struct {
			name string
			alg  string
			key  crypto.PublicKey
			msg  string
			sig  []byte
			ok   bool
		}{
			{"right", alg, key.Public(), msg, sig, true},
			{"message altered", alg, key.Public(), msg + "y", sig, false},
			{"signature altered", alg, key.Public(), msg, flipped, false},
			{"signature truncated", alg, key.Public(), msg, sig[:len(sig)-1], false},
			{"no signature", alg, key.Public(), msg, nil, false},
		}
		for other, k := range keys {
			if other != alg {
				cases = append(cases, struct {
					name string
					alg  string
					key  crypto.PublicKey
					msg  string
					sig  []byte
					ok   bool
				}{"key of " + other, alg, k.Public(), msg, sig, false})
			}
		}
		for _, c := range cases {
			viaJWT := verifySignature(c.alg, c.key, c.msg, c.sig)
			direct := verifyLarge(c.alg, c.key, []byte(c.msg), c.sig)
			if (viaJWT == nil) != c.ok || (direct == nil) != c.ok {
				t.Errorf("%s, %s: golang-jwt path %v, direct path %v; want ok %v", alg, c.name, viaJWT, direct, c.ok)
			}
		}
	}
	for _, key := range []crypto.PublicKey{(*ecdsa.PublicKey)(nil), (*rsa.PublicKey)(nil), ed25519.PublicKey(nil), nil} {
		for alg := range keys {
			if verifySignature(alg, key, "a.b", make([]byte, 64)) == nil || verifyLarge(alg, key, []byte("a.b"), make([]byte, 64)) == nil {
				t.Errorf("%s with the key %#v verified", alg, key)
			}
		}
	}
	if err := verifySignature("HS256", []byte("k"), "a.b", []byte("s")); err == nil {
		t.Error("HS256 verified")
	}
}
