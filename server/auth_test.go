package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/clients"
	"github.com/sessiond/sessiond/server"
)

// call posts body to url with the secret (none when ""), returning the
// status, the WWW-Authenticate header and the body.
func call(t *testing.T, hc *http.Client, url, secret, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
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
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(string(b))
}

// addClient adds a client to the clients file of the data dir (made if need be).
func addClient(t *testing.T, dataDir, name string, allow ...clients.Permission) string {
	t.Helper()
	if err := server.MakeDataDir(dataDir); err != nil {
		t.Fatal(err)
	}
	secret, err := clients.Add(filepath.Join(dataDir, clients.FileName), name, allow, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return secret.Reveal()
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// syncBuf is a log destination safe for the server's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) { b.mu.Lock(); defer b.mu.Unlock(); return b.b.Write(p) }
func (b *syncBuf) String() string              { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

const (
	openReq            = `{"jsonrpc":"2.0","method":"session.open_session","params":{"expires_in":60},"id":1}`
	verifyReq          = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"x"},"id":2}`
	unauthorizedPrefix = `{"jsonrpc":"2.0","error":{"code":-32001,"message":"unauthorized","data":`
)

// Without clients a loopback server answers everyone; once the clients
// file holds one (picked up without a restart), every JSON-RPC request
// needs a valid secret (401, WWW-Authenticate: Bearer, -32001 with id null
// otherwise), each call needs its permission (-32003 for that call only,
// also inside a batch), and JWKS, /revocations and /healthz stay public.
func TestCallerCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var logs syncBuf
	srv := open(t, server.Config{DataDir: dir, KeyReloadInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	url := "http://" + srv.Addr() + "/"
	if code, _, body := call(t, nil, url, "", openReq); code != 200 || !strings.Contains(body, "access_token") {
		t.Fatalf("no clients: open_session = %d %s, want 200 and a token", code, body)
	}

	verifier := addClient(t, dir, "verifier", clients.Verify)
	waitFor(t, "the server picks up the new client", func() bool {
		code, _, _ := call(t, nil, url, "", verifyReq)
		return code == http.StatusUnauthorized
	})
	opener := addClient(t, dir, "opener", clients.Open, clients.Close)
	srv.ReloadKeys() // SIGHUP's path: the clients file is read again at once
	waitFor(t, "the second client", func() bool { code, _, _ := call(t, nil, url, opener, verifyReq); return code == 200 })

	for _, tt := range []struct {
		name, secret, header string
	}{
		{"no secret", "", ""},
		{"wrong secret", strings.Repeat("A", 43), ""},
		{"a secret's prefix", verifier[:20], ""},
		{"another scheme", "", "Basic " + verifier},
		{"no scheme", "", verifier},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(verifyReq))
			if tt.secret != "" {
				req.Header.Set("Authorization", "Bearer "+tt.secret)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("status %d, WWW-Authenticate %q, want 401 and Bearer", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			if !strings.HasPrefix(string(b), unauthorizedPrefix) || !strings.HasSuffix(strings.TrimSpace(string(b)), `,"id":null}`) {
				t.Errorf("body = %s, want a -32001 unauthorized error object with id null", b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
		})
	}

	// Both the lower-case scheme and the canonical one are accepted.
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(verifyReq))
	req.Header.Set("Authorization", "bearer "+verifier)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("scheme \"bearer\": %v %v, want 200", resp.StatusCode, err)
	}

	if code, _, body := call(t, nil, url, verifier, verifyReq); code != 200 || body != `{"jsonrpc":"2.0","result":{"active":false},"id":2}` {
		t.Errorf("verifier: verify = %d %s, want 200 active false", code, body)
	}
	code, _, body := call(t, nil, url, verifier, openReq)
	if want := `{"jsonrpc":"2.0","error":{"code":-32003,"message":"forbidden: client verifier may not call session.open_session"},"id":1}`; code != 200 || body != want {
		t.Errorf("verifier: open = %d %s, want 200 %s", code, body, want)
	}
	batch := `[` + openReq + `,` + verifyReq + `,{"jsonrpc":"2.0","method":"session.close_all_sessions","params":{"subject":"a"},"id":3},{"jsonrpc":"2.0","method":"session.open_session"}]`
	code, _, body = call(t, nil, url, verifier, batch)
	var replies []struct {
		Result json.RawMessage
		Error  *struct {
			Code    int
			Message string
		}
		ID int
	}
	if err := json.Unmarshal([]byte(body), &replies); code != 200 || err != nil || len(replies) != 3 {
		t.Fatalf("batch = %d %s (%v), want three replies", code, body, err)
	}
	if e := replies[0].Error; e == nil || e.Code != server.CodeForbidden || replies[0].ID != 1 {
		t.Errorf("batch reply 1 = %+v, want -32003", replies[0])
	}
	if replies[1].Error != nil || string(replies[1].Result) != `{"active":false}` {
		t.Errorf("batch reply 2 = %+v, want the verify answer", replies[1])
	}
	if e := replies[2].Error; e == nil || e.Message != "forbidden: client verifier may not call session.close_all_sessions" {
		t.Errorf("batch reply 3 = %+v, want forbidden close_all_sessions", replies[2])
	}
	if code, _, body := call(t, nil, url, opener, openReq); code != 200 || !strings.Contains(body, "access_token") {
		t.Errorf("opener: open = %d %s, want a token", code, body)
	}
	if code, _, body := call(t, nil, url, opener, `{"jsonrpc":"2.0","method":"nope","id":9}`); code != 200 || !strings.Contains(body, "-32601") {
		t.Errorf("opener: unknown method = %d %s, want -32601", code, body)
	}

	for _, path := range []string{".well-known/jwks.json", "revocations", "healthz"} {
		if got, body := get(t, url+path); got != 200 {
			t.Errorf("GET /%s without credentials = %d %.80s, want 200 (public)", path, got, body)
		}
	}
	if strings.Contains(logs.String(), verifier) || strings.Contains(logs.String(), opener) {
		t.Errorf("the server's log holds a secret:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "unauthorized request") {
		t.Errorf("the log does not mention the refused requests at Debug:\n%s", logs.String())
	}

	// Removing a client stops its secret at the next reload.
	if err := clients.Remove(filepath.Join(dir, clients.FileName), "opener"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed client is refused", func() bool { code, _, _ := call(t, nil, url, opener, verifyReq); return code == 401 })
	if code, _, _ := call(t, nil, url, verifier, verifyReq); code != 200 {
		t.Errorf("verifier after opener's removal = %d, want 200", code)
	}
}

// A clients file the server cannot trust stops it before anything is
// created; a clients file elsewhere (Config.ClientsFile) is the one used.
func TestClientsFileRefusedAndShared(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared.json")
	secret, err := clients.Add(shared, "app", []clients.Permission{clients.Verify}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(shared, 0o644)
	dir := filepath.Join(t.TempDir(), "data")
	srv := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0", ClientsFile: shared})
	if err := srv.Open(context.Background()); !errors.Is(err, clients.ErrInsecure) || !strings.Contains(err.Error(), "chmod 600") {
		srv.Close()
		t.Fatalf("Open() with a 0644 clients file = %v, want ErrInsecure with chmod 600", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused Open created the data dir (%v)", err)
	}
	os.Chmod(shared, 0o600)
	for _, d := range []string{dir, filepath.Join(t.TempDir(), "data2")} { // two nodes, one file
		url := "http://" + open(t, server.Config{DataDir: d, ClientsFile: shared}).Addr() + "/"
		if code, _, _ := call(t, nil, url, secret.Reveal(), verifyReq); code != 200 {
			t.Errorf("node %s: verify with the shared secret = %d, want 200", d, code)
		}
		if code, _, _ := call(t, nil, url, "", verifyReq); code != 401 {
			t.Errorf("node %s: verify without = %d, want 401", d, code)
		}
	}
}

// Secure by default: an address other than loopback with no client and no
// client CA is refused before anything is written, unless
// AllowUnauthenticated (which warns); loopback addresses need nothing.
func TestSecureByDefault(t *testing.T) {
	for _, listen := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:0"} {
		t.Run(listen, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			srv := server.New(server.Config{DataDir: dir, Listen: listen})
			err := srv.Open(context.Background())
			if !errors.Is(err, server.ErrUnauthenticated) {
				srv.Close()
				t.Fatalf("Open(%s) = %v, want ErrUnauthenticated", listen, err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the refusal created the data dir (%v)", err)
			}
		})
	}
	// With AllowUnauthenticated the check passes and warns; 192.0.2.1
	// (TEST-NET-1) is no address of this machine, so nothing is bound
	// beyond loopback: Open fails at listening instead.
	var logs syncBuf
	srv := server.New(server.Config{DataDir: filepath.Join(t.TempDir(), "data"), Listen: "192.0.2.1:0", AllowUnauthenticated: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	err := srv.Open(context.Background())
	var le *server.ListenError
	if !errors.As(err, &le) {
		srv.Close()
		t.Fatalf("Open(192.0.2.1:0, AllowUnauthenticated) = %v, want a *ListenError (past the check)", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "WITHOUT AUTHENTICATION") {
		t.Errorf("AllowUnauthenticated logged no warning:\n%s", logs.String())
	}
	// A client configured: past the check too.
	dir := filepath.Join(t.TempDir(), "data")
	addClient(t, dir, "app", clients.Open)
	srv = server.New(server.Config{DataDir: dir, Listen: "192.0.2.1:0"})
	if err := srv.Open(context.Background()); !errors.As(err, &le) {
		srv.Close()
		t.Fatalf("Open(192.0.2.1:0) with a client = %v, want a *ListenError (past the check)", err)
	}
	for _, listen := range []string{"127.0.0.1:0", "127.1.2.3:0", "localhost:0"} {
		srv := open(t, server.Config{Listen: listen})
		if code, _, _ := call(t, nil, "http://"+srv.Addr()+"/", "", verifyReq); code != 200 {
			t.Errorf("%s: verify without credentials = %d, want 200", listen, code)
		}
	}
}
