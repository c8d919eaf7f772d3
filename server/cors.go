package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// corsMaxAge is how long a browser may cache a preflight's answer, in
// seconds (Access-Control-Max-Age): ten minutes, so that a change of
// --cors-origin reaches browsers soon. (Chromium caps it at two hours.)
const corsMaxAge = 600

// ErrCORSWildcard refuses "*" as a CORS origin: sessiond mints and ends
// sessions, and letting every web page on the Internet call it from its
// visitors' browsers is never what an operator of an authentication service
// means. Name each origin that may.
var ErrCORSWildcard = errors.New(`CORS origin "*" is refused: sessiond opens and closes sessions, so it names the web origins that may call it from a browser; give each one, such as --cors-origin https://app.example.com`)

// CheckCORSOrigin checks one allowed browser origin, as Config.CORSOrigins
// takes it, and returns it as browsers send it in the Origin header: the
// scheme http or https, "://", a host (a DNS name, an IPv4 address, or an
// IPv6 address in brackets) and an optional port, nothing else (no path, not
// even "/", no query, no user); scheme and host in lower case, and the
// scheme's default port (80, 443) left out. "*" is refused with
// [ErrCORSWildcard], "null" (the origin of sandboxed and file: pages, which
// any page can claim) too.
func CheckCORSOrigin(origin string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("CORS origin %q %s: write scheme://host[:port] with nothing after it, such as https://app.example.com or http://localhost:3000", origin, why)
	}
	switch origin {
	case "*":
		return "", ErrCORSWildcard
	case "null":
		return bad("is what sandboxed and file: pages send, which any page can claim")
	case "":
		return bad("is empty")
	}
	u, err := url.Parse(origin)
	switch {
	case err != nil:
		return bad("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("does not begin with http:// or https://")
	case u.Opaque != "" || !strings.HasPrefix(origin[len(u.Scheme):], "://"):
		return bad("has no // after the scheme")
	case u.User != nil:
		return bad("has a user name")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.HasSuffix(origin, "#"):
		return bad("has a path, query or fragment (an origin has none, not even a final /)")
	case u.Host == "":
		return bad("has no host")
	}
	host, port := u.Hostname(), u.Port()
	if strings.HasSuffix(u.Host, ":") {
		return bad("has an empty port")
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return bad("has a port that is not a number from 1 to 65535")
		}
		if u.Scheme == "http" && n == 80 || u.Scheme == "https" && n == 443 {
			port = "" // browsers leave the default port out
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return bad("has an IPv6 zone")
		}
		if ip.Is6() && !strings.HasPrefix(u.Host, "[") {
			return bad("has an IPv6 address without brackets")
		}
	} else if !corsHostname(host) {
		return bad("has a host that is neither a DNS name nor an IP address")
	}
	out := u.Scheme + "://" + strings.ToLower(host)
	if strings.Contains(host, ":") {
		out = u.Scheme + "://[" + strings.ToLower(host) + "]"
	}
	if port != "" {
		out += ":" + port
	}
	return out, nil
}

// corsHostname reports whether name is a DNS host name: dot-separated
// labels of letters, digits and inner hyphens (or underscores, which some
// names have), 63 bytes each at most.
func corsHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return net.ParseIP(name) == nil
}

// cors lets browser pages of the allowed origins call next (the JSON-RPC
// endpoint). A preflight (OPTIONS with Access-Control-Request-Method) from
// an allowed origin is answered 204 with Access-Control-Allow-Origin (that
// origin exactly), -Allow-Methods POST, -Allow-Headers Content-Type,
// Authorization, and -Max-Age, and never reaches next (nor any caller
// check: a browser sends no credentials in a preflight). Any other request
// from an allowed origin gets Access-Control-Allow-Origin and goes on to
// next. A request from any other origin, or with none, gets no CORS header
// and goes to next as it is, so a preflight gets next's 405. Every reply
// says Vary: Origin, since it depends on the Origin header. No
// Access-Control-Allow-Credentials: callers send their secret in an
// Authorization header, never in a cookie.
type cors struct {
	allowed map[string]bool // origins as CheckCORSOrigin returns them
	next    http.Handler
}

// newCORS checks the origins and returns what wraps a handler in CORS for
// them; with none, it returns the handler itself.
func newCORS(origins []string) (func(http.Handler) http.Handler, error) {
	allowed := map[string]bool{}
	for _, o := range origins {
		norm, err := CheckCORSOrigin(o)
		if err != nil {
			return nil, err
		}
		allowed[norm] = true
	}
	return func(next http.Handler) http.Handler {
		if len(allowed) == 0 {
			return next
		}
		return &cors{allowed: allowed, next: next}
	}, nil
}

func (c *cors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origins := r.Header.Values("Origin")
	if len(origins) != 1 || !c.allowed[origins[0]] {
		c.next.ServeHTTP(w, r)
		return
	}
	h.Set("Access-Control-Allow-Origin", origins[0])
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", http.MethodPost)
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	c.next.ServeHTTP(w, r)
}
