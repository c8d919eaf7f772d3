// Package token issues and verifies sessiond's session tokens, and is the
// library a Go program imports to verify them offline: it needs neither the
// server nor its storage.
//
// # Start here
//
// A [Verifier] checks a token against a [KeySource]; [NewVerifier] takes
// options for the issuer, audience, clock-skew leeway and an optional
// [RevocationChecker]. An [Issuer] signs new tokens with the key a
// [SigningKeys] gives. The server wires keys.Keyring into both.
//
// A [RevocationFeed] is the revocation checker of a verifier that runs
// away from the server: a copy of the server's revocation list, kept
// current from its signed feed (GET /revocations) and answered from memory,
// that fails closed once it is too old to trust. [RevocationList] describes
// the feed's documents; [SignRevocations] and [ParseRevocations] write and
// read them.
//
// # Token format
//
// A session token is a JWS compact-serialised JWT (RFC 7519):
//
//	header:  {"alg":"EdDSA","kid":"<RFC 7638 thumbprint>","typ":"session+jwt"}
//	claims:  {"iss":"sessiond","exp":1767225600,"iat":1764633600,"jti":"<UUID>"}
//
// Verification pins the algorithm to the key the "kid" names, whatever the
// header's "alg" says, and never follows "jku", "x5u" or "jwk" headers.
//
// # Errors
//
// Every reason a token is not valid matches [ErrInvalid] with errors.Is, and
// also one precise reason ([ErrExpired], [ErrSignature], …). Any other error
// from [Verifier.Verify] means validity is unknown, and a caller must fail
// closed.
package token

import "errors"

// ErrInvalid matches every reason a token is not valid.
var ErrInvalid = errors.New("invalid token")

// The reasons a token is not valid. Each matches ErrInvalid too.
var (
	ErrMalformed   error = &reason{"token is malformed"}
	ErrTooLarge    error = &reason{"token is too large"}
	ErrType        error = &reason{"token has the wrong type"}
	ErrUnknownKey  error = &reason{"token is signed by an unknown key"}
	ErrAlgorithm   error = &reason{"token algorithm does not match its key"}
	ErrSignature   error = &reason{"token signature is invalid"}
	ErrExpired     error = &reason{"token is expired"}
	ErrNotYetValid error = &reason{"token is not valid yet"}
	ErrIssuer      error = &reason{"token has the wrong issuer"}
	ErrAudience    error = &reason{"token has the wrong audience"}
	ErrRevoked     error = &reason{"token is revoked"}
)

// ErrKeysUnavailable means the verification keys could not be had (a JWK
// Set that cannot be fetched, say), so validity is unknown. It does not
// match ErrInvalid; callers must still reject the token. A [KeySource] wraps
// it for such failures; any other error from a KeySource means the key id is
// unknown.
var ErrKeysUnavailable = errors.New("verification keys are unavailable")

type reason struct{ msg string }

func (r *reason) Error() string { return r.msg }
func (r *reason) Unwrap() error { return ErrInvalid }
