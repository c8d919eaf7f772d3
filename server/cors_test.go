package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/server"
)

// corsRequest sends method to url with the given headers over a real
// connection and returns the response (body read and closed).
func corsRequest(t *testing.T, method, url, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// corsHeaders returns the response's Access-Control-* headers.
func corsHeaders(resp *http.Response) map[string]string {
	out := map[string]string{}
	for k, v := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			out[k] = strings.Join(v, ", ")
		}
	}
	return out
}

const verifyBody = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"x"},"id":1}`

// With --cors-origin, a browser page of an allowed origin gets its
// preflight answered and may read the replies; every other origin gets no
// CORS header at all, and neither does anyone while CORS is off.
func TestCORS(t *testing.T) {
	srv := open(t, server.Config{CORSOrigins: []string{"https://app.example.com", "HTTP://LOCALHOST:3000", "https://admin.example.com:443"}})
	api := "http://" + srv.Addr() + "/"
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
	}

	t.Run("preflight of an allowed origin", func(t *testing.T) {
		for _, origin := range []string{"https://app.example.com", "http://localhost:3000", "https://admin.example.com"} {
			resp, body := corsRequest(t, http.MethodOptions, api, "", preflight(origin))
			want := map[string]string{
				"Access-Control-Allow-Origin":  origin,
				"Access-Control-Allow-Methods": "POST",
				"Access-Control-Allow-Headers": "Content-Type, Authorization",
				"Access-Control-Max-Age":       "600",
			}
			if resp.StatusCode != http.StatusNoContent || body != "" {
				t.Errorf("preflight from %s = %d %q, want 204 and no body", origin, resp.StatusCode, body)
			}
			if got := corsHeaders(resp); !equal(got, want) {
				t.Errorf("preflight from %s: CORS headers %v, want %v", origin, got, want)
			}
			if vary := resp.Header.Values("Vary"); len(vary) == 0 || vary[0] != "Origin" {
				t.Errorf("preflight from %s: Vary %q, want Origin first", origin, vary)
			}
		}
	})
	t.Run("call from an allowed origin", func(t *testing.T) {
		resp, body := corsRequest(t, http.MethodPost, api, verifyBody, map[string]string{"Origin": "https://app.example.com", "Content-Type": "application/json"})
		if resp.StatusCode != http.StatusOK || body != `{"jsonrpc":"2.0","result":{"active":false},"id":1}` {
			t.Errorf("POST = %d %q, want the JSON-RPC reply", resp.StatusCode, body)
		}
		if got, want := corsHeaders(resp), map[string]string{"Access-Control-Allow-Origin": "https://app.example.com"}; !equal(got, want) {
			t.Errorf("POST: CORS headers %v, want %v", got, want)
		}
		if got := resp.Header.Get("Vary"); got != "Origin" {
			t.Errorf("POST: Vary %q, want Origin", got)
		}
	})
	t.Run("other origins", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example.com", "https://app.example.com.evil.example", "http://app.example.com",
			"https://app.example.com:8443", "null", "https://APP.example.com", "https://app.example.com/"} {
			resp, _ := corsRequest(t, http.MethodOptions, api, "", preflight(origin))
			if resp.StatusCode != http.StatusMethodNotAllowed || len(corsHeaders(resp)) != 0 {
				t.Errorf("preflight from %s = %d, CORS headers %v, want 405 and none", origin, resp.StatusCode, corsHeaders(resp))
			}
			resp, _ = corsRequest(t, http.MethodPost, api, verifyBody, map[string]string{"Origin": origin})
			if len(corsHeaders(resp)) != 0 {
				t.Errorf("POST from %s: CORS headers %v, want none", origin, corsHeaders(resp))
			}
		}
		// No Origin at all (not a browser), and two Origin headers.
		resp, _ := corsRequest(t, http.MethodPost, api, verifyBody, nil)
		if resp.StatusCode != http.StatusOK || len(corsHeaders(resp)) != 0 {
			t.Errorf("POST without Origin = %d, CORS headers %v, want 200 and none", resp.StatusCode, corsHeaders(resp))
		}
		req, _ := http.NewRequest(http.MethodOptions, api, nil)
		req.Header["Origin"] = []string{"https://app.example.com", "https://evil.example.com"}
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(corsHeaders(resp)) != 0 {
			t.Errorf("preflight with two Origin headers: CORS headers %v, want none", corsHeaders(resp))
		}
	})
	t.Run("other endpoints", func(t *testing.T) {
		resp, _ := corsRequest(t, http.MethodGet, "http://"+srv.Addr()+"/healthz", "", map[string]string{"Origin": "https://app.example.com"})
		if resp.StatusCode != http.StatusOK || len(corsHeaders(resp)) != 0 {
			t.Errorf("GET /healthz = %d, CORS headers %v, want 200 and none", resp.StatusCode, corsHeaders(resp))
		}
	})
	t.Run("off by default", func(t *testing.T) {
		off := open(t, server.Config{})
		resp, _ := corsRequest(t, http.MethodOptions, "http://"+off.Addr()+"/", "", preflight("https://app.example.com"))
		if resp.StatusCode != http.StatusMethodNotAllowed || len(corsHeaders(resp)) != 0 || resp.Header.Get("Vary") != "" {
			t.Errorf("preflight with CORS off = %d, CORS headers %v, Vary %q, want 405 and none", resp.StatusCode, corsHeaders(resp), resp.Header.Get("Vary"))
		}
	})
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// CheckCORSOrigin takes exactly scheme://host[:port], as browsers send it,
// and refuses "*" and everything else with a reason and an example.
func TestCheckCORSOrigin(t *testing.T) {
	good := map[string]string{
		"https://app.example.com":     "https://app.example.com",
		"http://localhost:3000":       "http://localhost:3000",
		"HTTPS://App.Example.COM":     "https://app.example.com",
		"https://app.example.com:443": "https://app.example.com",
		"http://app.example.com:80":   "http://app.example.com",
		"http://app.example.com:443":  "http://app.example.com:443",
		"http://127.0.0.1:8000":       "http://127.0.0.1:8000",
		"http://[::1]:8000":           "http://[::1]:8000",
		"http://[2001:DB8::1]":        "http://[2001:db8::1]",
		"https://my_host.example.com": "https://my_host.example.com",
	}
	for in, want := range good {
		if got, err := server.CheckCORSOrigin(in); got != want || err != nil {
			t.Errorf("CheckCORSOrigin(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "null", "app.example.com", "https://", "https://app.example.com/", "https://app.example.com/path",
		"https://app.example.com?x", "https://app.example.com#x", "https://user@app.example.com", "ftp://app.example.com",
		"https://app.example.com:", "https://app.example.com:0", "https://app.example.com:65536", "https://app.example.com:http",
		"https:app.example.com", "https://bad host", "https://-bad.example.com", "http://[fe80::1%25lo]", "https://*.example.com",
		" https://app.example.com", "https://app.example.com "} {
		_, err := server.CheckCORSOrigin(in)
		if err == nil || !strings.Contains(err.Error(), "scheme://host[:port]") {
			t.Errorf("CheckCORSOrigin(%q) error = %v, want a refusal that says how to write an origin", in, err)
		}
	}
	if _, err := server.CheckCORSOrigin("*"); !errors.Is(err, server.ErrCORSWildcard) || !strings.Contains(err.Error(), "--cors-origin https://") {
		t.Errorf(`CheckCORSOrigin("*") error = %v, want ErrCORSWildcard, saying how to name origins`, err)
	}
}

// A bad origin stops Open before the data directory is created.
func TestOpenRefusesBadCORSOrigin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0", CORSOrigins: []string{"https://ok.example.com", "*"}})
	if err := srv.Open(context.Background()); !errors.Is(err, server.ErrCORSWildcard) {
		srv.Close()
		t.Fatalf("Open() error = %v, want ErrCORSWildcard", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Open created the data dir: %v", err)
	}
}
