// Package session is the session API of sessiond: the JSON-RPC methods
// session.open_session, session.verify_session_token,
// session.close_session (the three of the API document),
// session.introspect_session_token and session.close_all_sessions, with
// rpc.discover (the OpenRPC document of them all, [OpenRPC]), as a method
// table for [rpc.NewHandler].
//
// Start with [New]: it takes the revocation store and the key ring, and
// builds the issuer and the verifier itself, so that verification always
// checks revocation against the very store close_session writes to.
package session

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/token"
)

// DefaultExpiresIn is the lifetime of a session opened with expires_in
// absent or null: 30 days, or the maximum when that is shorter.
const DefaultExpiresIn = 30 * 24 * time.Hour

// DefaultMaxExpiresIn is the longest lifetime open_session grants unless
// configured otherwise ([WithMaxExpiresIn]): one year.
const DefaultMaxExpiresIn = 365 * 24 * time.Hour

// Store is the revocation list: close_session records a closed token with
// Revoke, close_all_sessions a subject's cutoff with CutOff, and every
// verification asks IsRevoked and, for a token with a subject, Cutoff of
// the same store. Revoke records that the token with id, which expires at
// expires, is revoked (until expires plus the store's retention); when it
// returns nil the record is durable. *revocation.Badger implements it.
type Store interface {
	Revoke(ctx context.Context, id uuid.UUID, expires time.Time) error
	token.RevocationChecker
	revocation.Cutoffs
}

// Keys is the key ring: the key that signs new tokens and the keys that
// verify them. keys.Keyring implements it.
type Keys interface {
	issue.SigningKeys
	token.KeySource
}

var _ Store = (*revocation.Badger)(nil)

// errDiskFull is close_session's answer while the revocation list refuses
// writes for lack of disk space: still an internal error, but one that says
// the session is not closed and that retrying later may work.
var errDiskFull = &rpc.Error{Code: rpc.CodeInternalError, Message: "internal error: the revocation list cannot be written (disk full); the session is not closed, retry later"}

// errDiskFullAll is errDiskFull for close_all_sessions.
var errDiskFullAll = &rpc.Error{Code: rpc.CodeInternalError, Message: "internal error: the revocation list cannot be written (disk full); the sessions are not closed, retry later"}

// Option configures [New].
type Option func(*settings)

type settings struct {
	issuer       string
	leeway       time.Duration
	maxExpiresIn time.Duration
	now          func() time.Time
	budget       int
	caller       func(context.Context) string
	refused      func(context.Context)
	observe      func(context.Context, Event)
}

// WithIssuer sets the "iss" claim of new tokens, which verification then
// requires (default token.DefaultIssuer; "" means the default).
func WithIssuer(iss string) Option { return func(s *settings) { s.issuer = iss } }

// WithLeeway allows d of clock skew when checking "exp" and "iat" (default
// 0). The store must retain revocations at least this long past "exp"
// (revocation.Options.Retention).
func WithLeeway(d time.Duration) Option { return func(s *settings) { s.leeway = d } }

// WithMaxExpiresIn caps every granted lifetime, in whole seconds (rounded
// down): an explicit expires_in above it is refused, and the default
// (DefaultExpiresIn) is shortened to it. Zero or less means
// DefaultMaxExpiresIn.
func WithMaxExpiresIn(d time.Duration) Option { return func(s *settings) { s.maxExpiresIn = d } }

// WithClock sets the clock that issues and verifies tokens (default
// time.Now).
func WithClock(now func() time.Time) Option { return func(s *settings) { s.now = now } }

// WithObserver has f told of every call of a method that got past its
// parameters, after it ran (see [Event]). f runs on the caller's goroutine
// before the reply is sent, so it must not block for long. The default
// tells nobody.
func WithObserver(f func(ctx context.Context, e Event)) Option {
	return func(s *settings) { s.observe = f }
}

// The results of a token check, [Event].Result: what
// session.verify_session_token and session.introspect_session_token found.
const (
	ResultActive     = "active"      // authentic, unexpired, not closed: the answer is active
	ResultExpired    = "expired"     // token.ErrExpired
	ResultRevoked    = "revoked"     // closed by close_session or close_all_sessions
	ResultSignature  = "signature"   // token.ErrSignature, token.ErrAlgorithm: forged or damaged
	ResultUnknownKey = "unknown_key" // token.ErrUnknownKey: no published key has its kid
	ResultMalformed  = "malformed"   // token.ErrMalformed, token.ErrTooLarge, token.ErrType
	ResultIssuer     = "issuer"      // token.ErrIssuer
	// ResultOther is any other reason (token.ErrNotYetValid), and a check
	// whose answer is unknown (the revocation list cannot be read), which
	// the client gets as an internal error.
	ResultOther = "other"
)

