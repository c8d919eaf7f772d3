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
	"io"
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
// prints, by any fmt verb, log or slog handler, or encoding/json, whether
// the Key is printed itself, by pointer, or inside a slice, map or struct:
// a Key formats as its algorithm and id, and what holds the private key
// ([Key.Signer]) formats as a fixed placeholder.
type Key struct {
	// ID is the key id ("kid"): the RFC 7638 JWK thumbprint of the public key,
	// base64url without padding.
	ID        string
	Algorithm Algorithm

	// created and activates order the key in its [Set], so they are set
	// only by [Generate] and the lifecycle methods ([Set.First],
	// [Set.Rotate]), and read through [Key.Created] and [Key.Activates].
	created   time.Time
	activates time.Time

	priv *privateKey
}

// Created returns when the key was made (to the second, UTC).
func (k *Key) Created() time.Time { return k.created }

// Activates returns when the key starts signing new tokens (UTC). Before
// that it is published ("next") so that verifiers know it in advance.
func (k *Key) Activates() time.Time { return k.activates }

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
		created:   created.UTC().Truncate(time.Second),
		// Not truncated: that would move a key's activation up to a second
		// earlier, cutting into its propagation delay, and would let a key
		// added with --now tie with one activated earlier in the same second
		// (the tie then goes by kid, so the new key might never sign).
		activates: activates.UTC(),
		priv:      newPrivateKey(signer),
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

// Signer returns the private key as a crypto.Signer that never prints. Its
// concrete type is unexported: sign through the crypto.Signer interface
// (for EdDSA with crypto.Hash(0), for ES256 and RS256 a SHA-256 digest with
// crypto.SHA256; ECDSA signatures come in ASN.1 DER).
func (k *Key) Signer() crypto.Signer { return k.priv }

// Public returns the public key: ed25519.PublicKey, *ecdsa.PublicKey or
// *rsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.priv.Public() }

// String describes the key without its secret: "EdDSA key KID".
func (k Key) String() string { return fmt.Sprintf("%s key %s", k.Algorithm, k.ID) }

// GoString is what %#v prints: the id, algorithm and times, never the
// private key.
func (k Key) GoString() string {
	return fmt.Sprintf("keys.Key{ID:%q, Algorithm:%q, Created:%#v, Activates:%#v}", k.ID, k.Algorithm, k.created, k.activates)
}

// Format prints the key's String for every verb (GoString for %#v), so
// that no verb reaches the private key through reflection.
func (k Key) Format(f fmt.State, verb rune) { format(f, verb, k.String(), k.GoString()) }

// LogValue makes slog print the key id and algorithm, never the private key.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.ID), slog.String("alg", string(k.Algorithm)))
}

// redacted is what a private key prints as.
const redacted = "[redacted private key]"

// privateKey is a private key that never prints. Keys hold it by pointer,
// and it holds the key inside a closure: fmt prints the fields of structs,
// the elements of slices and what pointers point to by reflection, even
// behind unexported fields whose methods it cannot call (a bad verb such as
// %s on a struct prints a pointer field's target at full depth), but a func
// it prints only as an address.
type privateKey struct {
	key func() crypto.Signer
}

func newPrivateKey(s crypto.Signer) *privateKey {
	return &privateKey{key: func() crypto.Signer { return s }}
}

// Public returns the public key.
func (p privateKey) Public() crypto.PublicKey { return p.key().Public() }

// Sign signs digest with the private key (see crypto.Signer).
func (p privateKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return p.key().Sign(rand, digest, opts)
}

func (privateKey) String() string   { return redacted }
func (privateKey) GoString() string { return redacted }

func (privateKey) Format(f fmt.State, verb rune) { format(f, verb, redacted, redacted) }

func (privateKey) LogValue() slog.Value { return slog.StringValue(redacted) }

func (privateKey) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

func (privateKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// format prints s as the directive (verb and flags) asks, or gs for %#v.
func format(f fmt.State, verb rune, s, gs string) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, gs)
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s)
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
