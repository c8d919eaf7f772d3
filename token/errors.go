package token

import (
	"errors"
	"fmt"
	"strings"
)

// The errors of this package. A token that is not valid gives an error
// matching ErrInvalid and exactly one of its reasons (ErrMalformed …
// ErrSubjectClosed). A revocation document that is refused gives one matching
// ErrFeed and one reason: ErrMalformed, ErrType, ErrUnknownKey,
// ErrAlgorithm, ErrSignature, ErrIssuer, ErrNotYetValid (issued in the
// future), ErrExpired (no longer fresh), ErrOutdated or ErrTooLarge.
// ErrKeysUnavailable and ErrStale mean validity is unknown: they never
// match ErrInvalid, and a caller must still reject the token.
var (
	// ErrInvalid matches every reason a token is not valid.
	ErrInvalid = errors.New("invalid token")

	ErrMalformed   error = &reason{"token is malformed"}
	ErrTooLarge    error = &reason{"token is too large"}
	ErrType        error = &reason{"token has the wrong type"}
	ErrUnknownKey  error = &reason{"token is signed by an unknown key"}
	ErrAlgorithm   error = &reason{"token algorithm does not match its key"}
	ErrSignature   error = &reason{"token signature is invalid"}
	ErrExpired     error = &reason{"token is expired"}
	ErrNotYetValid error = &reason{"token is not valid yet"}
	ErrIssuer      error = &reason{"token has the wrong issuer"}
	ErrRevoked     error = &reason{"token is revoked"}
	// ErrSubjectClosed means every session of the token's subject ("sub")
	// issued at or before a cutoff second was closed at once (sessiond's
	// session.close_all_sessions), and the token's "iat" is at or before
	// it. It is a reason of its own, not ErrRevoked: the token's id was
	// never listed.
	ErrSubjectClosed error = &reason{"token is closed with every session of its subject"}

	// ErrKeysUnavailable means the verification keys could not be had (a
	// JWK Set that cannot be fetched, say). A [KeySource] wraps it for such
	// failures; any other error from a KeySource means the key id is
	// unknown.
	ErrKeysUnavailable = errors.New("verification keys are unavailable")

	// ErrJWKS means a JWK Set could not be used.
	ErrJWKS = errors.New("invalid JWK set")

	// ErrFeed matches every reason a revocation document is refused.
	ErrFeed = errors.New("revocation document refused")

	// ErrOutdated means an authentic document older than the list already
	// held: a replay, or a server that went back in time. The list is kept.
	ErrOutdated = errors.New("revocation document is older than the list held")

	// ErrStale means a [RevocationFeed] cannot tell whether a token is
	// revoked: it has no list yet, or its list is older than allowed (see
	// [WithMaxStaleness]). Verify fails with it.
	ErrStale = errors.New("revocation list is stale")
)

type reason struct{ msg string }

func (r *reason) Error() string { return r.msg }
func (r *reason) Unwrap() error { return ErrInvalid }

// detailed is a reason with the error that gave rise to it.
type detailed struct{ reason, detail error }

func (d *detailed) Error() string {
	msg := d.detail.Error()
	if strings.HasPrefix(msg, d.reason.Error()) {
		return msg
	}
	return d.reason.Error() + ": " + msg
}

func (d *detailed) Unwrap() []error { return []error{d.reason, d.detail} }

// refused is a refused revocation document: it matches ErrFeed, its reason
// and the detail.
type refused struct{ reason, detail error }

func (r *refused) Error() string {
	msg := r.reason.Error()
	if r.detail != nil {
		msg = (&detailed{r.reason, r.detail}).Error()
	}
	return ErrFeed.Error() + ": " + msg
}

func (r *refused) Unwrap() []error {
	if r.detail == nil {
		return []error{ErrFeed, r.reason}
	}
	return []error{ErrFeed, r.reason, r.detail}
}

func refuse(reason error, format string, args ...any) error {
	return &refused{reason, fmt.Errorf(format, args...)}
}
