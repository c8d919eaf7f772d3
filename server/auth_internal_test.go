package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/clients"
)

// On an address other than loopback (required), removing the last client
// leaves nobody able to call, never everybody: a real HTTP server on
// loopback runs the authenticator as Open configures it there (tests may
// not listen beyond loopback).
func TestRequiredWithNoClientsFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), clients.FileName)
	if _, err := clients.Add(path, "app", []clients.Permission{clients.Open}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := clients.Remove(path, "app"); err != nil {
		t.Fatal(err)
	}
	reg, err := clients.OpenRegistry(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Listen: "0.0.0.0:8080"}, reg: reg}
	s.log = slog.New(slog.DiscardHandler)
	required, err := s.checkExposure(reg.Set())
	if err == nil {
		t.Fatalf("checkExposure(0.0.0.0, no clients) = %v, nil, want a refusal", required)
	}
	a := &authenticator{reg: reg, required: true, log: s.log}
	ran := false
	ts := httptest.NewServer(a.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true })))
	defer ts.Close()
	resp, err := http.Post(ts.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"session.open_session","id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || ran {
		t.Errorf("required, no clients: %d %s (handler ran: %v), want 401 and the handler not run", resp.StatusCode, body, ran)
	}
}

func TestLoopbackAddress(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.9.9.9:1": true, "[::1]:8080": true, "localhost:8080": true, "LOCALHOST.:80": true,
		"[::ffff:127.0.0.1]:80": true,
		":8080":                 false, "0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.1:80": false, "example.com:80": false,
		"localhost.example.com:80": false, "127.0.0.1": false, "": false,
	} {
		if got := loopbackAddress(addr); got != want {
			t.Errorf("loopbackAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}
