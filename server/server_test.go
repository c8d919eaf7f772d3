package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/server"
)

// open starts a server on loopback in a temporary data directory, closed at
// the end of the test.
func open(t testing.TB, cfg server.Config) *server.Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	srv := server.New(cfg)
	if err := srv.Open(context.Background()); err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// An opened server serves the session API and its other endpoints on the
// address it reports, the admin endpoints on the other, and Close stops
// both and releases the data directory.
func TestServerOpenClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := open(t, server.Config{DataDir: dir, AdminListen: "127.0.0.1:0"})
	api, admin := "http://"+srv.Addr()+"/", "http://"+srv.AdminAddr()+"/"
	if srv.AdminAddr() == "" || srv.AdminAddr() == srv.Addr() {
		t.Fatalf("AdminAddr() = %q, want a listener of its own (API on %s)", srv.AdminAddr(), srv.Addr())
	}
	ctx := context.Background()
	cl := client.New(api, nil)
	res, err := cl.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatalf("OpenSession() error = %v", err)
	}
	if err := cl.CloseSession(ctx, res.AccessToken); err != nil {
		t.Fatalf("CloseSession() error = %v", err)
	}
	if active, err := cl.VerifySessionToken(ctx, res.AccessToken); active || err != nil {
		t.Errorf("VerifySessionToken(closed) = %v, %v, want false", active, err)
	}
	for _, tt := range []struct {
		url  string
		want int
	}{
		{api + "healthz", 200}, {api + ".well-known/jwks.json", 200}, {api + "revocations", 200}, {api + "debug/stats", 404},
		{admin + "healthz", 200}, {admin + "debug/stats", 200}, {admin + "revocations", 404},
	} {
		if got, body := get(t, tt.url); got != tt.want {
			t.Errorf("GET %s = %d %.80s, want %d", tt.url, got, body, tt.want)
		}
	}
	srv.ReloadKeys()
	srv.ReloadKeys() // requests coalesce; neither blocks
	if err := srv.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close() error = %v, want nil again", err)
	}
	select {
	case <-srv.Done():
	default:
		t.Error("Done() not closed after Close")
	}
	if _, err := http.Get(api + "healthz"); err == nil {
		t.Error("GET /healthz after Close succeeded, want a refused connection")
	}
	// The store's lock is released: the same data directory opens again,
	// and the closed session stays closed.
	again := open(t, server.Config{DataDir: dir})
	cl = client.New("http://"+again.Addr()+"/", nil)
	if active, err := cl.VerifySessionToken(ctx, res.AccessToken); active || err != nil {
		t.Errorf("after reopening: VerifySessionToken(closed) = %v, %v, want false", active, err)
	}
}

// A second server on an open data directory is refused, and leaves nothing
// listening; a taken admin address is a *ListenError that says which.
func TestServerOpenRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	open(t, server.Config{DataDir: dir})
	second := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err := second.Open(context.Background()); err == nil {
		second.Close()
		t.Fatal("second Open() on the same data dir = nil, want a refusal")
	}
	if err := second.Close(); err != nil {
		t.Errorf("Close() after a failed Open = %v, want nil", err)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir = filepath.Join(t.TempDir(), "data")
	srv := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0", AdminListen: taken.Addr().String()})
	err = srv.Open(context.Background())
	var le *server.ListenError
	if !errors.As(err, &le) || !le.Admin || le.Addr != taken.Addr().String() {
		t.Fatalf("Open() with the admin address taken = %v, want a *ListenError for the admin address", err)
	}
	if srv.Addr() != "" {
		t.Errorf("Addr() after a failed Open = %q, want \"\"", srv.Addr())
	}
	// Open closed what it had opened: the data directory opens again.
	open(t, server.Config{DataDir: dir})
}

// A data directory that others can enter is refused before anything is
// created in it.
func TestServerRefusesOpenDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err := srv.Open(context.Background()); err == nil {
		srv.Close()
		t.Fatal("Open() = nil, want a refusal of the 0755 data dir")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused Open left %d files in the data dir, want none", len(entries))
	}
}
