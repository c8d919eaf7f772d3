// Package jose holds the wire-format pieces that both sides of sessiond's
// signed documents need: package token, which verifies them, and package
// issue, which signs them. It is internal so that neither side's public
// API has to carry the other's concerns: the "typ" of each kind of
// document, the JSON form of a public key, the base64url encoding, the
// length of the numbers of the revoked list, and the signing routine.
//
// Verification is not here: package token has the one JWS check
// (token/jws.go) that every typed document goes through.
package jose

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
)

// The "typ" header of each kind of document (RFC 8725 §3.11: explicit
// typing, so that no kind of JWT the same keys sign can pass for another).
const (
	// TypeSession is the "typ" of every session token.
	TypeSession = "session+jwt"
	// TypeRevocations is the "typ" of a revocation document, and the
	// subtype of its media type (application/revocations+jwt).
	TypeRevocations = "revocations+jwt"
)

// B64 is the base64url encoding without padding of JWS (RFC 7515 §2).
var B64 = base64.RawURLEncoding

// MaxExpiry bounds an expiry in the revoked list (the year 10000), so that
// it always fits a time.Time.
const MaxExpiry = 253402300800

// UvarintLen is the length of v as a uvarint, its shortest form.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// JWK is the JSON form of a public key (RFC 7517, RFC 7518 §6, RFC 8037).
type JWK struct {
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

// JWKSet is the JSON form of a JWK Set (RFC 7517 §5).
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// SignatureSize is the length of a JWS signature of alg with key.
func SignatureSize(alg string, key crypto.Signer) (int, error) {
	switch alg {
	case "EdDSA", "ES256":
		return 64, nil
	case "RS256":
		pub, ok := key.Public().(interface{ Size() int })
		if !ok {
			return 0, fmt.Errorf("RS256 key of type %T", key.Public())
		}
		return pub.Size(), nil
	}
	return 0, fmt.Errorf("unsupported algorithm %q", alg)
}

// Sign computes the JWS signature (RFC 7515, RFC 7518 §3, RFC 8037) of msg
// with the crypto.Signer itself rather than through golang-jwt, whose
// SigningMethod.Sign takes the message as a string and copies it, twice for
// EdDSA: 74 MB for a document of a million ids. token's verifySignature
// checks what it makes.
func Sign(alg string, key crypto.Signer, msg []byte) ([]byte, error) {
	switch alg {
	case "EdDSA":
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	case "RS256":
		digest := sha256.Sum256(msg)
		return key.Sign(rand.Reader, digest[:], crypto.SHA256)
	case "ES256":
		digest := sha256.Sum256(msg)
		der, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		// crypto.Signer gives ASN.1 DER; JWS wants R and S, 32 bytes each.
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
			return nil, errors.New("ES256 signer returned a malformed signature")
		}
		sig := make([]byte, 64)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
		return sig, nil
	}
	return nil, fmt.Errorf("unsupported algorithm %q", alg)
}
