// Package server is sessiond's HTTP service, startable in-process: a
// [Server] opens the data directory (the signing keys and the revocation
// list), listens on the API address and the admin address, serves, follows
// the key file, and shuts down gracefully on [Server.Close].
//
// The command (cmd/sessiond) turns flags and environment into a [Config],
// handles signals and sets process-wide settings such as the memory limit;
// tests start a Server on 127.0.0.1:0 in a temporary directory.
// [NewHTTPServer] holds the HTTP settings sessiond serves with, for any other
// server that must behave the same (cmd/sessiond-bench).
//
// # Endpoints
//
// The API listener serves the session methods (package session) as JSON-RPC
// 2.0 on POST /, the public signing keys on GET /.well-known/jwks.json, the
// signed revocation list for offline verifiers on GET /revocations, and
// GET /healthz. The admin listener serves GET /metrics (Prometheus, a
// registry of the server's own), GET /healthz, GET /readyz, Go's profiler
// under /debug/pprof/ and GET /debug/stats.
//
// # Logs
//
// Every JSON-RPC call gets one line at Info ("rpc call": method, code,
// duration, request id, client, the token's jti at most); every line
// logged for a request carries its request id (X-Request-Id, echoed).
// Internal errors are logged at Error with their cause.
//
// # Callers and TLS
//
// While the clients file (Config.ClientsFile, package clients) holds a
// client, every JSON-RPC request needs a client's secret or, with
// Config.TLSClientCAFile, a client certificate naming one, and each call
// the client's permission (auth.go); the other endpoints stay public. Open
// refuses an address other than loopback with nobody to authenticate
// callers ([ErrUnauthenticated]). With Config.TLSCertFile and TLSKeyFile
// the API listener serves HTTPS only, following the files (tls.go).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/clients"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/publish"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
	"github.com/sessiond/sessiond/token"
)

// DefaultListen is the API address when Config.Listen is empty.
const DefaultListen = "127.0.0.1:8080"

// DefaultKeyReloadInterval is how often a running server re-reads the key
// file unless Config.KeyReloadInterval says otherwise.
const DefaultKeyReloadInterval = 2 * time.Second

// shutdownTimeout is how long Close waits for requests in progress.
const shutdownTimeout = 10 * time.Second

// Config is what a Server serves with. A zero field means the documented
// default.
type Config struct {
	// DataDir holds the signing keys (keys.json) and the revocation list
	// (revocations/, revocations.seal, revocations.journal). Required.
	// Open creates it with mode 0700 and refuses one that others can
	// enter.
	DataDir string
	// KeysFile is the key file (default DataDir/keys.json). Several
	// servers may share one: each re-reads it every KeyReloadInterval, and
	// a first start creates it under its lock, so servers starting at once
	// on a missing one end with one key.
	KeysFile string
	// RevocationStore names the revocation list: "" or StoreBadger for
	// Badger in DataDir/revocations; redis://[user:password@]host:port[/db]
	// for one Valkey or Redis server, rediss://... for the same over TLS,
	// redis://host:port?addr=host2:port2 for a cluster (see CheckStoreURL).
	// Nodes that share one see each other's closes.
	RevocationStore string
	// RevocationStoreReplicas is how many replicas must have a close
	// before it is acknowledged (WAITAOF); Valkey stores only. Zero waits
	// for the server's own AOF only.
	RevocationStoreReplicas int
	// Listen is the API's address, host:port (default DefaultListen; port 0
	// picks a free one, see Server.Addr).
	Listen string
	// AdminListen is the address of the operator's endpoints (/metrics,
	// /healthz, /readyz, /debug/pprof/, /debug/stats); empty means no admin
	// listener.
	AdminListen string
	// Issuer is the "iss" claim of new tokens, required of verified ones
	// (default token.DefaultIssuer).
	Issuer string
	// MaxExpiresIn is the longest session lifetime open_session grants
	// (default session.DefaultMaxExpiresIn); it is also the keys' longest
	// token lifetime.
	MaxExpiresIn time.Duration
	// Leeway is the clock skew allowed on exp and iat, and the revocation
	// list's retention past exp. Zero allows none.
	Leeway time.Duration
	// JWKSMaxAge is how long verifiers may cache the published keys, and how
	// long a new key waits before it signs. Zero means no caching.
	JWKSMaxAge time.Duration
	// RevocationsFreshFor is how long an offline verifier may trust a
	// GET /revocations document (default publish.DefaultFreshFor).
	RevocationsFreshFor time.Duration
	// MaxConnections is the most client connections open at once; at the
	// cap the longest idle one is closed. Open raises the process's soft
	// limit on open files to this plus what the server needs besides, and
	// refuses with a *FileLimitError when the hard limit is too low. Zero
	// means DefaultMaxConnections, lowered with a warning to what the hard
	// limit holds.
	MaxConnections int
	// InvalidTokenBudget is how many failed signature checks each caller
	// (each remote IP) may cause per second; past it, its verifications of
	// tokens not seen before get error -32005 without a check (see
	// session.WithInvalidTokenBudget). Zero means
	// session.DefaultInvalidTokenBudget; negative, no budget.
	InvalidTokenBudget int
	// KeyReloadInterval is how often the key file is re-read (default
	// DefaultKeyReloadInterval).
	KeyReloadInterval time.Duration
	// CORSOrigins are the web origins (scheme://host[:port], see
	// CheckCORSOrigin) whose pages may call the JSON-RPC endpoint from a
	// browser; none means no CORS headers at all. Open refuses a bad one.
	CORSOrigins []string
	// Logger receives the server's log (default: discarded).
	Logger *slog.Logger

	// ClientsFile is the callers' credentials (package clients; default
	// DataDir/clients.json, a missing file holds none), followed like the
	// key file. While it holds a client, every JSON-RPC request needs one's
	// secret (server/auth.go).
	ClientsFile string
	// AllowUnauthenticated lets Open serve the API on an address other
	// than loopback with no client configured and no client CA (which it
	// otherwise refuses, ErrUnauthenticated); it logs a warning.
	AllowUnauthenticated bool
	// TLSCertFile and TLSKeyFile, both or neither, are the API listener's
	// certificate (PEM, the chain after the leaf) and private key; with them
	// it serves HTTPS only (TLS 1.2 at least, HTTP/2), and re-reads the
	// files when they change (server/tls.go).
	TLSCertFile, TLSKeyFile string
	// TLSClientCAFile (PEM) requires every caller to present a client
	// certificate issued by it; the certificate's CN, or else one of its
	// DNS names, names the client in the clients file, whose permissions
	// apply. Needs TLSCertFile.
	TLSClientCAFile string
}

