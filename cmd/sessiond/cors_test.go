package main

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
)

// preflight sends a browser's CORS preflight for a POST from origin to url.
func preflight(t *testing.T, url, origin string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// sessiond serve --cors-origin (repeatable) and SESSIOND_CORS_ORIGIN
// (comma-separated) answer the preflights of those origins, and only
// theirs.
func TestServeCORSOrigin(t *testing.T) {
	check := func(t *testing.T, p *process) {
		t.Helper()
		for _, origin := range []string{"https://app.example.com", "http://localhost:3000"} {
			resp := preflight(t, p.url, origin)
			if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("preflight from %s = %d, Access-Control-Allow-Origin %q, want 204 and the origin", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
			}
		}
		resp := preflight(t, p.url, "https://evil.example.com")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from another origin = %d, Access-Control-Allow-Origin %q, want 405 and none", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	t.Run("flags", func(t *testing.T) {
		check(t, start(t, dataDir(t), "--cors-origin", "https://app.example.com", "--cors-origin", "http://localhost:3000"))
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv("SESSIOND_CORS_ORIGIN", "https://app.example.com, http://localhost:3000")
		check(t, start(t, dataDir(t)))
	})
	t.Run("off", func(t *testing.T) {
		p := start(t, dataDir(t))
		if resp := preflight(t, p.url, "https://app.example.com"); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight with CORS off = %d, Access-Control-Allow-Origin %q, want 405 and none", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
}

// A bad origin stops serve before anything is written, with the setting,
// the reason and how to write it; "*" is refused for what it would mean.
func TestServeRefusesBadCORSOrigin(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"wildcard", nil, []string{"--cors-origin", "*"}, `CORS origin "*" is refused: sessiond opens and closes sessions`},
		{"path", nil, []string{"--cors-origin", "https://app.example.com/"}, `has a path, query or fragment`},
		{"environment", []string{"SESSIOND_CORS_ORIGIN=https://ok.example.com,app.example.com"}, nil, `"app.example.com" does not begin with http:// or https://`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := dataDir(t)
			r := sessiond(t, commandEnv(tt.env...), append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir}, tt.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, "--cors-origin (SESSIOND_CORS_ORIGIN)") || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 naming --cors-origin and %q", r.code, r.stderr, tt.want)
			}
			if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused serve created the data dir: %v", err)
			}
		})
	}
}
