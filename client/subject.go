package client

import (
	"context"
	"fmt"
	"time"
)

// Introspection is the result of session.introspect_session_token, in the
// shape of RFC 7662 token introspection: for an active token its claims
// (Subject empty when it has none), for any other token only Active false.
type Introspection struct {
	Active   bool   `json:"active"`
	Subject  string `json:"sub,omitempty"`
	Expires  int64  `json:"exp,omitempty"` // seconds since the Unix epoch
	IssuedAt int64  `json:"iat,omitempty"` // seconds since the Unix epoch
	ID       string `json:"jti,omitempty"`
	Issuer   string `json:"iss,omitempty"`
}

// OpenSessionFor is [Client.OpenSession] for a session of subject (a user
// id, an e-mail address: 1 to 256 bytes of UTF-8 without control
// characters), which the token carries as its "sub" claim; "" opens one
// without a subject.
func (c *Client) OpenSessionFor(ctx context.Context, subject string, expiresIn time.Duration) (OpenResult, error) {
	if expiresIn%time.Second != 0 {
		return OpenResult{}, fmt.Errorf("session.open_session: %w: %s; the API counts lifetimes in whole seconds: round it first (for example with Round(time.Second))", ErrDuration, expiresIn)
	}
	params := map[string]any{"expires_in": nil}
	if expiresIn != 0 {
		params["expires_in"] = int64(expiresIn / time.Second)
	}
	if subject != "" {
		params["subject"] = subject
	}
	var res OpenResult
	err := c.Call(ctx, "session.open_session", params, &res)
	return res, err
}

// IntrospectSessionToken returns what the server says of tok: its claims
// when it is active, Active false otherwise.
func (c *Client) IntrospectSessionToken(ctx context.Context, tok string) (Introspection, error) {
	var res Introspection
	err := c.Call(ctx, "session.introspect_session_token", map[string]string{"token": tok}, &res)
	return res, err
}

// CloseAllSessions closes every session of subject opened so far (in the
// second of the call or before), durably, when it returns nil.
func (c *Client) CloseAllSessions(ctx context.Context, subject string) error {
	var ok bool
	if err := c.Call(ctx, "session.close_all_sessions", map[string]string{"subject": subject}, &ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("session.close_all_sessions returned false")
	}
	return nil
}
