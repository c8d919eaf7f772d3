package server

// This file is who may call what on the JSON-RPC endpoint: the callers'
// credentials (package clients) checked on each HTTP request by
// [authenticator.wrap], the permission checked on each call by
// [authenticator.authorize] (the rpc.HandlerOptions.Authorize hook), and the
// secure-by-default rule of [Server.Open] (checkExposure).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/sessiond/sessiond/clients"
	"github.com/sessiond/sessiond/rpc"
)

// JSON-RPC error codes of authentication and authorization, in the range
// the specification leaves to the server.
const (
	// CodeUnauthorized answers a request without valid credentials (HTTP
	// 401, id null): no secret, a wrong one, or a client certificate that
	// names no configured client.
	CodeUnauthorized = -32001
	// CodeForbidden answers a call the authenticated client has no
	// permission for: "forbidden: client NAME may not call METHOD".
	CodeForbidden = -32003
)

// ErrUnauthenticated is Open's refusal to serve the API on an address other
// than loopback with nobody to authenticate callers: no client in the
// clients file, no client CA, and Config.AllowUnauthenticated not set.
var ErrUnauthenticated = errors.New("refusing to serve the session API unauthenticated on an address other than loopback")

// authenticator checks callers' credentials. While the clients file holds
// no client and none is required (a loopback address), every request
// passes unauthenticated; once it holds one, every request needs a valid
// secret (or, with mutual TLS, a certificate that names a client).
type authenticator struct {
	reg *clients.Registry
	// required: credentials are needed even while the file holds no client
	// (then nobody gets in): the API is exposed beyond loopback and
	// unauthenticated access was not allowed, or mutual TLS is on. So that
	// removing the last client never opens the API.
	required bool
	// mtls: callers are named by their client certificate (verified by the
	// TLS handshake against the client CA), not by a secret.
	mtls bool
	log  *slog.Logger
}

// wrap authenticates each request before next sees it, and puts the client
// in the request's context (clients.NewContext).
func (a *authenticator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := a.reg.Set()
		if set.Len() == 0 && !a.required {
			next.ServeHTTP(w, r)
			return
		}
		c, reason := a.authenticate(set, r)
		if c == nil {
			a.log.DebugContext(r.Context(), "unauthorized request", "reason", reason, "remote", r.RemoteAddr)
			writeUnauthorized(w, reason)
			return
		}
		next.ServeHTTP(w, r.WithContext(clients.NewContext(r.Context(), c)))
	})
}

// authenticate returns the client r's credentials name, or nil and why not
// (a hint for the caller, never the credentials).
func (a *authenticator) authenticate(set *clients.Set, r *http.Request) (*clients.Client, string) {
	if a.mtls {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return nil, "no client certificate"
		}
		cert := r.TLS.PeerCertificates[0]
		for _, name := range append([]string{cert.Subject.CommonName}, cert.DNSNames...) {
			if c, ok := set.Lookup(name); ok {
				return c, ""
			}
		}
		return nil, "the client certificate names no configured client (its CN or a DNS name must be a name in the clients file: sessiond clients add NAME --allow ...)"
	}
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return nil, "send the header Authorization: Bearer SECRET, with a secret from sessiond clients add"
	}
	scheme, secret, ok := strings.Cut(values[0], " ")
	if len(values) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, "send exactly one header Authorization: Bearer SECRET"
	}
	if c, ok := set.Authenticate(strings.TrimSpace(secret)); ok {
		return c, ""
	}
	return nil, "the secret is not valid (a client's secret is shown once, by sessiond clients add)"
}

// authorize is the rpc.HandlerOptions.Authorize hook: the authenticated
// client must have the permission the method needs. A request that was not
// authenticated (no client is configured) may call anything.
func (a *authenticator) authorize(ctx context.Context, method string) *rpc.Error {
	c, ok := clients.FromContext(ctx)
	if !ok || c.Allows(method) {
		return nil
	}
	return &rpc.Error{Code: CodeForbidden, Message: "forbidden: client " + c.Name + " may not call " + method}
}

// writeUnauthorized answers 401 with WWW-Authenticate: Bearer and a
// JSON-RPC error object (CodeUnauthorized, "unauthorized", id null), with
// the reason as its data.
func writeUnauthorized(w http.ResponseWriter, reason string) {
	body, err := json.Marshal(struct {
		JSONRPC string     `json:"jsonrpc"`
		Error   *rpc.Error `json:"error"`
		ID      any        `json:"id"`
	}{"2.0", &rpc.Error{Code: CodeUnauthorized, Message: "unauthorized", Data: reason}, nil})
	if err != nil {
		panic("sessiond: cannot encode a plain error object: " + err.Error())
	}
	w.Header().Set("WWW-Authenticate", "Bearer")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write(append(body, '\n'))
}

// checkExposure is the secure-by-default rule: the API may be served with
// nobody to authenticate callers only on a loopback address, unless
// Config.AllowUnauthenticated says otherwise. It returns whether
// credentials are required even while no client is configured.
func (s *Server) checkExposure(set *clients.Set) (required bool, err error) {
	if s.cfg.TLSClientCAFile != "" {
		return true, nil
	}
	if loopbackAddress(s.cfg.Listen) {
		return false, nil
	}
	if s.cfg.AllowUnauthenticated {
		if set.Len() == 0 {
			s.log.Warn("serving the session API WITHOUT AUTHENTICATION on an address other than loopback: anyone who can reach it can open and close sessions; add a client to require credentials",
				"addr", s.cfg.Listen)
		}
		return false, nil
	}
	if set.Len() == 0 {
		return false, fmt.Errorf("%w (%s): anyone who could reach it could open sessions; configure a client (clients file %s) or a client CA", ErrUnauthenticated, s.cfg.Listen, s.reg.Path())
	}
	return true, nil
}

// loopbackAddress reports whether the host of addr (host:port) is a
// loopback address: an IP address in 127.0.0.0/8 or ::1, or "localhost".
// An empty host (every interface), 0.0.0.0, :: and every other name are
// not.
func loopbackAddress(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// openAuth loads the clients file and the TLS files and applies the
// secure-by-default rule; it writes nothing.
func (s *Server) openAuth() error {
	reg, err := clients.OpenRegistry(s.cfg.ClientsFile, s.log)
	if err != nil {
		return fmt.Errorf("open clients: %w", err)
	}
	s.reg = reg
	if s.tls, err = tlsConfig(&s.cfg, s.log); err != nil {
		return err
	}
	required, err := s.checkExposure(reg.Set())
	if err != nil {
		return err
	}
	s.auth = &authenticator{reg: reg, required: required, mtls: s.cfg.TLSClientCAFile != "", log: s.log}
	return nil
}

// checkBound applies the secure-by-default rule to the address ln is bound
// to, for a host name such as localhost that checkExposure took on trust.
func (s *Server) checkBound(ln net.Listener) error {
	if s.auth.required || s.cfg.AllowUnauthenticated || s.reg.Set().Len() > 0 || loopbackAddress(ln.Addr().String()) {
		return nil
	}
	return fmt.Errorf("%w (%s is bound to %s): anyone who could reach it could open sessions; configure a client (clients file %s) or a client CA",
		ErrUnauthenticated, s.cfg.Listen, ln.Addr(), s.reg.Path())
}
