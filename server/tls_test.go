package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/clients"
	"github.com/sessiond/sessiond/server"
)

// testCA is a certificate authority a test makes.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

var serials = big.NewInt(100)

// issue returns a leaf certificate and its key, PEM-encoded: for a server
// on 127.0.0.1 when client is false, else a client certificate.
func (ca *testCA) issue(t *testing.T, cn string, dnsNames []string, client bool) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial = new(big.Int).Add(serials, big.NewInt(1))
	serials = serial
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dnsNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), serial
}

// writeFile writes data to path, replacing it in one rename, as
// certificate tools do.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tlsClient is an HTTP client for the test CA with HTTP/2 on, a new
// connection (a new handshake) for every request.
func tlsClient(ca *testCA, certs ...tls.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.pool, Certificates: certs},
		ForceAttemptHTTP2: true,
		DisableKeepAlives: true,
	}, Timeout: 10 * time.Second}
}

// servedSerial handshakes with addr and returns the serial number of the
// certificate the server presents.
func servedSerial(t *testing.T, addr string, ca *testCA) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// With --tls-cert/--tls-key the API is HTTPS only: TLS 1.2 at least,
// HTTP/2 by ALPN (and HTTP/1.1), the public endpoints there too; a renewed
// certificate is served from the next handshake on, without a restart; a
// bad new pair keeps the old one and logs an Error.
func TestTLS(t *testing.T) {
	ca := newCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM, first := ca.issue(t, "sessiond", nil, false)
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	var logs syncBuf
	srv := open(t, server.Config{TLSCertFile: certFile, TLSKeyFile: keyFile,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	url := "https://" + srv.Addr() + "/"

	hc := tlsClient(ca)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(openReq))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.StatusCode != 200 || !strings.Contains(string(body), "access_token") {
		t.Errorf("open_session over TLS = %s %d %s, want HTTP/2.0 200 and a token", resp.Proto, resp.StatusCode, body)
	}
	if v := resp.TLS.Version; v < tls.VersionTLS12 {
		t.Errorf("TLS version %x, want at least 1.2", v)
	}
	for _, path := range []string{".well-known/jwks.json", "revocations", "healthz"} {
		resp, err := hc.Get(url + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET /%s over TLS = %v %v, want 200", path, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	// HTTP/1.1 clients are served too.
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	if resp, err := h1.Post(url, "application/json", strings.NewReader(verifyReq)); err != nil || resp.Proto != "HTTP/1.1" {
		t.Errorf("HTTP/1.1 over TLS = %v %v, want HTTP/1.1", resp, err)
	} else {
		resp.Body.Close()
	}
	// TLS 1.1 is refused; plain HTTP gets no session API.
	if conn, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded, want a refusal")
	}
	if resp, err := http.Post("http://"+srv.Addr()+"/", "application/json", strings.NewReader(openReq)); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "access_token") {
			t.Errorf("plain HTTP to the TLS listener opened a session: %d %s", resp.StatusCode, b)
		}
	}

	// Renewal: new files, the next handshakes present the new certificate.
	certPEM2, keyPEM2, second := ca.issue(t, "sessiond", nil, false)
	writeFile(t, keyFile, keyPEM2)
	writeFile(t, certFile, certPEM2)
	waitFor(t, "the renewed certificate is served", func() bool { return servedSerial(t, srv.Addr(), ca).Cmp(second) == 0 })
	if got := servedSerial(t, srv.Addr(), ca); got.Cmp(first) == 0 {
		t.Errorf("served serial %v after renewal, want %v", got, second)
	}

	// A bad new pair (a certificate with another's key) keeps the old one.
	certPEM3, _, _ := ca.issue(t, "sessiond", nil, false)
	writeFile(t, certFile, certPEM3)
	waitFor(t, "the bad pair is logged", func() bool {
		servedSerial(t, srv.Addr(), ca)
		return strings.Contains(logs.String(), "keeping the last good TLS certificate")
	})
	if got := servedSerial(t, srv.Addr(), ca); got.Cmp(second) != 0 {
		t.Errorf("served serial %v after a bad pair, want the last good %v", got, second)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the bad pair was not logged at Error:\n%s", logs.String())
	}
	resp, err = hc.Post(url, "application/json", strings.NewReader(verifyReq))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a bad pair: %v %v, want still served", resp, err)
	}
	resp.Body.Close()
}

