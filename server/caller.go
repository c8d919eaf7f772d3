package server

// This file names the caller of a request, for the per-caller budget of
// failed signature checks (session.WithInvalidTokenBudget).

import (
	"context"
	"net"
)

// callerKey is the context key of the remote address of a connection.
type callerKey struct{}

// withRemoteAddr is the API server's ConnContext: it records the
// connection's remote IP (without the port, so that one host's connections
// are one caller) once per connection, not per request.
func withRemoteAddr(ctx context.Context, c net.Conn) context.Context {
	host := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return context.WithValue(ctx, callerKey{}, host)
}

// callerOf names the caller of the request whose context is ctx: its
// remote IP; "" when unknown.
func callerOf(ctx context.Context) string {
	name, _ := ctx.Value(callerKey{}).(string)
	return name
}
