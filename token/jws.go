package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// maxHeaderSize bounds the encoded JOSE header of a revocation document
// (a token's is bounded by MaxSize anyway); sessiond's are under 150 bytes.
const maxHeaderSize = MaxSize

// signed is a JWS whose signature verified: the key that verified it and
// the payload, still base64url-encoded.
type signed struct {
	kid, alg string
	key      crypto.PublicKey
	payload  string
}

// verifyJWS is the one JWS check of this package, for session tokens and
// revocation documents alike (RFC 7515 compact serialization, RFC 8725).
// It authenticates s before it decodes the payload, which may be large: it
// splits s into its three segments, decodes the header (at most
// maxHeaderSize bytes encoded), requires an "alg" of EdDSA, ES256 or RS256,
// "typ" typ, no "crit" and a "kid", asks v's key source for that key, pins
// the algorithm to the key's and checks the signature over the raw bytes of
// header and payload. Nothing of the payload is read before that.
//
// An error matches ErrInvalid and one reason (wrapped in *detailed), or
// ErrKeysUnavailable when the key source could not say whether the key
// exists: validity is unknown then.
func (v *Verifier) verifyJWS(ctx context.Context, s, typ string) (signed, error) {
	head, rest, ok1 := strings.Cut(s, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 {
		return signed{}, &detailed{ErrMalformed, errors.New("not three segments")}
	}
	if len(head) > maxHeaderSize {
		return signed{}, &detailed{ErrMalformed, fmt.Errorf("header of %d bytes, more than %d", len(head), maxHeaderSize)}
	}
	var headBuf [headerBufSize]byte
	raw, err := decodeSegmentInto(headBuf[:], head)
	if err != nil {
		return signed{}, &detailed{ErrMalformed, fmt.Errorf("header: %w", err)}
	}
	h, err := parseHeader(raw)
	if err != nil {
		return signed{}, &detailed{ErrMalformed, fmt.Errorf("header: %w", err)}
	}
	// An "alg" that is missing, names no algorithm ("none", "None") or
	// one not accepted here (HS256): no signature under it is acceptable.
	var alg string
	switch string(h.alg) {
	case "EdDSA":
		alg = "EdDSA"
	case "ES256":
		alg = "ES256"
	case "RS256":
		alg = "RS256"
	default:
		if h.alg == nil {
			return signed{}, &detailed{ErrSignature, errors.New("alg is missing or not a string")}
		}
		return signed{}, &detailed{ErrSignature, fmt.Errorf("alg %q is not accepted", string(h.alg))}
	}
	if string(h.typ) != typ {
		if h.typ == nil {
			return signed{}, &detailed{ErrType, fmt.Errorf("typ is missing or not a string, want %q", typ)}
		}
		return signed{}, &detailed{ErrType, fmt.Errorf("typ %q, want %q", string(h.typ), typ)}
	}
	// RFC 7515 §4.1.11: a "crit" header names extensions that must be
	// understood; sessiond understands none.
	if h.crit {
		return signed{}, &detailed{ErrMalformed, errors.New("unsupported crit header")}
	}
	if len(h.kid) == 0 {
		return signed{}, &detailed{ErrUnknownKey, errors.New("no kid")}
	}
	kid := string(h.kid)
	keyAlg, key, err := v.keys.VerificationKey(ctx, kid)
	if errors.Is(err, ErrKeysUnavailable) {
		return signed{}, err // not a verdict: validity is unknown
	}
	if err != nil {
		return signed{}, &detailed{ErrUnknownKey, err}
	}
	if alg != keyAlg {
		return signed{}, &detailed{ErrAlgorithm, fmt.Errorf("alg %q, the key's is %q", alg, keyAlg)}
	}
	var sigBuf [sigBufSize]byte
	sigBytes, err := decodeSegmentInto(sigBuf[:], sig)
	if err != nil {
		return signed{}, &detailed{ErrMalformed, fmt.Errorf("signature: %w", err)}
	}
	if err := verifySignature(alg, key, s[:len(head)+1+len(payload)], sigBytes); err != nil {
		return signed{}, &detailed{ErrSignature, err}
	}
	return signed{kid: kid, alg: alg, key: key, payload: payload}, nil
}

// decodeSegment decodes one base64url segment (no padding) strictly: every
// byte must be of the base64url alphabet. encoding/base64 skips '\r' and
// '\n' even in strict mode, so without the check a token with a line break
// in its signature would verify: the same token under another string.
func decodeSegment(s string) ([]byte, error) {
	if err := checkSegment(s); err != nil {
		return nil, err
	}
	return b64Strict.DecodeString(s)
}

// The buffers decodeSegmentInto decodes into on the stack: enough for
// the header of every sessiond token and for an RSA signature of 4096
// bits. Anything longer is decoded into a new slice.
const (
	headerBufSize = 384
	sigBufSize    = 512
)

// decodeSegmentInto is decodeSegment into buf when the decoded segment
// fits in it.
func decodeSegmentInto(buf []byte, s string) ([]byte, error) {
	if b64.DecodedLen(len(s)) > len(buf) {
		return decodeSegment(s)
	}
	if err := checkSegment(s); err != nil {
		return nil, err
	}
	n, err := b64Strict.Decode(buf, stringBytes(s))
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// checkSegment checks that every byte of s is of the base64url alphabet.
func checkSegment(s string) error {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return fmt.Errorf("byte %q at %d is not base64url", c, i)
		}
	}
	return nil
}

