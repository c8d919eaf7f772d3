package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/token"
)

// DefaultExpiresIn is the lifetime of a session opened with expires_in
// absent or null: 30 days, or the maximum when that is shorter.
const DefaultExpiresIn = 30 * 24 * time.Hour

// DefaultMaxExpiresIn is the longest lifetime open_session grants unless
// configured otherwise: one year.
const DefaultMaxExpiresIn = 365 * 24 * time.Hour

// Revoker records that the token with id, which expires at expires, is
// revoked (until expires plus the store's retention); when it returns nil
// the record is durable. IsRevoked reads that record back. revocation.Store
// implements it.
type Revoker interface {
	Revoke(ctx context.Context, id uuid.UUID, expires time.Time) error
	IsRevoked(ctx context.Context, id uuid.UUID) (bool, error)
}

// errDiskFull is close_session's answer while the revocation list refuses
// writes for lack of disk space: still an internal error, but one that says
// the session is not closed and that retrying later may work.
var errDiskFull = &Error{Code: CodeInternalError, Message: "internal error: the revocation list cannot be written (disk full); the session is not closed, retry later"}

// Sessions is the session API of API.txt: session.open_session,
// session.verify_session_token and session.close_session.
type Sessions struct {
	Issuer *issue.Issuer
	// Verifier checks tokens without a revocation check of its own: verify
	// asks Revoker, the store close writes to, and close needs no read.
	Verifier *token.Verifier
	Revoker  Revoker
	// MaxExpiresIn caps every granted lifetime, in whole seconds (rounded
	// down): an explicit expires_in above it is refused, and the default
	// (DefaultExpiresIn) is shortened to it. Zero means DefaultMaxExpiresIn.
	MaxExpiresIn time.Duration
}

// OpenResult is the result of session.open_session.
type OpenResult struct {
	AccessToken string `json:"access_token"`
	// ExpiresIn is the granted lifetime in seconds.
	ExpiresIn int64 `json:"expires_in"`
}

// VerifyResult is the result of session.verify_session_token.
type VerifyResult struct {
	Active bool `json:"active"`
}

// Methods returns the method table of the session API.
func (s *Sessions) Methods() map[string]Method {
	return map[string]Method{
		"session.open_session":         {Params: []string{"expires_in"}, Call: s.open},
		"session.verify_session_token": {Params: []string{"token"}, Call: s.verify},
		"session.close_session":        {Params: []string{"token"}, Call: s.close},
	}
}

func (s *Sessions) maxExpiresIn() time.Duration {
	if s.MaxExpiresIn > 0 {
		return s.MaxExpiresIn
	}
	return DefaultMaxExpiresIn
}

func (s *Sessions) open(_ context.Context, p Params) (any, error) {
	lifetime, err := s.expiresIn(p)
	if err != nil {
		return nil, err
	}
	tok, _, err := s.Issuer.Issue(lifetime)
	if err != nil {
		return nil, err
	}
	return OpenResult{AccessToken: tok, ExpiresIn: int64(lifetime / time.Second)}, nil
}

// expiresIn reads expires_in: absent or null means DefaultExpiresIn, or the
// maximum when that is shorter; otherwise a whole number of seconds from 1
// to the maximum. A JSON number with an integral value (3600.0, 3.6e3)
// counts as that integer. No granted lifetime exceeds the maximum, which
// the keys' lifecycle trusts: a key is pruned once the maximum has passed
// since it stopped signing.
func (s *Sessions) expiresIn(p Params) (time.Duration, error) {
	maxSecs := int64(s.maxExpiresIn() / time.Second)
	raw, ok := p.Get("expires_in")
	if !ok || string(raw) == "null" {
		return min(DefaultExpiresIn, time.Duration(maxSecs)*time.Second), nil
	}
	bad := InvalidParams("expires_in must be null or a whole number of seconds from 1 to %d", maxSecs)
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, bad // a string, boolean, object or array
	}
	secs, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(raw), 64)
		if ferr != nil || f != math.Trunc(f) || f < 1 || f > float64(maxSecs) {
			return 0, bad
		}
		secs = int64(f)
	}
	if secs < 1 || secs > maxSecs {
		return 0, bad
	}
	return time.Duration(secs) * time.Second, nil
}

// tokenParam reads the required string parameter "token".
func tokenParam(p Params) (string, error) {
	raw, ok := p.Get("token")
	if !ok || string(raw) == "null" {
		return "", InvalidParams("token is required")
	}
	if len(raw) < 2 || raw[0] != '"' {
		return "", InvalidParams("token must be a string")
	}
	if tok, ok := plainString(raw); ok {
		return tok, nil
	}
	var tok string
	if err := json.Unmarshal(raw, &tok); err != nil {
		return "", InvalidParams("token must be a string")
	}
	return tok, nil
}

// plainString returns the content of the JSON string raw when it needs no
// decoding: printable ASCII without escapes, as every token is. Anything
// else goes through encoding/json.
func plainString(raw []byte) (string, bool) {
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
			return "", false
		}
	}
	return string(body), true
}

func (s *Sessions) verify(ctx context.Context, p Params) (any, error) {
	tok, err := tokenParam(p)
	if err != nil {
		return nil, err
	}
	c, err := s.Verifier.Verify(ctx, tok)
	if err == nil {
		var revoked bool
		if revoked, err = s.Revoker.IsRevoked(ctx, c.ID); err == nil && revoked {
			err = token.ErrRevoked
		}
	}
	switch {
	case err == nil:
		return VerifyResult{Active: true}, nil
	case errors.Is(err, token.ErrInvalid):
		return VerifyResult{Active: false}, nil
	default:
		return nil, err // validity unknown: internal error, never active
	}
}

// close revokes an authentic token until it can no longer verify: its
// expiry plus the verifier's leeway. Anything that would not verify anyway
// (garbage, forged, expired) is already closed: the result is true and
// nothing is written, so forged input cannot grow the store.
func (s *Sessions) close(ctx context.Context, p Params) (any, error) {
	tok, err := tokenParam(p)
	if err != nil {
		return nil, err
	}
	c, err := s.Verifier.Verify(ctx, tok)
	if errors.Is(err, token.ErrInvalid) {
		return true, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.Revoker.Revoke(ctx, c.ID, c.Expires); err != nil {
		if errors.Is(err, revocation.ErrDiskFull) {
			return nil, errDiskFull
		}
		return nil, err
	}
	return true, nil
}
