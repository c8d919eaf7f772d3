package issue

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/token"
)

// MarshalJWKS returns the JWK Set (RFC 7517 §5) of keys: public members
// only, each with "kid", "alg" and "use": "sig". token.ParseJWKS reads it.
func MarshalJWKS(keys []token.PublicKey) ([]byte, error) {
	b64 := jose.B64
	set := jose.JWKSet{Keys: make([]jose.JWK, 0, len(keys))}
	for _, k := range keys {
		j := jose.JWK{Use: "sig", Alg: k.Algorithm, Kid: k.ID}
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