// stringBytes returns the bytes of s without copying them, for the
// signature check, which only reads them: a revocation document may be
// hundreds of megabytes. The slice must never be written.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// jwtVerifyLimit is the largest signing input verifySignature hands to
// golang-jwt: every session token (MaxSize) and small documents.
const jwtVerifyLimit = 64 << 10

// verifySignature checks the JWS signature (RFC 7515, RFC 7518 §3, RFC
// 8037) sig of the signing input msg under key with alg. Up to
// jwtVerifyLimit bytes (every session token) the check is golang-jwt's
// signing method for alg, the library sessiond's design signs and verifies
// with. golang-jwt takes the signing input as a string and converts it to
// bytes, a copy: fine for a token, not for a revocation document of tens of
// megabytes, so larger inputs are checked by verifyLarge, the same
// algorithms over the same Go crypto without the copy (TestVerifyPathsAgree
// holds the two to the same answers). A key of the wrong type for alg is
// an error, not a panic.
func verifySignature(alg string, key crypto.PublicKey, msg string, sig []byte) error {
	if len(msg) > jwtVerifyLimit {
		return verifyLarge(alg, key, stringBytes(msg), sig)
	}
	// golang-jwt checks a key's type but not that it is usable: a typed
	// nil or an ECDSA key on another curve would panic or mislead it.
	if err := checkKey(alg, key); err != nil {
		return err
	}
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		return fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err := m.Verify(msg, sig, key); err != nil {
		return fmt.Errorf("%s verification failed: %w", alg, err)
	}
	return nil
}

// checkKey reports whether key is a usable public key for alg.
func checkKey(alg string, key crypto.PublicKey) error {
	switch alg {
	case "EdDSA":
		if pub, ok := key.(ed25519.PublicKey); ok && len(pub) == ed25519.PublicKeySize {
			return nil
		}
	case "ES256":
		if pub, ok := key.(*ecdsa.PublicKey); ok && pub != nil && pub.Curve == elliptic.P256() {
			return nil
		}
	case "RS256":
		if pub, ok := key.(*rsa.PublicKey); ok && pub != nil && pub.N != nil {
			return nil
		}
	default:
		return fmt.Errorf("unsupported algorithm %q", alg)
	}
	return fmt.Errorf("%s with a key of type %T", alg, key)
}

// verifyLarge checks the JWS signature (RFC 7515, RFC 7518 §3, RFC 8037)
// sig of msg under key with alg directly over Go's crypto, without a copy
// of msg: verifySignature's path for documents too large for golang-jwt's.
// A key of the wrong type for alg is an error, not a panic.
func verifyLarge(alg string, key crypto.PublicKey, msg, sig []byte) error {
	switch alg {
	case "EdDSA":
		pub, ok := key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("EdDSA with a key of type %T", key)
		}
		if !ed25519.Verify(pub, msg, sig) {
			return errors.New("EdDSA verification failed")
		}
		return nil
	case "ES256":
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok || pub == nil || pub.Curve != elliptic.P256() {
			return fmt.Errorf("ES256 with a key of type %T", key)
		}
		if len(sig) != 64 { // R and S, 32 bytes each; not ASN.1 DER
			return fmt.Errorf("ES256 signature of %d bytes, want 64", len(sig))
		}
		digest := sha256.Sum256(msg)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, digest[:], r, s) {
			return errors.New("ES256 verification failed")
		}
		return nil
	case "RS256":
		pub, ok := key.(*rsa.PublicKey)
		if !ok || pub == nil || pub.N == nil {
			return fmt.Errorf("RS256 with a key of type %T", key)
		}
		digest := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			return fmt.Errorf("RS256 verification failed: %w", err)
		}
		return nil
	}
	return fmt.Errorf("unsupported algorithm %q", alg)
}
