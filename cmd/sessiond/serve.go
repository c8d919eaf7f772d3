package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
	"github.com/sessiond/sessiond/token"
)

const serveSummary = `Usage: sessiond serve [flags]

Serves the session API of API.txt (session.open_session,
session.verify_session_token, session.close_session) as JSON-RPC 2.0 on
POST /, the public signing keys on GET /.well-known/jwks.json, the
signed revocation list for offline verifiers on GET /revocations, and
GET /healthz. The admin listener (--admin-listen, loopback by default)
serves GET /healthz and goroutine and memory figures on GET /debug/stats. On
first start it creates the data directory, an Ed25519 signing key
(keys.json, mode 0600) and the revocation list (revocations/, Badger).
SIGINT or SIGTERM stops it gracefully; SIGHUP reloads the signing keys at
once (they are also re-read every few seconds). The Go runtime gets a soft
memory limit of 192 MiB unless GOMEMLIMIT sets another.`

// defaultMemoryLimit is the soft memory limit of the Go runtime unless
// GOMEMLIMIT sets one.
const defaultMemoryLimit = 192 << 20

// keyReloadInterval is how often a running server re-reads the key file.
const keyReloadInterval = 2 * time.Second

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := newFlagSet("sessiond serve", serveSummary, stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	fs.StringVar(&c.issuer, "issuer", token.DefaultIssuer, `"iss" claim of new tokens, required of verified ones (changing it makes outstanding tokens inactive)`)
	c.lifecycleFlags(fs)
	var freshFor time.Duration
	fs.DurationVar(&freshFor, "revocations-fresh-for", rpc.DefaultFreshFor, "how long an offline verifier may trust a GET /revocations document: one that cannot reach the server fails closed after this")
	adminListen := fs.String("admin-listen", defaultAdminListen, "address to serve the operator's endpoints on (/healthz, /debug/stats), or off")
	maxConns := fs.Int("max-connections", defaultMaxConnections, "most client connections open at once; at the cap the longest idle one is closed")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessiond serve: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if err := c.checkServe(); err != nil {
		return err
	}
	if freshFor < time.Second {
		return fmt.Errorf("--revocations-fresh-for must be at least 1s, not %s", freshFor)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if *maxConns < 1 {
		return fmt.Errorf("--max-connections must be at least 1, not %d", *maxConns)
	}
	connCap, err := connectionCap(fs, *maxConns, log)
	if err != nil {
		return err
	}
	// SIGHUP means "reload the keys"; listen for it before anything else,
	// so that an early one cannot kill the process (its default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: the garbage collector works harder near it rather
		// than letting transient buffers (a large revocation snapshot)
		// grow the heap. GOMEMLIMIT overrides it.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}

	if err := makeDataDir(c.dataDir); err != nil {
		return err
	}
	// The store's directory lock comes first: it keeps a second server off
	// this data directory before either can create a key.
	store, err := revocation.OpenBadger(c.storeDir(), revocation.Options{Logger: log.With("component", "badger"), Retention: c.leeway})
	if err != nil {
		return storeError(fmt.Errorf("open revocation list: %w", err), &c)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close revocation list", "err", err)
		}
	}()
	ring, err := keys.OpenKeyring(c.keyFile(), c.policy(), keys.KeyringOptions{Logger: log})
	if err != nil {
		return fmt.Errorf("open signing keys: %w", err)
	}

	sessions := session.New(store, ring, session.WithIssuer(c.issuer), session.WithLeeway(c.leeway), session.WithMaxExpiresIn(c.maxExpiresIn))
	mux := http.NewServeMux()
	mux.Handle("/{$}", rpc.NewHandler(sessions, rpc.HandlerOptions{Logger: log}))
	mux.Handle("GET /.well-known/jwks.json", rpc.NewJWKSHandler(publishedKeys(ring), c.jwksMaxAge, log))
	mux.Handle("GET /revocations", rpc.NewRevocationsHandler(store, ring, rpc.RevocationsOptions{Issuer: c.issuer, FreshFor: freshFor, Logger: log,
		Retention: store.Retention}))
	mux.HandleFunc("GET /healthz", serveHealthz)
	srv := newHTTPServer(mux, log)

	raw, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	ln := newConnLimiter(raw, connCap)
	srv.ConnState = ln.ConnState
	admin, err := listenAdmin(*adminListen, log)
	if err != nil {
		ln.Close()
		return err
	}
	log.Info("serving", "addr", ln.Addr().String(), "data_dir", c.dataDir, "issuer", c.issuer)

	var wg sync.WaitGroup
	keysCtx, stopKeys := context.WithCancel(ctx)
	wg.Go(func() { ring.Run(keysCtx, keyReloadInterval, hup) })
	defer func() { stopKeys(); wg.Wait() }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		admin.shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := admin.shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveStats reports the process's goroutines and memory, for the soak run
// and for operators (GET /debug/stats). It says nothing about sessions.
func serveStats(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]uint64{
		"goroutines":       uint64(runtime.NumGoroutine()),
		"heap_alloc_bytes": m.HeapAlloc,
		"heap_sys_bytes":   m.HeapSys,
		"gc_cycles":        uint64(m.NumGC),
	})
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

// makeDataDir creates dir with mode 0700, and refuses one that others can
// enter: it holds the private keys.
func makeDataDir(dir string) error {
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
