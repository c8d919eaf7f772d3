// Package client is the Go client of sessiond's session API (JSON-RPC 2.0
// over HTTP). It imports only the standard library, so a program that
// opens, verifies or closes sessions over the network pays for nothing else;
// a program that verifies tokens offline imports package token instead.
//
// Start with [New], then [Client.OpenSession], [Client.VerifySessionToken]
// and [Client.CloseSession]; for sessions with a subject,
// [Client.OpenSessionFor], [Client.IntrospectSessionToken] and
// [Client.CloseAllSessions]. A JSON-RPC error from the server comes back as
// an [*Error] (match it with errors.As); anything else (network, HTTP
// status, a reply that does not parse) as a plain error.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// ErrDuration means a session lifetime that the API cannot carry: it counts
// lifetimes in whole seconds, and the client refuses to round.
var ErrDuration = errors.New("session lifetime is not a whole number of seconds")

// Error is a JSON-RPC error object the server answered with, such as code
// -32602 (invalid params) for a lifetime the server does not grant.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Error returns the code and the message, e.g. "rpc error -32602: missing token".
func (e *Error) Error() string {
	return "rpc error " + strconv.Itoa(e.Code) + ": " + e.Message
}

// OpenResult is the result of session.open_session.
type OpenResult struct {
	AccessToken string `json:"access_token"`
	// ExpiresIn is the granted lifetime in seconds.
	ExpiresIn int64 `json:"expires_in"`
}

// verifyResult is the result of session.verify_session_token.
type verifyResult struct {
	Active bool `json:"active"`
}

// A Client calls a sessiond server's session API. It is safe for concurrent
// use.
type Client struct {
	url  string
	http *http.Client
	id   atomic.Uint64
}

// New returns a client for the JSON-RPC endpoint at url (for example
// "http://127.0.0.1:8080/"). A nil hc means http.DefaultClient.
func New(url string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{url: url, http: hc}
}

// OpenSession opens a session that lasts expiresIn, which must be a whole
// number of seconds (else an error matching [ErrDuration], and nothing is
// sent: 1500ms is neither 1s nor 2s); zero asks for the server's default
// (30 days). The server refuses a lifetime it does not grant with an
// [*Error].
func (c *Client) OpenSession(ctx context.Context, expiresIn time.Duration) (OpenResult, error) {
	return c.OpenSessionFor(ctx, "", expiresIn)
}

// VerifySessionToken reports whether tok is active.
func (c *Client) VerifySessionToken(ctx context.Context, tok string) (bool, error) {
	var res verifyResult
	err := c.Call(ctx, "session.verify_session_token", map[string]string{"token": tok}, &res)
	return res.Active, err
}

// CloseSession closes the session of tok. It succeeds for any token, issued
// or not, once the token can no longer verify.
func (c *Client) CloseSession(ctx context.Context, tok string) error {
	var ok bool
	if err := c.Call(ctx, "session.close_session", map[string]string{"token": tok}, &ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("session.close_session returned false")
	}
	return nil
}

// Call invokes method with params and decodes its result into result. A
// JSON-RPC error comes back as an *Error.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	id := strconv.FormatUint(c.id.Add(1), 10)
	body, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
		ID      string `json:"id"`
	}{"2.0", method, params, id})
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %s: %s", method, resp.Status, bytes.TrimSpace(data))
	}
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
		ID     json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return fmt.Errorf("%s: bad reply: %w", method, err)
	}
	if reply.Error != nil {
		return reply.Error
	}
	if string(reply.ID) != strconv.Quote(id) {
		return fmt.Errorf("%s: reply id %s does not match request id %q", method, reply.ID, id)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(reply.Result, result); err != nil {
		return fmt.Errorf("%s: bad result: %w", method, err)
	}
	return nil
}
