package server

// This file is the API listener's TLS: the configuration (TLS 1.2 at
// least, HTTP/2 and HTTP/1.1 by ALPN, client certificates when a client CA
// is given) and the certificate that follows its files, so that a renewal
// needs no restart.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is the most often a handshake looks at the certificate
// files for a change.
const certCheckInterval = time.Second

// ErrTLSConfig is wrapped by Open's refusals of the TLS settings (a
// certificate without its key, a client CA without a certificate, files
// that do not load).
var ErrTLSConfig = errors.New("bad TLS configuration")

// tlsConfig returns the API listener's TLS configuration, nil when TLS is
// off (Config.TLSCertFile empty).
func tlsConfig(cfg *Config, log *slog.Logger) (*tls.Config, error) {
	switch {
	case (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == ""):
		return nil, fmt.Errorf("%w: a certificate and its private key go together: give both files, or neither", ErrTLSConfig)
	case cfg.TLSCertFile == "" && cfg.TLSClientCAFile != "":
		return nil, fmt.Errorf("%w: client certificates need TLS: give a server certificate and its key too", ErrTLSConfig)
	case cfg.TLSCertFile == "":
		return nil, nil
	}
	certs, err := newCertFiles(cfg.TLSCertFile, cfg.TLSKeyFile, log)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: certs.get,
		// http.Server.ServeTLS adds "h2" and "http/1.1" to NextProtos.
	}
	if cfg.TLSClientCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client CA: %v", ErrTLSConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: client CA %s holds no PEM certificate", ErrTLSConfig, cfg.TLSClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// certFiles is a certificate and key pair that follows its files: a
// handshake at least certCheckInterval after the last look checks the
// files' size and modification time, and loads them again when either
// changed. A pair that does not load (half written, or a key that does not
// match) is logged at Error and the last good one stays in use; it is
// tried again when the files change again.
type certFiles struct {
	cert, key string
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	current *tls.Certificate
	stamp   [2]fileStamp // of cert, key, when last looked at
	checked time.Time
}

// fileStamp tells whether a file changed without reading it.
type fileStamp struct {
	mod  time.Time
	size int64
}

func newCertFiles(cert, key string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{cert: cert, key: key, log: log, now: time.Now}
	c.stamp = c.stat()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%w: load certificate %s and key %s: %v", ErrTLSConfig, cert, key, err)
	}
	c.current = &pair
	c.checked = c.now()
	return c, nil
}

func (c *certFiles) stat() [2]fileStamp {
	var st [2]fileStamp
	for i, path := range []string{c.cert, c.key} {
		if info, err := os.Stat(path); err == nil {
			st[i] = fileStamp{mod: info.ModTime(), size: info.Size()}
		}
	}
	return st
}

// get is the tls.Config.GetCertificate hook.
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= certCheckInterval || now.Before(c.checked) {
		c.checked = now
		if st := c.stat(); st != c.stamp {
			c.stamp = st
			pair, err := tls.LoadX509KeyPair(c.cert, c.key)
			if err != nil {
				c.log.Error("keeping the last good TLS certificate: the new files do not load", "cert", c.cert, "key", c.key, "err", err)
			} else {
				c.current = &pair
				c.log.Info("reloaded the TLS certificate", "cert", c.cert)
			}
		}
	}
	return c.current, nil
}
