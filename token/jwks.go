package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"

	"github.com/sessiond/sessiond/internal/jose"
)

// PublicKey is one verification key: its id, its JOSE algorithm and the
// key itself (ed25519.PublicKey, *ecdsa.PublicKey on P-256, or
// *rsa.PublicKey).
type PublicKey struct {
	ID        string
	Algorithm string
	Key       crypto.PublicKey
}

var b64 = jose.B64

// b64Strict is b64 that refuses non-canonical trailing bits; made once,
// since Strict returns a new Encoding.
var b64Strict = jose.B64.Strict()

// JWKS is a fixed set of verification keys; it is a [KeySource].
type JWKS struct {
	keys []PublicKey
	byID map[string]int // index in keys
}

// MaxJWKSKeys is the most keys a JWK Set may hold, counting those that
// [ParseJWKS] skips. sessiond publishes a handful (next, active and retired
// keys); a set of more is refused rather than searched.
const MaxJWKSKeys = 1000

// ParseJWKS parses a JWK Set. Keys for other uses ("use" other than "sig")
// and of unknown types are skipped; a key with private members, without a
// "kid", with an algorithm that does not fit it, or with bad parameters makes
// the whole set an error, since it cannot be what the issuer meant to publish.
// So does a set of more than [MaxJWKSKeys] keys.
func ParseJWKS(data []byte) (*JWKS, error) {
	var set jose.JWKSet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	if set.Keys == nil {
		return nil, fmt.Errorf("%w: no \"keys\" member", ErrJWKS)
	}
	if len(set.Keys) > MaxJWKSKeys {
		return nil, fmt.Errorf("%w: %d keys; a set may hold at most %d, so publish only the keys in use", ErrJWKS, len(set.Keys), MaxJWKSKeys)
	}
	s := &JWKS{byID: make(map[string]int, len(set.Keys))}
	for i, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		if j.D != "" || j.P != "" || j.Q != "" || j.DP != "" || j.DQ != "" || j.QI != "" {
			return nil, fmt.Errorf("%w: key %d has private key members", ErrJWKS, i)
		}
		if j.Kid == "" {
			return nil, fmt.Errorf("%w: key %d has no kid", ErrJWKS, i)
		}
		k, err := publicKey(j)
		if errors.Is(err, errUnsupportedKey) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: key %s: %v", ErrJWKS, j.Kid, err)
		}
		if _, ok := s.byID[k.ID]; ok {
			return nil, fmt.Errorf("%w: kid %s appears twice", ErrJWKS, k.ID)
		}
		s.byID[k.ID] = len(s.keys)
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// LoadJWKS reads a JWK Set from a file.
func LoadJWKS(path string) (*JWKS, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseJWKS(data)
}

var errUnsupportedKey = errors.New("unsupported key type")

func publicKey(j jose.JWK) (PublicKey, error) {
	k := PublicKey{ID: j.Kid, Algorithm: j.Alg}
	var want string // the only algorithm the key type allows
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return k, errors.New("bad x")
		}
		k.Key, want = ed25519.PublicKey(x), "EdDSA"
	case j.Kty == "EC" && j.Crv == "P-256":
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return k, errors.New("bad x or y")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), slices.Concat([]byte{4}, x, y))
		if err != nil {
			return k, err // not on the curve
		}
		k.Key, want = pub, "ES256"
	case j.Kty == "RSA":
		n, errN := b64.DecodeString(j.N)
		e, errE := b64.DecodeString(j.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return k, errors.New("bad n or e")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if bits := pub.N.BitLen(); bits < 2048 || bits > 8192 || pub.E < 3 || pub.E%2 == 0 {
			return k, fmt.Errorf("weak or malformed RSA key (%d bits, e=%d)", bits, pub.E)
		}
		k.Key, want = pub, "RS256"
	default:
		return k, errUnsupportedKey
	}
	// RFC 8725 §3.1: each key is used with one algorithm. A missing "alg"
	// can only mean the one this key type allows.
	switch k.Algorithm {
	case "":
		k.Algorithm = want
	case want:
	default:
		return k, fmt.Errorf("alg %q does not fit a %s key", k.Algorithm, j.Kty)
	}
	return k, nil
}

// Keys returns the keys of the set.
func (s *JWKS) Keys() []PublicKey { return slices.Clone(s.keys) }

// VerificationKey implements [KeySource].
func (s *JWKS) VerificationKey(_ context.Context, kid string) (alg string, key crypto.PublicKey, err error) {
	if i, ok := s.byID[kid]; ok {
		return s.keys[i].Algorithm, s.keys[i].Key, nil
	}
	return "", nil, fmt.Errorf("no key %q in the JWK set", kid)
}
