package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs `sessiond session args...` (the real binary) against server.
func cli(t *testing.T, server string, args ...string) result {
	t.Helper()
	return sessiond(t, commandEnv("SESSIOND_SERVER="+server), append([]string{"session"}, args...)...)
}

// openedToken is the token sessiond session open prints on its first line.
func openedToken(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// The command-line client through a session's whole life, human-readable
// and as JSON, with the exit statuses it documents.
func TestSessionCLI(t *testing.T) {
	p := startInProcess(t, dataDir(t))
	server := strings.TrimSuffix(p.url, "/")

	r := cli(t, server, "open")
	tok := openedToken(r.stdout)
	if r.code != 0 || strings.Count(tok, ".") != 2 || !strings.Contains(r.stdout, "\nexpires in 2592000 s, at ") {
		t.Fatalf("session open: exit %d, stdout %q, stderr %q; want the token on the first line, then its expiry", r.code, r.stdout, r.stderr)
	}
	for _, tt := range []struct {
		args       []string
		code       int
		stdout     string // prefix
		wantStderr bool
	}{
		{[]string{"verify", tok}, 0, "active\n", false},
		{[]string{"verify", "--json", tok}, 0, `{"active":true}` + "\n", false},
		{[]string{"introspect", tok}, 0, "active\nexp  ", false},
		{[]string{"close", tok}, 0, "closed\n", false},
		{[]string{"verify", tok}, 1, "inactive\n", false},
		{[]string{"verify", tok, "--json"}, 1, `{"active":false}` + "\n", false},
		{[]string{"introspect", tok}, 1, "inactive\n", false},
		{[]string{"introspect", "--json", tok}, 1, `{"active":false}` + "\n", false},
		{[]string{"close", "--json", tok}, 0, "true\n", false},
		{[]string{"verify", "not-a-token"}, 1, "inactive\n", false},
	} {
		name := strings.Join(tt.args[:len(tt.args)-1], " ")
		t.Run(name, func(t *testing.T) {
			r := cli(t, server, tt.args...)
			if r.code != tt.code || !strings.HasPrefix(r.stdout, tt.stdout) || (r.stderr != "") != tt.wantStderr {
				t.Errorf("session %s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q…", name, r.code, r.stdout, r.stderr, tt.code, tt.stdout)
			}
		})
	}

	t.Run("subject", func(t *testing.T) {
		r := cli(t, server, "open", "--subject", "alice@example.com", "--expires-in", "1h", "--json")
		var res struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int64  `json:"expires_in"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); r.code != 0 || err != nil || res.ExpiresIn != 3600 {
			t.Fatalf("session open --subject --expires-in 1h --json: exit %d, stdout %q (%v), stderr %q", r.code, r.stdout, err, r.stderr)
		}
		r = cli(t, server, "introspect", res.AccessToken, "--json")
		var got map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); r.code != 0 || err != nil || got["sub"] != "alice@example.com" || got["active"] != true {
			t.Errorf("session introspect --json: exit %d, stdout %q, want active with sub alice@example.com", r.code, r.stdout)
		}
		if r := cli(t, server, "introspect", res.AccessToken); !strings.Contains(r.stdout, "\nsub  alice@example.com\n") {
			t.Errorf("session introspect: stdout %q, want a sub line", r.stdout)
		}
		r = cli(t, server, "close-all", "alice@example.com")
		if r.code != 0 || r.stdout != `closed every session of "alice@example.com" opened so far`+"\n" {
			t.Errorf("session close-all: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := cli(t, server, "verify", res.AccessToken); r.code != 1 {
			t.Errorf("session verify after close-all: exit %d, want 1", r.code)
		}
		if r := cli(t, server, "open", "--expires-in", "90"); r.code != 0 || !strings.Contains(r.stdout, "expires in 90 s") {
			t.Errorf("session open --expires-in 90: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, args := range [][]string{{"open", "--expires-in", "999999999"}, {"close-all", ""}, {"open", "--subject", "a\tb"}} {
			r := cli(t, server, args...)
			if r.code != 1 || !strings.Contains(r.stderr, "refused: rpc error -32602: ") || r.stdout != "" {
				t.Errorf("session %q: exit %d, stdout %q, stderr %q; want exit 1 and the server's -32602", args, r.code, r.stdout, r.stderr)
			}
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{}, {"bogus"}, {"verify"}, {"verify", "a", "b"}, {"open", "extra"}, {"open", "--expires-in", "0"},
			{"open", "--expires-in", "1.5s"}, {"open", "--expires-in", "-5"}, {"open", "--expires-in", "soon"},
			{"verify", "--server", "ftp://127.0.0.1", "x"}, {"verify", "--server", "127.0.0.1:8080", "x"}, {"verify", "--timeout", "0s", "x"}} {
			r := cli(t, server, args...)
			if r.code != 2 || r.stderr == "" {
				t.Errorf("session %q: exit %d, stderr %q; want exit 2 and why", args, r.code, r.stderr)
			}
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		ln.Close()
		r := cli(t, closed, "verify", tok)
		if r.code != 3 || !strings.Contains(r.stderr, "could not reach "+closed) || !strings.Contains(r.stderr, "--server (SESSIOND_SERVER)") {
			t.Errorf("session verify against a closed port: exit %d, stderr %q; want exit 3 naming the server and --server", r.code, r.stderr)
		}
	})
}

// stubServer answers every request with status and body.
func stubServer(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// An internal error, an unexpected HTTP status and a server that does not
// answer are "could not decide" (3), never inactive or active.
func TestSessionCLIUndecided(t *testing.T) {
	internal := stubServer(t, 200, `{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"},"id":"1"}`)
	if r := cli(t, internal, "verify", "x"); r.code != 3 || !strings.Contains(r.stderr, "could not decide: the server answered rpc error -32603: internal error") {
		t.Errorf("verify, internal error: exit %d, stderr %q, want 3", r.code, r.stderr)
	}
	unavailable := stubServer(t, 503, `down`)
	if r := cli(t, unavailable, "close", "x"); r.code != 3 || !strings.Contains(r.stderr, "could not decide: ") || !strings.Contains(r.stderr, "503") {
		t.Errorf("close, HTTP 503: exit %d, stderr %q, want 3", r.code, r.stderr)
	}
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	if r := cli(t, hang.URL, "verify", "--timeout", "300ms", "x"); r.code != 3 || !strings.Contains(r.stderr, "no answer within --timeout") {
		t.Errorf("verify, server hangs: exit %d, stderr %q, want 3 saying it timed out", r.code, r.stderr)
	}
}

// --secret-file sends the file's content, trimmed, as a bearer secret (to a
// real sessiond behind a proxy that demands it, as a server with callers
// configured does); without it the refusal (401) is exit 1 and says how to
// give one. The secret never appears in the output; a file others can read
// is warned about; an empty one is refused.
func TestSessionCLISecretFile(t *testing.T) {
	p := startInProcess(t, dataDir(t))
	target, _ := url.Parse(p.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	const secret = "s3cret-Zq8w"
	guard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"jsonrpc":"2.0","error":{"code":-32001,"message":"unauthorized"},"id":null}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(guard.Close)

	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	os.WriteFile(file, []byte("  "+secret+"\n"), 0o600)
	r := cli(t, guard.URL, "open", "--secret-file", file)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("session open --secret-file: exit %d, stderr %q, want 0 and no warning", r.code, r.stderr)
	}
	tok := openedToken(r.stdout)
	if r := sessiond(t, commandEnv("SESSIOND_SERVER="+guard.URL, "SESSIOND_SECRET_FILE="+file), "session", "verify", tok); r.code != 0 {
		t.Errorf("SESSIOND_SECRET_FILE session verify: exit %d, stderr %q, want 0", r.code, r.stderr)
	}

	r = cli(t, guard.URL, "verify", tok)
	if r.code != 1 || !strings.Contains(r.stderr, "refused: ") || !strings.Contains(r.stderr, "401") || !strings.Contains(r.stderr, "--secret-file (SESSIOND_SECRET_FILE)") {
		t.Errorf("session verify without the secret: exit %d, stderr %q; want exit 1, refused, naming --secret-file", r.code, r.stderr)
	}

	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("not-it\n"), 0o644)
	r = cli(t, guard.URL, "verify", "--secret-file", wrong, tok)
	if r.code != 1 || !strings.Contains(r.stderr, "warning: --secret-file "+wrong+" is open to other users (mode 0644)") || !strings.Contains(r.stderr, "chmod 600 "+wrong) {
		t.Errorf("session verify, wrong secret in a 0644 file: exit %d, stderr %q; want exit 1 and a warning with chmod 600", r.code, r.stderr)
	}
	for _, bad := range []string{"", " \n", "two words\n", "one\ntwo\n"} {
		os.WriteFile(wrong, []byte(bad), 0o600)
		if r := cli(t, guard.URL, "verify", "--secret-file", wrong, tok); r.code != 2 || !strings.Contains(r.stderr, "--secret-file "+wrong) {
			t.Errorf("secret file %q: exit %d, stderr %q; want exit 2 naming the file", bad, r.code, r.stderr)
		}
	}
	if r := cli(t, guard.URL, "verify", "--secret-file", filepath.Join(dir, "missing"), tok); r.code != 2 || !strings.Contains(r.stderr, "--secret-file (SESSIOND_SECRET_FILE)") {
		t.Errorf("missing secret file: exit %d, stderr %q; want exit 2 naming --secret-file", r.code, r.stderr)
	}
}
