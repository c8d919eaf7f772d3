package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientsCmd runs `sessiond clients args...` with env extra.
func clientsCmd(t *testing.T, extra []string, args ...string) result {
	t.Helper()
	return sessiond(t, commandEnv(extra...), append([]string{"clients"}, args...)...)
}

// post sends a JSON-RPC body to url with the secret ("" for none).
func post(t *testing.T, hc *http.Client, url, secret, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

const (
	openCall   = `{"jsonrpc":"2.0","method":"session.open_session","params":{"expires_in":60},"id":1}`
	verifyCall = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"x"},"id":2}`
)

// The clients commands of the real binary: add prints a new secret on
// stdout once (32 random bytes, base64url) and keeps only its hash in a
// 0600 clients.json; list shows names, permissions and creation times and
// never a secret or a hash; remove removes; bad input is refused with the
// fix; flags may follow the name; SESSIOND_CLIENTS_FILE points elsewhere.
func TestClientsCommands(t *testing.T) {
	dir := dataDir(t)
	r := clientsCmd(t, nil, "add", "billing", "--allow", "open,close,verify", "--data-dir", dir)
	if r.code != 0 {
		t.Fatalf("clients add: exit %d\n%s", r.code, r.stderr)
	}
	secret := strings.TrimSuffix(r.stdout, "\n")
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != 32 || strings.Contains(secret, "\n") {
		t.Fatalf("clients add stdout = %q, want one line: a base64url secret of 32 bytes", r.stdout)
	}
	if !strings.Contains(r.stderr, "Authorization: Bearer SECRET") || strings.Contains(r.stderr, secret) {
		t.Errorf("clients add stderr = %q, want how to use the secret, without it", r.stderr)
	}
	file := filepath.Join(dir, "clients.json")
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("clients.json: %v %v, want mode 0600", info, err)
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), secret) {
		t.Errorf("clients.json holds the secret:\n%s", data)
	}
	var stored struct {
		Clients []struct {
			SHA256 string `json:"secret_sha256"`
		}
	}
	json.Unmarshal(data, &stored)
	r = clientsCmd(t, nil, "add", "web-1", "--data-dir", dir, "--allow", "verify")
	if r.code != 0 {
		t.Fatalf("clients add web-1: exit %d\n%s", r.code, r.stderr)
	}
	if r.stdout == secret+"\n" {
		t.Error("two clients got the same secret")
	}

	r = clientsCmd(t, nil, "list", "--data-dir", dir)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "billing") || !strings.Contains(lines[1], "close,open,verify") || !strings.Contains(lines[2], "web-1") {
		t.Errorf("clients list = exit %d\n%s%s\nwant a header, billing (close,open,verify) and web-1", r.code, r.stdout, r.stderr)
	}
	r = clientsCmd(t, nil, "list", "--json", "--data-dir", dir)
	var listed []struct {
		Name    string
		Allow   []string
		Created time.Time
	}
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 2 || listed[0].Created.IsZero() {
		t.Errorf("clients list --json = %s (%v), want two entries with created", r.stdout, err)
	}
	for _, out := range []string{r.stdout, clientsCmd(t, nil, "list", "--data-dir", dir).stdout} {
		if strings.Contains(out, secret) || len(stored.Clients) == 0 || strings.Contains(out, stored.Clients[0].SHA256) {
			t.Errorf("clients list printed a secret or a hash:\n%s", out)
		}
	}

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"add", "billing", "--allow", "open"}, 1, "sessiond clients remove billing"},
		{[]string{"add", "Bad Name", "--allow", "open"}, 1, "lower-case letters"},
		{[]string{"add", "x"}, 1, "--allow is required"},
		{[]string{"add", "x", "--allow", "admin"}, 1, "open, close and verify"},
		{[]string{"add", "--allow", "open"}, 2, "want 1 argument"},
		{[]string{"add", "a", "b", "--allow", "open"}, 2, "want 1 argument"},
		{[]string{"remove", "nobody"}, 1, "no such client"},
		{[]string{"frob"}, 2, "unknown command"},
	} {
		r := clientsCmd(t, nil, append(tt.args, "--data-dir", dir)...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("clients %q = exit %d %q, want exit %d saying %q", tt.args, r.code, r.stderr, tt.code, tt.want)
		}
	}
	if r := clientsCmd(t, nil, "list", "--data-dir", filepath.Join(t.TempDir(), "none")); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("clients list of a missing data dir = %d %q, want a refusal", r.code, r.stderr)
	}
	if r := clientsCmd(t, nil, "remove", "web-1", "--data-dir", dir); r.code != 0 {
		t.Errorf("clients remove web-1: exit %d %s", r.code, r.stderr)
	}
	if out := clientsCmd(t, nil, "list", "--data-dir", dir).stdout; strings.Contains(out, "web-1") {
		t.Errorf("after remove, list = %s", out)
	}

	shared := filepath.Join(t.TempDir(), "shared-clients.json")
	if r := clientsCmd(t, []string{"SESSIOND_CLIENTS_FILE=" + shared}, "add", "app", "--allow", "verify"); r.code != 0 {
		t.Fatalf("clients add with SESSIOND_CLIENTS_FILE: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(shared); err != nil {
		t.Errorf("SESSIOND_CLIENTS_FILE not written: %v", err)
	}
}

// The real binary with a client: no secret or a wrong one is 401, the
// client's secret is served within its permissions, a client added while
// it runs is picked up on SIGHUP, and the public endpoints stay public.
func TestServeWithClients(t *testing.T) {
	dir := dataDir(t)
	r := clientsCmd(t, nil, "add", "verifier", "--allow", "verify", "--data-dir", dir)
	if r.code != 0 {
		t.Fatalf("clients add: %d %s", r.code, r.stderr)
	}
	verifier := strings.TrimSpace(r.stdout)
	p := start(t, dir)
	if code, body := post(t, nil, p.url, "", verifyCall); code != 401 || !strings.Contains(body, `"code":-32001`) {
		t.Errorf("no secret: %d %s, want 401 -32001", code, body)
	}
	if code, body := post(t, nil, p.url, verifier, verifyCall); code != 200 || !strings.Contains(body, `"active":false`) {
		t.Errorf("verifier: verify = %d %s, want 200", code, body)
	}
	if code, body := post(t, nil, p.url, verifier, openCall); !strings.Contains(body, "forbidden: client verifier may not call session.open_session") {
		t.Errorf("verifier: open = %d %s, want -32003 forbidden", code, body)
	}
	opener := strings.TrimSpace(clientsCmd(t, nil, "add", "opener", "--allow", "open", "--data-dir", dir).stdout)
	p.hup(t)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body := post(t, nil, p.url, opener, openCall)
		if code == 200 && strings.Contains(body, "access_token") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client added while serving: %d %s", code, body)
		}
	}
	for _, path := range []string{".well-known/jwks.json", "revocations", "healthz"} {
		resp, err := http.Get(p.url + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET /%s without credentials = %v %v, want 200", path, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	if strings.Contains(p.stderr.String(), verifier) || strings.Contains(p.stderr.String(), opener) {
		t.Errorf("the server's log holds a secret:\n%s", p.stderr)
	}
}

// Secure by default, through the real binary: an address other than
// loopback with no client and no client CA is refused before anything is
// written, saying how to add a client or pass
// --insecure-allow-unauthenticated, which warns; half a TLS pair is
// refused too.
func TestServeSecureByDefault(t *testing.T) {
	for _, listen := range []string{":8080", "0.0.0.0:0", "[::]:0"} {
		dir := dataDir(t)
		r := sessiond(t, commandEnv(), "serve", "--listen", listen, "--data-dir", dir, "--admin-listen", "off")
		if r.code != 1 || !strings.Contains(r.stderr, "sessiond clients add NAME --allow open,close,verify --data-dir "+dir) ||
			!strings.Contains(r.stderr, "--insecure-allow-unauthenticated") {
			t.Errorf("serve --listen %s = exit %d %q, want a refusal naming clients add and --insecure-allow-unauthenticated", listen, r.code, r.stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the refusal created the data dir (%v)", err)
		}
	}
	// 192.0.2.1 (TEST-NET-1) is no address here: past the check, the
	// listen fails, and nothing is bound beyond loopback.
	r := sessiond(t, commandEnv(), "serve", "--listen", "192.0.2.1:0", "--data-dir", dataDir(t), "--admin-listen", "off", "--insecure-allow-unauthenticated")
	if r.code != 1 || !strings.Contains(r.stderr, "level=WARN") || !strings.Contains(r.stderr, "WITHOUT AUTHENTICATION") || !strings.Contains(r.stderr, "192.0.2.1") {
		t.Errorf("serve --insecure-allow-unauthenticated = exit %d %q, want the warning, then the listen error", r.code, r.stderr)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key"},
		{[]string{"--tls-key", "k.pem"}, "--tls-cert and --tls-key"},
		{[]string{"--tls-client-ca", "ca.pem"}, "--tls-client-ca needs TLS"},
		{[]string{"--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"}, "load certificate"},
	} {
		dir := dataDir(t)
		r := sessiond(t, commandEnv(), append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir}, tt.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("serve %q = exit %d %q, want a refusal saying %q", tt.args, r.code, r.stderr, tt.want)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("serve %q created the data dir (%v)", tt.args, err)
		}
	}
	// Loopback needs nothing (the README's first command).
	p := start(t, dataDir(t))
	if code, _ := post(t, nil, p.url, "", verifyCall); code != 200 {
		t.Errorf("loopback, no clients: verify = %d, want 200", code)
	}
}

// The real binary over TLS with a client's secret: HTTP/2, the client
// certificate of mutual TLS naming the client.
func TestServeTLS(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	}
	files := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(files, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	c, k := leaf(2, "sessiond", x509.ExtKeyUsageServerAuth)
	certFile, keyFile := write("cert.pem", c), write("key.pem", k)
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))

	dir := dataDir(t)
	secret := strings.TrimSpace(clientsCmd(t, nil, "add", "app", "--allow", "open,verify", "--data-dir", dir).stdout)
	p := start(t, dir, "--tls-cert", certFile, "--tls-key", keyFile)
	url := "https://" + strings.TrimPrefix(p.url, "http://")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(openCall))
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST over TLS: %v\n%s", err, p.stderr)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || !strings.Contains(string(body), "access_token") {
		t.Errorf("open over TLS = %s %s, want HTTP/2.0 and a token", resp.Proto, body)
	}
	p.stop(t, os.Interrupt)

	p = start(t, dir, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", caFile)
	url = "https://" + strings.TrimPrefix(p.url, "http://")
	for _, tt := range []struct {
		cn, want string
	}{{"app", `"active":false`}, {"stranger", `"code":-32001`}} {
		cc, ck := leaf(3, tt.cn, x509.ExtKeyUsageClientAuth)
		pair, err := tls.X509KeyPair(cc, ck)
		if err != nil {
			t.Fatal(err)
		}
		mc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}, ForceAttemptHTTP2: true}}
		if _, body := post(t, mc, url, "", verifyCall); !strings.Contains(body, tt.want) {
			t.Errorf("client certificate CN=%s: %s, want %s", tt.cn, body, tt.want)
		}
	}
}