// Event is what an observer ([WithObserver]) is told of one call. It holds
// no token, subject or key: at most the token's id.
type Event struct {
	// Method is the method's name, e.g. "session.verify_session_token".
	Method string
	// Result is the token check's result (ResultActive …) for
	// verify_session_token and introspect_session_token, "" for the other
	// methods.
	Result string
	// ID is the "jti" of the token issued (open_session) or of the
	// authentic token given (verify, introspect, close_session); uuid.Nil
	// when there is none, e.g. for a forged token.
	ID uuid.UUID
}

// result names the outcome of a token check, err as active returns it.
func result(err error) string {
	switch {
	case err == nil:
		return ResultActive
	case errors.Is(err, token.ErrExpired):
		return ResultExpired
	case errors.Is(err, token.ErrRevoked), errors.Is(err, token.ErrSubjectClosed):
		return ResultRevoked
	case errors.Is(err, token.ErrSignature), errors.Is(err, token.ErrAlgorithm):
		return ResultSignature
	case errors.Is(err, token.ErrUnknownKey):
		return ResultUnknownKey
	case errors.Is(err, token.ErrMalformed), errors.Is(err, token.ErrTooLarge), errors.Is(err, token.ErrType):
		return ResultMalformed
	case errors.Is(err, token.ErrIssuer):
		return ResultIssuer
	}
	return ResultOther
}

// observe tells the observer, if any, of a call.
func (s *sessions) observe(ctx context.Context, e Event) {
	if s.observer != nil {
		s.observer(ctx, e)
	}
}

// sessions holds what the methods share.
type sessions struct {
	observer     func(context.Context, Event)
	issuer       *issue.Issuer
	verifier     *token.Verifier
	store        Store
	maxExpiresIn time.Duration
	leeway       time.Duration
	now          func() time.Time
	budget       *budget // nil: no ration of failed signature checks
	caller       func(context.Context) string
	refused      func(context.Context) // nil: nobody to tell
}