// ListenError is Open's report of an address it could not listen on.
type ListenError struct {
	Admin bool   // the admin address (Config.AdminListen), else the API's
	Addr  string // the address as configured
	Err   error
}

func (e *ListenError) Error() string {
	if e.Admin {
		return "admin listener: " + e.Err.Error()
	}
	return e.Err.Error()
}

func (e *ListenError) Unwrap() error { return e.Err }

// Store is what the server needs of its revocation list: the session
// methods' reads and writes (revocations and subject cutoffs), the feed it
// publishes, the retention it keeps entries past their expiry, and Close.
// revocation.Badger is the embedded one; a store shared by several nodes
// implements the same.
type Store interface {
	session.Store
	revocation.Feed
	Retention() time.Duration
	Close() error
}

var _ Store = (*revocation.Badger)(nil)

// Server is sessiond's HTTP service. Create it with New, start it with Open,
// stop it with Close; a Server is opened at most once.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	store Store
	ring  *keys.Keyring
	api   *http.Server
	ln    *connLimiter
	admin *adminServer
	cors  func(http.Handler) http.Handler // CORS for the JSON-RPC endpoint (Config.CORSOrigins)
	reg   *clients.Registry
	auth  *authenticator
	tls   *tls.Config // nil: plain HTTP

	reload   chan os.Signal // to the key ring's Run
	reloadCl chan struct{}  // to the clients registry's Run
	stopKeys context.CancelFunc
	keys     sync.WaitGroup

	served chan struct{} // closed when the API server stops serving
	serve  error         // its result, set before served is closed

	closing   atomic.Bool // set when Close starts: /readyz answers 503
	closeOnce sync.Once
	closeErr  error
}

