package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/publish"
	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/token"
)

const serveSummary = `Usage: sessiond serve [flags]

Serves the session API (session.open_session, session.verify_session_token,
session.close_session; README.md, "The methods") as JSON-RPC 2.0 on POST /,
the public signing keys on GET /.well-known/jwks.json, the signed revocation
list for offline verifiers on GET /revocations, and GET /healthz. The admin
listener (--admin-listen, loopback by default) serves GET /healthz and
goroutine and memory figures on GET /debug/stats. On first start it creates
the data directory, an Ed25519 signing key (keys.json, mode 0600) and the
revocation list (revocations/, Badger). With --addr-file it writes, once
listening, the API's address on the first line of that file and the admin
listener's (or "off") on the second. SIGINT or SIGTERM stops it gracefully;
SIGHUP reloads the signing keys and the clients file at once (both are also
re-read every few seconds). While the clients file holds a client
(sessiond clients), every JSON-RPC request needs a client's secret
(Authorization: Bearer SECRET); an address other than loopback needs one, a
--tls-client-ca, or --insecure-allow-unauthenticated. --tls-cert and
--tls-key serve HTTPS (HTTP/2), re-read when the files change. The Go
runtime gets a soft memory limit of 192 MiB unless GOMEMLIMIT sets another.`

// defaultMemoryLimit is the soft memory limit of the Go runtime unless
// GOMEMLIMIT sets one.
const defaultMemoryLimit = 192 << 20

// defaultAdminListen is the default of --admin-listen: loopback only, so
// that the operator's endpoints are off the public surface unless asked for.
const defaultAdminListen = "127.0.0.1:8081"

// serveConfig is what serve's flags and environment set.
type serveConfig struct {
	config
	server.Config
	addrFile string
}

// parseServe turns serve's flags and environment into a checked
// configuration, before anything is written.
func parseServe(args []string, stderr io.Writer) (*serveConfig, error) {
	var c serveConfig
	fs := newFlagSet("sessiond serve", serveSummary, stderr)
	fs.StringVar(&c.listen, "listen", server.DefaultListen, "address to serve HTTP on")
	fs.StringVar(&c.issuer, "issuer", token.DefaultIssuer, `"iss" claim of new tokens, required of verified ones (changing it makes outstanding tokens inactive)`)
	c.lifecycleFlags(fs)
	fs.DurationVar(&c.RevocationsFreshFor, "revocations-fresh-for", publish.DefaultFreshFor, "how long an offline verifier may trust a GET /revocations document: one that cannot reach the server fails closed after this")
	fs.StringVar(&c.AdminListen, "admin-listen", defaultAdminListen, "address to serve the operator's endpoints on (/healthz, /debug/stats), or off")
	maxConns := fs.Int("max-connections", server.DefaultMaxConnections, "most client connections open at once; at the cap the longest idle one is closed")
	c.authFlags(fs) // clients.go
	fs.StringVar(&c.addrFile, "addr-file", "", "file to write the bound addresses to once listening: the API's on the first line, the admin listener's (or off) on the second")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessiond serve: unexpected argument %q\n", fs.Arg(0))
		return nil, errUsage
	}
	if err := c.checkServe(); err != nil {
		return nil, err
	}
	if err := c.checkAuth(); err != nil {
		return nil, err
	}
	if c.RevocationsFreshFor < time.Second {
		return nil, fmt.Errorf("--revocations-fresh-for must be at least 1s, not %s", c.RevocationsFreshFor)
	}
	if *maxConns < 1 {
		return nil, fmt.Errorf("--max-connections must be at least 1, not %d", *maxConns)
	}
	if given(fs, "max-connections") {
		c.MaxConnections = *maxConns // else 0: the default, lowered to fit the file limit
	}
	if c.AdminListen == "off" {
		c.AdminListen = ""
	}
	c.Listen, c.DataDir, c.Issuer = c.listen, c.dataDir, c.issuer
	c.MaxExpiresIn, c.Leeway, c.JWKSMaxAge = c.maxExpiresIn, c.leeway, c.jwksMaxAge
	return &c, nil
}

// serve runs the server until ctx ends (SIGINT, SIGTERM) or it fails.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	// SIGHUP means "reload the keys"; listen for it before anything else,
	// so that an early one cannot kill the process (its default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	setMemoryLimit()
	c.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	if c.addrFile != "" {
		// A reader waiting for the file must never find a stale one.
		if err := os.Remove(c.addrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("--addr-file: %w", err)
		}
	}
	srv := server.New(c.Config)
	if err := srv.Open(ctx); err != nil {
		return serveError(err, c)
	}
	if c.addrFile != "" {
		if err := writeAddrFile(c.addrFile, srv); err != nil {
			return errors.Join(err, srv.Close())
		}
		defer os.Remove(c.addrFile)
	}
	for {
		select {
		case <-hup:
			srv.ReloadKeys()
			continue
		case <-ctx.Done():
		case <-srv.Done():
		}
		return srv.Close()
	}
}

// setMemoryLimit gives the Go runtime its soft memory limit, unless
// GOMEMLIMIT sets one: the garbage collector then works harder near it
// rather than letting transient buffers (a large revocation snapshot) grow
// the heap. It is the process's setting, so the command's, not the server's.
func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// writeAddrFile writes the bound addresses to path in one rename, so that
// a reader sees the whole file or none.
func writeAddrFile(path string, srv *server.Server) error {
	admin := srv.AdminAddr()
	if admin == "" {
		admin = "off"
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return fmt.Errorf("--addr-file: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%s\n%s\n", srv.Addr(), admin)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--addr-file: %w", err)
	}
	return nil
}

// serveError adds to an error of the server the flag that fixes it.
func serveError(err error, c *serveConfig) error {
	if aerr := authError(err, c); aerr != nil {
		return aerr
	}
	var listen *server.ListenError
	var files *server.FileLimitError
	switch {
	case errors.As(err, &listen) && listen.Admin:
		return fmt.Errorf("%w; give --admin-listen (SESSIOND_ADMIN_LISTEN) a free address, or off", err)
	case errors.As(err, &files) && files.Err != nil:
		return fmt.Errorf("raise the open file limit to %d for --max-connections %d: %w", files.Need, files.Want, files.Err)
	case errors.As(err, &files):
		return fmt.Errorf("--max-connections %d needs %d open files, but the hard limit is %d: raise it (ulimit -Hn, or LimitNOFILE= for systemd) or lower --max-connections to %d",
			files.Want, files.Need, files.Limit, files.Fits())
	}
	return storeError(err, &c.config)
}
