package clients

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors of this package; each is wrapped with the details and, where
// there is one, the fix.
var (
	// ErrName: a client name breaks the rule of [ValidName].
	ErrName = errors.New("invalid client name")
	// ErrPermission: a permission other than open, close or verify, or none.
	ErrPermission = errors.New("invalid permission")
	// ErrExists: [Add] of a name that the file holds already.
	ErrExists = errors.New("client exists")
	// ErrNotFound: [Remove] of a name that the file does not hold.
	ErrNotFound = errors.New("no such client")
	// ErrInsecure: the clients file is open to other users.
	ErrInsecure = errors.New("clients file is open to other users")
	// ErrNotRegular: the clients file is a symbolic link, a directory or
	// anything but a regular file.
	ErrNotRegular = errors.New("clients file is not a regular file")
	// ErrCorrupt: the clients file cannot be parsed or breaks a rule.
	ErrCorrupt = errors.New("clients file is corrupt")
)

// Permission is what a client may do; see [Client.Allows] for the methods
// each covers.
type Permission string

// The permissions.
const (
	Open   Permission = "open"   // session.open_session
	Close  Permission = "close"  // session.close_session, session.close_all_sessions
	Verify Permission = "verify" // session.verify_session_token, session.introspect_session_token
)

// methods maps each JSON-RPC method to the permission it needs.
var methods = map[string]Permission{
	"session.open_session":             Open,
	"session.close_session":            Close,
	"session.close_all_sessions":       Close,
	"session.verify_session_token":     Verify,
	"session.introspect_session_token": Verify,
}

// everyone lists the methods every authenticated client may call.
var everyone = map[string]bool{"rpc.discover": true}

// ParsePermissions parses a comma-separated list such as
// "open,close,verify" (spaces around the commas are allowed, repeats are
// one). It needs at least one.
func ParsePermissions(list string) ([]Permission, error) {
	var perms []Permission
	for p := range strings.SplitSeq(list, ",") {
		p = strings.TrimSpace(p)
		switch Permission(p) {
		case Open, Close, Verify:
			if !slices.Contains(perms, Permission(p)) {
				perms = append(perms, Permission(p))
			}
		default:
			return nil, fmt.Errorf("%w %q: give a comma-separated list of open, close and verify (e.g. --allow open,close,verify)", ErrPermission, p)
		}
	}
	if len(perms) == 0 {
		return nil, fmt.Errorf("%w: none given: give a comma-separated list of open, close and verify", ErrPermission)
	}
	slices.Sort(perms)
	return perms, nil
}

// maxNameLen is the longest client name.
const maxNameLen = 64

// ValidName checks a client name: 1 to 64 bytes of lower-case ASCII
// letters, digits, '.', '-' and '_', beginning with a letter or a digit
// (so "billing", "web-1", "app.example.com"). The rule keeps names safe to
// print in logs and error messages, and lets a certificate's DNS name be a
// client's name. Names are compared byte for byte.
func ValidName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w %q: it must be 1 to %d bytes long", ErrName, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '-' || c == '_'):
		default:
			return fmt.Errorf("%w %q: use lower-case letters, digits, '.', '-' and '_', beginning with a letter or a digit (e.g. billing, web-1)", ErrName, name)
		}
	}
	return nil
}

// Client is one caller's entry. Its secret's hash is unexported and never
// printed.
type Client struct {
	Name    string
	Allow   []Permission // sorted, no repeats
	Created time.Time
	hash    [sha256.Size]byte
}

// Allows reports whether c may call the JSON-RPC method: open allows
// session.open_session; close allows session.close_session and
// session.close_all_sessions; verify allows session.verify_session_token
// and session.introspect_session_token; rpc.discover is allowed to every
// client. Any other method is not allowed (the JSON-RPC handler answers an
// unknown one with "method not found" before it asks).
func (c *Client) Allows(method string) bool {
	if everyone[method] {
		return true
	}
	need, ok := methods[method]
	return ok && slices.Contains(c.Allow, need)
}

// Set is an immutable set of clients, as loaded from a file.
type Set struct {
	clients []*Client // sorted by name
	byName  map[string]*Client
}

func newSet(clients []*Client) *Set {
	s := &Set{clients: clients, byName: make(map[string]*Client, len(clients))}
	slices.SortFunc(s.clients, func(a, b *Client) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range s.clients {
		s.byName[c.Name] = c
	}
	return s
}

// Len returns the number of clients; a nil *Set has none.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.clients)
}

// Clients returns the clients, sorted by name. They must not be changed.
func (s *Set) Clients() []*Client {
	if s == nil {
		return nil
	}
	return slices.Clone(s.clients)
}

// Lookup returns the client named name.
func (s *Set) Lookup(name string) (*Client, bool) {
	if s == nil {
		return nil, false
	}
	c, ok := s.byName[name]
	return c, ok
}

// Authenticate returns the client whose secret is secret. It hashes secret
// and compares the hash with every client's in constant time, visiting all
// clients whatever matches, so its timing tells nothing of the names or
// the hashes.
func (s *Set) Authenticate(secret string) (*Client, bool) {
	if s == nil || secret == "" {
		return nil, false
	}
	h := sha256.Sum256([]byte(secret))
	var found *Client
	for _, c := range s.clients {
		if subtle.ConstantTimeCompare(h[:], c.hash[:]) == 1 {
			found = c
		}
	}
	return found, found != nil
}

// contextKey is the key of the client in a context.
type contextKey struct{}

// NewContext returns a copy of ctx that carries the authenticated client c.
func NewContext(ctx context.Context, c *Client) context.Context {
	return context.WithValue(ctx, contextKey{}, c)
}

// FromContext returns the client that [NewContext] stored in ctx.
func FromContext(ctx context.Context) (*Client, bool) {
	c, ok := ctx.Value(contextKey{}).(*Client)
	return c, ok && c != nil
}

// NameFrom returns the name of the client in ctx, "" when there is none
// (no clients are configured, or the request was never authenticated).
func NameFrom(ctx context.Context) string {
	if c, ok := FromContext(ctx); ok {
		return c.Name
	}
	return ""
}