// New returns a Server for cfg; it opens nothing until Open.
func New(cfg Config) *Server {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.MaxExpiresIn <= 0 {
		cfg.MaxExpiresIn = session.DefaultMaxExpiresIn
	}
	if cfg.RevocationsFreshFor <= 0 {
		cfg.RevocationsFreshFor = publish.DefaultFreshFor
	}
	if cfg.KeyReloadInterval <= 0 {
		cfg.KeyReloadInterval = DefaultKeyReloadInterval
	}
	if cfg.InvalidTokenBudget == 0 {
		cfg.InvalidTokenBudget = session.DefaultInvalidTokenBudget
	}
	if cfg.Issuer == "" {
		cfg.Issuer = token.DefaultIssuer
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = slog.New(contextHandler{log.Handler()})
	if cfg.ClientsFile == "" && cfg.DataDir != "" {
		cfg.ClientsFile = filepath.Join(cfg.DataDir, clients.FileName)
	}
	return &Server{cfg: cfg, log: log, metrics: newMetrics(ReadBuildInfo()),
		reload: make(chan os.Signal, 1), reloadCl: make(chan struct{}, 1), served: make(chan struct{})}
}

// Open raises the file limit for the connection cap, creates the data
// directory if need be, opens the revocation list (Badger's directory lock
// keeps a second server off the data directory; a shared store is opened
// before the directory is created) and the key ring (creating a first key
// on a first start, under the key file's lock), listens on
// the API and admin addresses, and serves in goroutines of its own. When it
// returns nil, Addr and AdminAddr answer and the server is serving.
//
// Open does not stop early when ctx is done, and the running server does not
// watch ctx: Close stops it. (ctx's values reach the listeners; a command
// that is told to stop while opening thus still opens, then closes, so a
// refusal shows either way.) A failed Open leaves nothing open; Close is then
// a no-op.
func (s *Server) Open(ctx context.Context) (err error) {
	if s.cfg.DataDir == "" {
		return errors.New("server: no data directory (Config.DataDir)")
	}
	connCap, err := connectionCap(s.cfg.MaxConnections, s.log)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.closeOpened()
		}
	}()
	ctx = context.WithoutCancel(ctx)
	if s.cors, err = newCORS(s.cfg.CORSOrigins); err != nil {
		return err
	}
	if err := s.openAuth(); err != nil { // before anything is written
		return err
	}
	if err := s.openData(); err != nil {
		return err
	}
	raw, err := new(net.ListenConfig).Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return &ListenError{Addr: s.cfg.Listen, Err: err}
	}
	if err := s.checkBound(raw); err != nil {
		raw.Close()
		return err
	}
	s.ln = newConnLimiter(raw, connCap)
	if s.admin, err = listenAdmin(ctx, s.cfg.AdminListen, s.adminHandler(), s.log); err != nil {
		return err
	}
	api := NewHTTPServer(s.handler(), s.log)
	api.ConnState = s.ln.ConnState
	api.ConnContext = withConn
	api.TLSConfig = s.tls
	s.log.Info("serving", "addr", s.Addr(), "data_dir", s.cfg.DataDir, "issuer", s.cfg.Issuer,
		"tls", s.tls != nil, "clients", s.reg.Set().Len())

	keysCtx, stop := context.WithCancel(context.Background())
	s.stopKeys = stop
	s.keys.Go(func() { s.ring.Run(keysCtx, s.cfg.KeyReloadInterval, s.reload) })
	s.keys.Go(func() { s.reg.Run(keysCtx, s.cfg.KeyReloadInterval, s.reloadCl) })
	s.api = api // from here on, Close shuts it down
	go func() {
		if s.tls != nil {
			s.serve = api.ServeTLS(s.ln, "", "") // the certificate comes from TLSConfig
		} else {
			s.serve = api.Serve(s.ln)
		}
		close(s.served)
	}()
	return nil
}

// openData creates the data directory and opens the store and the keys:
// Badger after the directory it lives in, a shared store before it, so
// that a store refused (a bad URL, unreachable) leaves nothing behind.
func (s *Server) openData() error {
	if sharedStore(s.cfg) {
		if err := s.openStore(); err != nil {
			return err
		}
	}
	if err := MakeDataDir(s.cfg.DataDir); err != nil {
		return err
	}
	if !sharedStore(s.cfg) {
		if err := s.openStore(); err != nil {
			return err
		}
	}
	policy := keys.Policy{MaxTokenLifetime: s.cfg.MaxExpiresIn, Leeway: s.cfg.Leeway, PropagationDelay: s.cfg.JWKSMaxAge}
	keysFile := s.cfg.KeysFile
	if keysFile == "" {
		keysFile = filepath.Join(s.cfg.DataDir, "keys.json")
	}
	ring, err := keys.OpenKeyring(keysFile, policy, keys.KeyringOptions{Logger: s.log})
	if err != nil {
		return fmt.Errorf("open signing keys: %w", err)
	}
	s.ring = ring
	s.metrics.reg.MustRegister(newOpenedCollector(s.store, ring, s.log))
	return nil
}

// openStore opens the revocation list (OpenStore).
func (s *Server) openStore() error {
	store, err := openStore(s.cfg, s.log, s.metrics.committed)
	if err != nil {
		return fmt.Errorf("open revocation list: %w", err)
	}
	s.store = store
	return nil
}