// Bad TLS settings are refused before anything is written, saying what to
// give.
func TestTLSConfigRefused(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "test CA")
	certPEM, keyPEM, _ := ca.issue(t, "sessiond", nil, false)
	certFile, keyFile, caFile, junk := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem"), filepath.Join(dir, "junk")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	writeFile(t, caFile, ca.pem)
	writeFile(t, junk, []byte("not PEM"))
	for _, tt := range []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"cert only", server.Config{TLSCertFile: certFile}, "give both files"},
		{"key only", server.Config{TLSKeyFile: keyFile}, "give both files"},
		{"CA without cert", server.Config{TLSClientCAFile: caFile}, "client certificates need TLS"},
		{"missing cert", server.Config{TLSCertFile: filepath.Join(dir, "none"), TLSKeyFile: keyFile}, "load certificate"},
		{"key of another", server.Config{TLSCertFile: certFile, TLSKeyFile: certFile}, "load certificate"},
		{"junk CA", server.Config{TLSCertFile: certFile, TLSKeyFile: keyFile, TLSClientCAFile: junk}, "holds no PEM certificate"},
		{"missing CA", server.Config{TLSCertFile: certFile, TLSKeyFile: keyFile, TLSClientCAFile: filepath.Join(dir, "none")}, "client CA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.DataDir, tt.cfg.Listen = filepath.Join(t.TempDir(), "data"), "127.0.0.1:0"
			srv := server.New(tt.cfg)
			err := srv.Open(context.Background())
			if !errors.Is(err, server.ErrTLSConfig) || !strings.Contains(err.Error(), tt.want) {
				srv.Close()
				t.Fatalf("Open() = %v, want ErrTLSConfig saying %q", err, tt.want)
			}
			if _, err := os.Stat(tt.cfg.DataDir); !os.IsNotExist(err) {
				t.Errorf("the refusal created the data dir (%v)", err)
			}
		})
	}
}

// Mutual TLS: every caller needs a certificate from the client CA; its CN,
// or else a DNS name, names the client whose permissions apply; a
// certificate naming no configured client is 401 -32001.
func TestMutualTLS(t *testing.T) {
	serverCA, clientCA, otherCA := newCA(t, "server CA"), newCA(t, "client CA"), newCA(t, "other CA")
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem")
	certPEM, keyPEM, _ := serverCA.issue(t, "sessiond", nil, false)
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	writeFile(t, caFile, clientCA.pem)
	dataDir := filepath.Join(t.TempDir(), "data")
	addClient(t, dataDir, "billing", clients.Verify)
	addClient(t, dataDir, "web.example.com", clients.Open)
	srv := open(t, server.Config{DataDir: dataDir, TLSCertFile: certFile, TLSKeyFile: keyFile, TLSClientCAFile: caFile})
	url := "https://" + srv.Addr() + "/"

	pair := func(ca *testCA, cn string, dns ...string) tls.Certificate {
		c, k, _ := ca.issue(t, cn, dns, true)
		p, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name       string
		cert       *tls.Certificate
		body       string
		wantCode   int
		wantInBody string
	}{
		{"CN names a client", ptr(pair(clientCA, "billing")), verifyReq, 200, `"result":{"active":false}`},
		{"CN's permissions apply", ptr(pair(clientCA, "billing")), openReq, 200, `forbidden: client billing may not call session.open_session`},
		{"DNS name names a client", ptr(pair(clientCA, "Web Front End", "web.example.com")), openReq, 200, `access_token`},
		{"names no client", ptr(pair(clientCA, "stranger", "stranger.example.com")), verifyReq, 401, `"code":-32001,"message":"unauthorized"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, www, body := call(t, tlsClient(serverCA, *tt.cert), url, "", tt.body)
			if code != tt.wantCode || !strings.Contains(body, tt.wantInBody) {
				t.Errorf("= %d %s, want %d with %s", code, body, tt.wantCode, tt.wantInBody)
			}
			if code == 401 && www != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want Bearer", www)
			}
		})
	}
	for _, tt := range []struct {
		name  string
		certs []tls.Certificate
	}{{"no certificate", nil}, {"another CA's certificate", []tls.Certificate{pair(otherCA, "billing")}}} {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(verifyReq))
		if resp, err := tlsClient(serverCA, tt.certs...).Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("%s: %s, want the handshake refused", tt.name, resp.Status)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// The connection cap holds under TLS: a connection with a request in
// progress is busy on the cap's books (ConnState sees the *tls.Conn), so a
// newcomer at the cap is turned away rather than the busy one closed.
func TestTLSConnectionCap(t *testing.T) {
	ca := newCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM, _ := ca.issue(t, "sessiond", nil, false)
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	srv := open(t, server.Config{TLSCertFile: certFile, TLSKeyFile: keyFile, MaxConnections: 1})
	busy, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(busy)
	fmt.Fprintf(busy, "POST / HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(verifyReq))
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("waiting for 100 Continue: %q, %v", line, err)
	}
	r.ReadString('\n')
	// The newcomer is turned away at the cap (its handshake fails).
	if c, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: ca.pool}); err == nil {
		c.Close()
	}
	io.WriteString(busy, verifyReq)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the busy request after a newcomer at the cap: %v, %v; want it served, not its connection closed", resp, err)
	}
	resp.Body.Close()
}
