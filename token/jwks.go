package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
)

// PublicKey is one verification key: its id, its JOSE algorithm and the
// key itself (ed25519.PublicKey, *ecdsa.PublicKey on P-256, or
// *rsa.PublicKey).
type PublicKey struct {
	ID        string
	Algorithm string
	Key       crypto.PublicKey
}

// jwk is the JSON form of a public key (RFC 7517, RFC 7518 §6, RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Kid string `json:"kid,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`

	// Private members: never written; a set that has them is refused.
	D  string `json:"d,omitempty"`
	P  string `json:"p,omitempty"`
	Q  string `json:"q,omitempty"`
	DP string `json:"dp,omitempty"`
	DQ string `json:"dq,omitempty"`
	QI string `json:"qi,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

var b64 = base64.RawURLEncoding

// MarshalJWKS returns the JWK Set (RFC 7517 §5) of keys: public members
// only, each with "kid", "alg" and "use": "sig".
func MarshalJWKS(keys []PublicKey) ([]byte, error) {
	set := jwkSet{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		j := jwk{Use: "sig", Alg: k.Algorithm, Kid: k.ID}
		switch pub := k.Key.(type) {
		case ed25519.PublicKey:
			j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64.EncodeToString(pub)
		case *ecdsa.PublicKey:
			point, err := pub.Bytes()
			if err != nil || pub.Curve != elliptic.P256() {
				return nil, fmt.Errorf("jwks: key %s: only P-256 ECDSA keys are supported", k.ID)
			}
			j.Kty, j.Crv = "EC", "P-256"
			j.X, j.Y = b64.EncodeToString(point[1:33]), b64.EncodeToString(point[33:])
		case *rsa.PublicKey:
			j.Kty = "RSA"
			j.N = b64.EncodeToString(pub.N.Bytes())
			j.E = b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
		default:
			return nil, fmt.Errorf("jwks: key %s: unsupported key type %T", k.ID, k.Key)
		}
		set.Keys = append(set.Keys, j)
	}
	return json.Marshal(set)
}

// JWKS is a fixed set of verification keys; it is a [KeySource].
type JWKS struct {
	keys []PublicKey
	byID map[string]int // index in keys
}

// MaxJWKSKeys is the most keys a JWK Set may hold, counting those that
// [ParseJWKS] skips. sessiond publishes a handful (next, active and retired
// keys); a set of more is refused rather than searched.
const MaxJWKSKeys = 1000

// ErrJWKS means a JWK Set could not be used.
var ErrJWKS = errors.New("invalid JWK set")

// ParseJWKS parses a JWK Set. Keys for other uses ("use" other than "sig")
// and of unknown types are skipped; a key with private members, without a
// "kid", with an algorithm that does not fit it, or with bad parameters makes
// the whole set an error, since it cannot be what the issuer meant to publish.
// So does a set of more than [MaxJWKSKeys] keys.
func ParseJWKS(data []byte) (*JWKS, error) {
	var set jwkSet
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
		k, err := j.publicKey()
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

func (j jwk) publicKey() (PublicKey, error) {
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