// handler is the API listener's mux.
func (s *Server) handler() http.Handler {
	c := &s.cfg
	sessions := session.New(s.store, s.ring, session.WithIssuer(c.Issuer), session.WithLeeway(c.Leeway),
		session.WithMaxExpiresIn(c.MaxExpiresIn), session.WithInvalidTokenBudget(c.InvalidTokenBudget, callerOf, markRefused),
		session.WithObserver(s.observeSession))
	s.metrics.methods(sessions)
	mux := http.NewServeMux()
	mux.Handle("/{$}", s.cors(withRequestID(s.auth.wrap(tarpit(rpc.NewHandler(sessions, rpc.HandlerOptions{
		Logger: s.log, Observe: s.observeCall, Authorize: s.auth.authorize}))))))
	mux.Handle("GET /.well-known/jwks.json", publish.NewJWKSHandler(publishedKeys(s.ring), c.JWKSMaxAge, s.log))
	mux.Handle("GET /revocations", publish.NewRevocationsHandler(s.store, s.ring, publish.RevocationsOptions{
		Issuer: c.Issuer, FreshFor: c.RevocationsFreshFor, Logger: s.log, Retention: s.store.Retention}))
	mux.HandleFunc("GET /healthz", serveHealthz)
	return mux
}

// Addr returns the address the API listener is bound to ("" before Open).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// AdminAddr returns the address the admin listener is bound to, "" when
// there is none.
func (s *Server) AdminAddr() string {
	if s.admin == nil {
		return ""
	}
	return s.admin.addr
}

// ReloadKeys asks the server to re-read the key file and the clients file
// now, as it does every Config.KeyReloadInterval; it does not wait.
// Requests made while one is pending are one.
func (s *Server) ReloadKeys() {
	select {
	case s.reload <- reloadRequest{}:
	default:
	}
	select {
	case s.reloadCl <- struct{}{}:
	default:
	}
}

// reloadRequest is what ReloadKeys hands the key ring (which takes any
// os.Signal as a reload request).
type reloadRequest struct{}

func (reloadRequest) String() string { return "reload keys" }
func (reloadRequest) Signal()        {}

// Done is closed when the API listener stops serving: after Close, or on its
// own when accepting fails (Close then reports why). It is never closed when
// Open failed.
func (s *Server) Done() <-chan struct{} { return s.served }

// Close stops the server gracefully: it stops accepting, waits up to 10 s
// for requests in progress on both listeners, stops following the key file
// and closes the revocation list. It returns the first error (of the
// shutdown, the serving, or closing the store); closing again returns the
// same.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.api == nil {
			s.closeErr = s.closeOpened() // Open failed or never ran
			return
		}
		s.closing.Store(true)
		s.log.Info("shutting down")
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		var errs []error
		if err := s.api.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down: %w", err))
		}
		errs = append(errs, s.admin.shutdown(ctx))
		<-s.served
		if !errors.Is(s.serve, http.ErrServerClosed) {
			errs = append(errs, s.serve)
		}
		errs = append(errs, s.closeOpened())
		for _, err := range errs {
			if err != nil {
				s.closeErr = err
				break
			}
		}
	})
	return s.closeErr
}

// closeOpened closes whatever Open opened besides the API server: the
// listeners (when the API server never took them), the key follower and
// the store.
func (s *Server) closeOpened() error {
	if s.api == nil && s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	if s.api == nil && s.admin != nil {
		s.admin.shutdown(context.Background())
		s.admin = nil
	}
	if s.stopKeys != nil {
		s.stopKeys()
		s.keys.Wait()
		s.stopKeys = nil
	}
	if s.store != nil {
		err := s.store.Close()
		s.store = nil
		if err != nil {
			s.log.Error("close revocation list", "err", err)
			return fmt.Errorf("close revocation list: %w", err)
		}
	}
	return nil
}

// publishedKeys adapts the keyring to what the JWKS handler publishes.
func publishedKeys(ring *keys.Keyring) func() []token.PublicKey {
	return func() []token.PublicKey {
		published := ring.Published()
		pub := make([]token.PublicKey, len(published))
		for i, k := range published {
			pub[i] = token.PublicKey{ID: k.ID, Algorithm: string(k.Algorithm), Key: k.Public()}
		}
		return pub
	}
}

// MakeDataDir creates dir with mode 0700, and refuses one that others can
// enter: it holds the private keys. Open does this; the key commands too.
func MakeDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("data dir %s has mode %04o; it holds private keys and must be accessible by its owner only: run chmod 700 %s", dir, perm, dir)
	}
	return nil
}