// New returns the method table of the session API, issuing and verifying
// with ring and closing sessions in store; verify_session_token checks
// revocation against store itself (close_session, which needs no such
// read, shares the verifier), and signature checks of tokens not
// seen before queue for the cores (token.WithConcurrencyLimit with
// GOMAXPROCS), so a flood of forged tokens cannot take them from cached ones.
func New(store Store, ring Keys, opts ...Option) map[string]rpc.Method {
	var c settings
	for _, opt := range opts {
		opt(&c)
	}
	if c.maxExpiresIn <= 0 {
		c.maxExpiresIn = DefaultMaxExpiresIn
	}
	if c.issuer == "" {
		c.issuer = token.DefaultIssuer
	}
	vopts := []token.Option{token.WithIssuer(c.issuer), token.WithLeeway(c.leeway),
		token.WithConcurrencyLimit(runtime.GOMAXPROCS(0))}
	iopts := []issue.Option{issue.WithIssuer(c.issuer)}
	if c.now != nil {
		vopts = append(vopts, token.WithClock(c.now))
		iopts = append(iopts, issue.WithClock(c.now))
	}
	s := &sessions{
		issuer:       issue.New(ring, iopts...),
		verifier:     token.NewVerifier(ring, vopts...),
		store:        store,
		maxExpiresIn: c.maxExpiresIn,
		leeway:       c.leeway,
		now:          c.now,
		caller:       c.caller,
		refused:      c.refused,
		observer:     c.observe,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.caller == nil {
		s.caller = func(context.Context) string { return "" }
	}
	s.budget = newBudget(c.budget, s.now)
	return map[string]rpc.Method{
		"session.open_session":             {Params: []string{"expires_in", "subject"}, Call: s.open},
		"session.verify_session_token":     {Params: []string{"token"}, Call: s.verify},
		"session.close_session":            {Params: []string{"token"}, Call: s.close},
		"session.introspect_session_token": {Params: []string{"token"}, Call: s.introspect},
		"session.close_all_sessions":       {Params: []string{"subject"}, Call: s.closeAll},
		"rpc.discover":                     discover(OpenRPC(s.maxExpiresIn)),
	}
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

func (s *sessions) open(ctx context.Context, p rpc.Params) (any, error) {
	lifetime, err := s.expiresIn(p)
	if err != nil {
		return nil, err
	}
	subject, err := subjectParam(p, false)
	if err != nil {
		return nil, err
	}
	tok, c, err := s.issuer.IssueFor(subject, lifetime)
	if err != nil {
		return nil, err
	}
	s.observe(ctx, Event{Method: "session.open_session", ID: c.ID})
	return OpenResult{AccessToken: tok, ExpiresIn: int64(lifetime / time.Second)}, nil
}

// expiresIn reads expires_in: absent or null means DefaultExpiresIn, or the
// maximum when that is shorter; otherwise a whole number of seconds from 1
// to the maximum. A JSON number with an integral value (3600.0, 3.6e3)
// counts as that integer. No granted lifetime exceeds the maximum, which
// the keys' lifecycle trusts: a key is pruned once the maximum has passed
// since it stopped signing.
func (s *sessions) expiresIn(p rpc.Params) (time.Duration, error) {
	maxSecs := int64(s.maxExpiresIn / time.Second)
	raw, ok := p.Get("expires_in")
	if !ok || string(raw) == "null" {
		return min(DefaultExpiresIn, time.Duration(maxSecs)*time.Second), nil
	}
	bad := rpc.InvalidParams("expires_in must be null or a whole number of seconds from 1 to %d", maxSecs)
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

// subjectParam reads the parameter "subject": a JSON string of 1 to
// token.MaxSubjectSize bytes of valid UTF-8 without control characters
// (token.ValidSubject), escapes allowed but not a lone UTF-16 surrogate
// (which encoding/json would silently turn into U+FFFD, as it does invalid
// UTF-8). Absent or null is "" unless required.
func subjectParam(p rpc.Params, required bool) (string, error) {
	raw, ok := p.Get("subject")
	if !ok || string(raw) == "null" {
		if required {
			return "", rpc.InvalidParams("subject is required: a string of 1 to %d bytes of valid UTF-8 without control characters", token.MaxSubjectSize)
		}
		return "", nil
	}
	bad := rpc.InvalidParams("subject must be null or a string of 1 to %d bytes of valid UTF-8 without control characters", token.MaxSubjectSize)
	if required {
		bad = rpc.InvalidParams("subject must be a string of 1 to %d bytes of valid UTF-8 without control characters", token.MaxSubjectSize)
	}
	if len(raw) < 2 || raw[0] != '"' || !utf8.Valid(raw) || loneSurrogate(raw) {
		return "", bad
	}
	var subject string
	if err := json.Unmarshal(raw, &subject); err != nil || !token.ValidSubject(subject) {
		return "", bad
	}
	return subject, nil
}

// loneSurrogate reports whether the JSON string raw has a \u escape of a
// UTF-16 surrogate that is not half of a pair.
func loneSurrogate(raw []byte) bool {
	surrogate := func(i int) (r rune, ok bool) { // of the \uXXXX at raw[i:]
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
		return rune(n), err == nil && utf16.IsSurrogate(rune(n))
	}
	for i := 1; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		r, ok := surrogate(i)
		switch {
		case !ok:
			i++ // past the escaped character (the escape of a non-surrogate is plain hex)
		case r >= 0xdc00:
			return true // a low half first
		default:
			if lo, ok := surrogate(i + 6); !ok || lo < 0xdc00 {
				return true
			}
			i += 11
		}
	}
	return false
}

// tokenParam reads the required string parameter "token".
func tokenParam(p rpc.Params) (string, error) {
	raw, ok := p.Get("token")
	if !ok || string(raw) == "null" {
		return "", rpc.InvalidParams("token is required")
	}
	if len(raw) < 2 || raw[0] != '"' {
		return "", rpc.InvalidParams("token must be a string")
	}
	if tok, ok := plainString(raw); ok {
		return tok, nil
	}
	var tok string
	if err := json.Unmarshal(raw, &tok); err != nil {
		return "", rpc.InvalidParams("token must be a string")
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

// IntrospectResult is the result of session.introspect_session_token for
// an active token, in the shape of RFC 7662 token introspection: the
// token's claims, "sub" left out when it has none. Any other token gets
// exactly {"active":false}, a VerifyResult.
type IntrospectResult struct {
	Active   bool   `json:"active"` // always true
	Subject  string `json:"sub,omitempty"`
	Expires  int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	ID       string `json:"jti"`
	Issuer   string `json:"iss"`
}

// active reads the parameter "token" and checks it as verify_session_token
// does: its claims when active; an error matching token.ErrInvalid when
// not; an *rpc.Error for bad params; any other error when validity is
// unknown (the store cannot be read), which callers answer with an
// internal error, never active. The observer is told of every check, as
// method.
func (s *sessions) active(ctx context.Context, method string, p rpc.Params) (token.Claims, error) {
	tok, err := tokenParam(p)
	if err != nil {
		return token.Claims{}, err
	}
	c, err := s.check(ctx, tok)
	if s.observer != nil {
		e := Event{Method: method, Result: result(err), ID: c.ID}
		if e.Result == ResultSignature || e.Result == ResultUnknownKey || e.Result == ResultMalformed {
			e.ID = uuid.Nil // not authentic: its id means nothing
		}
		s.observer(ctx, e)
	}
	if err != nil {
		return token.Claims{}, err
	}
	return c, nil
}

// check verifies tok and consults the store. On error it still returns
// the claims of an authentic token (e.g. a revoked one).
func (s *sessions) check(ctx context.Context, tok string) (token.Claims, error) {
	c, err := s.verifyRationed(ctx, tok)
	if err != nil {
		return c, err
	}
	revoked, err := s.store.IsRevoked(ctx, c.ID)
	if err != nil {
		return c, err
	}
	if revoked {
		return c, token.ErrRevoked
	}
	if c.Subject != "" {
		at, ok, err := s.store.Cutoff(ctx, c.Subject)
		if err != nil {
			return c, err
		}
		if ok && c.IssuedAt.Unix() <= at.Unix() {
			return c, token.ErrRevoked // closed by close_all_sessions
		}
	}
	return c, nil
}

// verifyRationed verifies tok within its caller's budget of failed
// signature checks (see WithInvalidTokenBudget): a caller with none left
// gets errTooManyInvalid for a token not seen before, and a token whose
// signature fails costs its caller one.
func (s *sessions) verifyRationed(ctx context.Context, tok string) (token.Claims, error) {
	if s.budget == nil {
		return s.verifier.Verify(ctx, tok)
	}
	caller := s.caller(ctx)
	if !s.budget.allows(caller) && !s.verifier.Seen(tok) {
		if s.refused != nil {
			s.refused(ctx)
		}
		return token.Claims{}, errTooManyInvalid
	}
	c, err := s.verifier.Verify(ctx, tok)
	if errors.Is(err, token.ErrSignature) {
		s.budget.charge(caller)
	}
	return c, err
}

func (s *sessions) verify(ctx context.Context, p rpc.Params) (any, error) {
	_, err := s.active(ctx, "session.verify_session_token", p)
	switch {
	case err == nil:
		return VerifyResult{Active: true}, nil
	case errors.Is(err, token.ErrInvalid):
		return VerifyResult{Active: false}, nil
	default:
		return nil, err // bad params, or validity unknown: never active
	}
}

// introspect answers like verify, with the claims of an active token.
func (s *sessions) introspect(ctx context.Context, p rpc.Params) (any, error) {
	c, err := s.active(ctx, "session.introspect_session_token", p)
	switch {
	case err == nil:
		return IntrospectResult{Active: true, Subject: c.Subject, Expires: c.Expires.Unix(),
			IssuedAt: c.IssuedAt.Unix(), ID: c.ID.String(), Issuer: c.Issuer}, nil
	case errors.Is(err, token.ErrInvalid):
		return VerifyResult{Active: false}, nil
	default:
		return nil, err // bad params, or validity unknown: never active
	}
}

// closeAll closes every session of the subject opened at or before the
// current second, durably, with one cutoff record in the store: a token of
// the subject whose "iat" is at or before that second is inactive from the
// reply on (so one opened in the same second, after the call, is closed
// too: "iat" has whole-second precision). The record lasts until no token
// issued by then can still verify: the second, plus the longest lifetime,
// plus the leeway, plus one second. Sessions opened in a later second, and
// those of other subjects, are untouched. Calling it again moves the cutoff
// forward, never back.
func (s *sessions) closeAll(ctx context.Context, p rpc.Params) (any, error) {
	subject, err := subjectParam(p, true)
	if err != nil {
		return nil, err
	}
	now := s.now()
	until := now.Truncate(time.Second).Add(s.maxExpiresIn + s.leeway + time.Second)
	err = s.store.CutOff(ctx, subject, now, until)
	s.observe(ctx, Event{Method: "session.close_all_sessions"})
	if err != nil {
		if errors.Is(err, revocation.ErrDiskFull) {
			return nil, errDiskFullAll
		}
		return nil, err
	}
	return true, nil
}

// close revokes an authentic token until it can no longer verify: its
// expiry plus the verifier's leeway. Anything that would not verify anyway
// (garbage, forged, expired) is already closed: the result is true and
// nothing is written, so forged input cannot grow the store.
func (s *sessions) close(ctx context.Context, p rpc.Params) (any, error) {
	tok, err := tokenParam(p)
	if err != nil {
		return nil, err
	}
	c, err := s.verifier.Verify(ctx, tok)
	if errors.Is(err, token.ErrInvalid) {
		s.observe(ctx, Event{Method: "session.close_session"})
		return true, nil
	}
	if err != nil {
		s.observe(ctx, Event{Method: "session.close_session"})
		return nil, err
	}
	err = s.store.Revoke(ctx, c.ID, c.Expires)
	s.observe(ctx, Event{Method: "session.close_session", ID: c.ID})
	if err != nil {
		if errors.Is(err, revocation.ErrDiskFull) {
			return nil, errDiskFull
		}
		return nil, err
	}
	return true, nil
}
