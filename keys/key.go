package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"time"
)

// Algorithm is a JOSE signature algorithm name ("alg").
type Algorithm string

// The algorithms a key can have. EdDSA (Ed25519) is the default; ES256 and
// RS256 are there for clients whose JOSE libraries lack EdDSA.
const (
	EdDSA Algorithm = "EdDSA"
	ES256 Algorithm = "ES256"
	RS256 Algorithm = "RS256"
)

// RSA key sizes, in bits.
const (
	DefaultRSABits = 2048
	MaxRSABits     = 4096
)

// ParseAlgorithm returns the Algorithm named s, or ErrAlgorithm.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(s); a {
	case EdDSA, ES256, RS256:
		return a, nil
	}
	return "", fmt.Errorf("%w: %q (use EdDSA, ES256 or RS256)", ErrAlgorithm, s)
}

// A Key is one signing key with its lifecycle times. The private half never
// prints: String and LogValue show only the key id and algorithm.
type Key struct {
	// ID is the key id ("kid"): the RFC 7638 JWK thumbprint of the public key,
	// base64url without padding.
	ID        string
	Algorithm Algorithm
	// Created is when the key was generated.
	Created time.Time
	// Activates is when the key starts signing new tokens. Before that it is
	// published ("next") so that verifiers know it in advance.
	Activates time.Time

	signer crypto.Signer
}

// Generate makes a new key for alg. bits is the RSA modulus size (0 means
// DefaultRSABits) and is ignored for other algorithms.
func Generate(alg Algorithm, bits int, created, activates time.Time) (*Key, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		if bits == 0 {
			bits = DefaultRSABits
		}
		if bits < DefaultRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("%w: RSA keys must have %d to %d bits, not %d", ErrAlgorithm, DefaultRSABits, MaxRSABits, bits)
		}
		signer, err = rsa.GenerateKey(rand.Reader, bits)
	default:
		_, err = ParseAlgorithm(string(alg))
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return newKey(alg, signer, created, activates)
}

// newKey checks that signer suits alg and derives the key id.
func newKey(alg Algorithm, signer crypto.Signer, created, activates time.Time) (*Key, error) {
	if err := checkAlgorithm(alg, signer.Public()); err != nil {
		return nil, err
	}
	kid, err := Thumbprint(signer.Public())
	if err != nil {
		return nil, err
	}
	return &Key{
		ID:        kid,
		Algorithm: alg,
		Created:   created.UTC().Truncate(time.Second),
		// Not truncated: that would move a key's activation up to a second
		// earlier, cutting into its propagation delay, and would let a key
		// added with --now tie with one activated earlier in the same second
		// (the tie then goes by kid, so the new key might never sign).
		Activates: activates.UTC(),
		signer:    signer,
	}, nil
}

func checkAlgorithm(alg Algorithm, pub crypto.PublicKey) error {
	ok := false
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		ok = alg == EdDSA
	case *ecdsa.PublicKey:
		ok = alg == ES256 && pub.Curve == elliptic.P256()
	case *rsa.PublicKey:
		ok = alg == RS256 && pub.N.BitLen() >= DefaultRSABits && pub.N.BitLen() <= MaxRSABits
	}
	if !ok {
		return fmt.Errorf("%w: %s does not fit a %T", ErrAlgorithm, alg, pub)
	}
	return nil
}

// Signer returns the private key.
func (k *Key) Signer() crypto.Signer { return k.signer }

// Public returns the public key: ed25519.PublicKey, *ecdsa.PublicKey or
// *rsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// String describes the key without its secret.
func (k *Key) String() string { return fmt.Sprintf("%s key %s", k.Algorithm, k.ID) }

// LogValue makes slog print the key id and algorithm, never the private key.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.ID), slog.String("alg", string(k.Algorithm)))
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding) of an Ed25519, P-256 ECDSA or RSA public key.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	// RFC 7638 §3.2: the required members only, in lexicographic order, no
	// white space. json.Marshal of a map sorts the keys.
	var members map[string]string
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		members = map[string]string{"crv": "Ed25519", "kty": "OKP", "x": b64(pub)}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: only P-256 ECDSA keys are supported", ErrAlgorithm)
		}
		ecdh, err := pub.ECDH()
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrAlgorithm, err)
		}
		point := ecdh.Bytes() // 0x04 || X || Y, 32 bytes each
		members = map[string]string{"crv": "P-256", "kty": "EC", "x": b64(point[1:33]), "y": b64(point[33:])}
	case *rsa.PublicKey:
		members = map[string]string{"e": b64(big.NewInt(int64(pub.E)).Bytes()), "kty": "RSA", "n": b64(pub.N.Bytes())}
	default:
		return "", fmt.Errorf("%w: unsupported public key type %T", ErrAlgorithm, pub)
	}
	canonical, err := json.Marshal(members)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canonical)
	return b64(sum[:]), nil
}
