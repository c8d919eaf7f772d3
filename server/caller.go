package server

// This file names the caller of a request, for the per-caller budget of
// failed signature checks (session.WithInvalidTokenBudget), and makes a
// caller refused for its budget wait for its answer (the tarpit).

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/clients"
)

// tarpitDelay is how long the answer to a request waits when one of its
// calls was refused for its caller's budget: a caller flooding forged
// tokens over n connections then gets at most n refusals a second, each
// costing the server a parse and no signature check, instead of as many as
// the core can answer.
const tarpitDelay = time.Second

// conn is what the server knows of a client connection: made once per
// connection (ConnContext), never per request.
type conn struct {
	addr    string      // the remote IP, without the port
	refused atomic.Bool // a call of the request being served was refused for its budget
}

// callerKey is the context key of a request's *conn.
type callerKey struct{}

// withConn is the API server's ConnContext: it records the connection's
// remote IP (without the port, so that one host's connections are one
// caller).
func withConn(ctx context.Context, c net.Conn) context.Context {
	host := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return context.WithValue(ctx, callerKey{}, &conn{addr: host})
}

func connOf(ctx context.Context) *conn {
	c, _ := ctx.Value(callerKey{}).(*conn)
	return c
}

// callerOf names the caller of the request whose context is ctx: the
// authenticated client's name, else its remote IP; "" when unknown. The
// two never mix: while any client is configured, every request is
// authenticated.
func callerOf(ctx context.Context) string {
	if c, ok := clients.FromContext(ctx); ok {
		return c.Name
	}
	if c := connOf(ctx); c != nil {
		return c.addr
	}
	return ""
}

// markRefused records that a call of ctx's request was refused for its
// caller's budget.
func markRefused(ctx context.Context) {
	if c := connOf(ctx); c != nil {
		c.refused.Store(true)
	}
}

// tarpit serves h, then holds the answer for tarpitDelay (or until the
// client goes away) when a call of the request was refused for its
// caller's budget. The answer is written by then but not yet flushed, so
// the client waits; a whole batch of refusals waits once.
func tarpit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if c := connOf(r.Context()); c != nil && c.refused.Swap(false) {
			t := time.NewTimer(tarpitDelay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
			}
		}
	})
}
