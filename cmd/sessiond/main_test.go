package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/server"
)

// binary is the sessiond executable, built once for the tests that run it
// as a real process.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sessiond-test")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "sessiond")
	out, err := exec.Command("go", "build", "-race", "-o", path, ".").CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return path, nil
})

func TestMain(m *testing.M) {
	// Every server of the tests, in this process or a child, takes a free
	// admin port rather than the default 127.0.0.1:8081.
	os.Setenv("SESSIOND_ADMIN_LISTEN", "127.0.0.1:0")
	code := m.Run()
	if path, err := binary(); err == nil {
		os.RemoveAll(filepath.Dir(path))
	}
	os.Exit(code)
}

// process is a running sessiond: a child process (start), or a server in
// this process built from the same flags (startInProcess).
type process struct {
	cmd   *exec.Cmd      // nil in-process
	srv   *server.Server // nil for a child process
	url   string
	admin string // the admin listener's base URL, "" when off
	addrs string // the --addr-file of a child process
	// dataDir is the --data-dir of a process started by startNodes.
	dataDir string
	client  *client.Client
	stderr  *syncBuffer
	done    chan error
}

// start runs `sessiond serve` on dataDir and waits until it serves, which it
// learns from the file --addr-file names.
func start(t *testing.T, dataDir string, extra ...string) *process {
	t.Helper()
	p := launch(t, dataDir, extra...)
	p.await(t)
	return p
}

// launch runs `sessiond serve` on dataDir without waiting for it: await
// does, so that several can start at once.
func launch(t *testing.T, dataDir string, extra ...string) *process {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("build sessiond: %v", err)
	}
	addrFile := filepath.Join(t.TempDir(), "addr")
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--addr-file", addrFile}, extra...)
	p := &process{cmd: exec.Command(bin, args...), addrs: addrFile, stderr: new(syncBuffer), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), "SESSIOND_LISTEN=", "SESSIOND_DATA_DIR=")
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		io.Copy(p.stderr, pipe)
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// await waits until a launched process serves.
func (p *process) await(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(p.addrs); err == nil {
			p.serving(t, string(data))
			return
		}
		select {
		case err := <-p.done:
			t.Fatalf("sessiond exited before serving: %v\n%s", err, p.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessiond did not start in 30s:\n%s", p.stderr)
		}
	}
}

// serving sets p's addresses from the content of an --addr-file.
func (p *process) serving(t *testing.T, addrs string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(addrs, "\n"), "\n")
	if len(lines) != 2 || lines[0] == "" {
		t.Fatalf("--addr-file holds %q, want the API's address and the admin's on two lines", addrs)
	}
	p.url = "http://" + lines[0] + "/"
	if lines[1] != "off" {
		p.admin = "http://" + lines[1] + "/"
	}
	p.client = client.New(p.url, nil)
}

// startInProcess is start for a test that needs only the API: the server
// the same serve flags configure, run in this process. Its log goes to
// p.stderr; p.hup reloads its keys and p.stop(SIGTERM or SIGINT) closes it.
func startInProcess(t *testing.T, dataDir string, extra ...string) *process {
	t.Helper()
	p := &process{stderr: new(syncBuffer)}
	c, err := parseServe(append([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir}, extra...), p.stderr)
	if err != nil {
		t.Fatalf("serve flags %q: %v", extra, err)
	}
	c.Logger = slog.New(slog.NewTextHandler(p.stderr, nil))
	p.srv = server.New(c.Config)
	if err := p.srv.Open(context.Background()); err != nil {
		t.Fatalf("Open() error = %v\n%s", err, p.stderr)
	}
	t.Cleanup(func() { p.srv.Close() })
	admin := p.srv.AdminAddr()
	if admin == "" {
		admin = "off"
	}
	p.serving(t, p.srv.Addr()+"\n"+admin+"\n")
	return p
}

// stop sends sig and returns the process's exit error. In-process, SIGTERM
// and SIGINT close the server (SIGKILL needs a real process).
func (p *process) stop(t *testing.T, sig os.Signal) error {
	t.Helper()
	if p.srv != nil {
		if sig != syscall.SIGTERM && sig != os.Interrupt {
			t.Fatalf("stop(%v): an in-process server can only be closed; use start", sig)
		}
		return p.srv.Close()
	}
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("sessiond did not exit on %v", sig)
		return nil
	}
}

// dataDir returns a data directory path that does not exist yet.
func dataDir(t *testing.T) string { return filepath.Join(t.TempDir(), "data") }

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.WriteString(s)
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Tokens closed before a SIGKILL stay closed after the restart; the others
// stay active.
func TestKillRestart(t *testing.T) {
	dir := dataDir(t)
	p := start(t, dir)
	ctx := context.Background()
	var open, closed []string
	for i := range 20 {
		res, err := p.client.OpenSession(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := p.client.CloseSession(ctx, res.AccessToken); err != nil {
				t.Fatal(err)
			}
			closed = append(closed, res.AccessToken)
		} else {
			open = append(open, res.AccessToken)
		}
	}
	p.stop(t, syscall.SIGKILL)

	p = start(t, dir)
	for _, tok := range closed {
		if active, err := p.client.VerifySessionToken(ctx, tok); active || err != nil {
			t.Errorf("closed token after restart: active = %v, %v, want false", active, err)
		}
	}
	for _, tok := range open {
		if active, err := p.client.VerifySessionToken(ctx, tok); !active || err != nil {
			t.Errorf("open token after restart: active = %v, %v, want true", active, err)
		}
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: exit %v, want status 0\n%s", err, p.stderr)
	}
	if _, err := os.Stat(p.addrs); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--addr-file after a graceful stop: %v, want it removed", err)
	}
	info, err := os.Stat(filepath.Join(dir, "keys.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("keys.json mode = %v, %v, want 0600", info.Mode(), err)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %v, %v, want 0700", info.Mode(), err)
	}
}

func TestHealthzAndHTTP(t *testing.T) {
	p := startInProcess(t, dataDir(t))
	resp, err := http.Get(strings.TrimSuffix(p.url, "/") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
	resp, err = http.Get(p.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET / = %d, Allow %q, want 405 with Allow: POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// A second server on the same data directory fails at once and says why.
func TestSecondServerRefused(t *testing.T) {
	dir := dataDir(t)
	startInProcess(t, dir)
	bin, _ := binary()
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", dir)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("second server hung")
	}
	if err == nil || !strings.Contains(string(out), "in use by another process") {
		t.Errorf("second server: %v, output %q, want a failure saying the store is in use", err, out)
	}
}

func TestRefusesReadableKeyFile(t *testing.T) {
	dir := dataDir(t)
	p := startInProcess(t, dir)
	p.stop(t, syscall.SIGTERM)
	os.Chmod(filepath.Join(dir, "keys.json"), 0o644)
	var stderr strings.Builder
	err := run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("run() error = %v, want a refusal that says chmod 600", err)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr error
		want    string
	}{
		{[]string{"--help"}, nil, "sessiond serve"},
		{[]string{}, errUsage, "Usage:"},
		{[]string{"bogus"}, errUsage, `unknown command "bogus"`},
		{[]string{"serve", "--help"}, flag.ErrHelp, "-max-expires-in duration"},
		{[]string{"serve", "--help"}, flag.ErrHelp, "expires_in null or absent grants it instead of 30 days"},
		{[]string{"serve", "--leeway", "soon"}, errUsage, "invalid value"},
		{[]string{"serve", "--max-expires-in", "0s"}, nil, ""},
		{[]string{"serve", "extra"}, errUsage, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			err := run(context.Background(), tt.args, &out, &errOut)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) || tt.wantErr == nil && tt.want == "" && err == nil {
				t.Errorf("run() error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(out.String()+errOut.String(), tt.want) {
				t.Errorf("output %q does not contain %q", out.String()+errOut.String(), tt.want)
			}
		})
	}
}

func TestDataDirMode(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	err := run(context.Background(), []string{"serve", "--data-dir", dir}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("run() error = %v, want a refusal that says chmod 700", err)
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("SESSIOND_LEEWAY", "later")
	err := run(context.Background(), []string{"serve", "--data-dir", dataDir(t)}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SESSIOND_LEEWAY") {
		t.Errorf("run() error = %v, want one naming SESSIOND_LEEWAY", err)
	}
	// A flag wins over the environment.
	err = run(context.Background(), []string{"serve", "--leeway", "-1s", "--data-dir", dataDir(t)}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--leeway must not be negative") {
		t.Errorf("run() error = %v, want the flag's value to be checked", err)
	}
}

// A SIGHUP reloads the keys; it never stops the server.
func TestSIGHUPKeepsServing(t *testing.T) {
	p := start(t, dataDir(t))
	for range 3 {
		p.cmd.Process.Signal(syscall.SIGHUP)
	}
	if _, err := p.client.OpenSession(context.Background(), 0); err != nil {
		t.Fatalf("after SIGHUP: %v\n%s", err, p.stderr)
	}
	resp, err := http.Get(p.admin + "debug/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats map[string]uint64
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil || stats["goroutines"] == 0 {
		t.Errorf("GET /debug/stats = %v, %v, want goroutines > 0", stats, err)
	}
}

// A bad listen address, from the flag or the environment, is refused before
// anything is written: the data dir is not created.
func TestServeRefusesBadListenAddress(t *testing.T) {
	for _, addr := range []string{"garbage", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:8080x",
		"[::1", "::1:8080", "bad host:80", "under_score.example:80", "-lead.example:80", "1.2.3.4.5:80", "256.1.1.1:80", ""} {
		for _, viaEnv := range []bool{false, true} {
			name := addr
			if viaEnv {
				name = "SESSIOND_LISTEN=" + addr
			}
			t.Run(name, func(t *testing.T) {
				dir := dataDir(t)
				env, args := commandEnv(), []string{"serve", "--data-dir", dir, "--listen", addr}
				if viaEnv {
					env, args = commandEnv("SESSIOND_LISTEN="+addr), args[:3]
				}
				r := sessiond(t, env, args...)
				if r.code != 1 || !strings.Contains(r.stderr, "listen address") || !strings.Contains(r.stderr, "SESSIOND_LISTEN") {
					t.Errorf("exit %d, stderr %q; want exit 1 naming the listen address and how to set it", r.code, r.stderr)
				}
				if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a refused serve created the data dir: %v", err)
				}
			})
		}
	}
}

// checkListen accepts what net.Listen takes, offline: an IP literal (with
// a zone), localhost, a host name or nothing, and a port number or name.
func TestCheckListen(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", ":8080", ":0", "0.0.0.0:65535", "[::1]:8080", "[::]:80", "[fe80::1%lo]:80",
		"localhost:8080", "example.com:443", "sessiond.internal.:80", "host-1:80", "127.0.0.1:http"} {
		if err := checkListen(addr); err != nil {
			t.Errorf("checkListen(%q) = %v, want nil", addr, err)
		}
	}
}

// Without HOME (and XDG_STATE_HOME) there is no default data dir: serve
// and the key commands refuse and say what to set, rather than use a
// directory relative to wherever they were started. A relative
// XDG_STATE_HOME is ignored, as the XDG specification says.
func TestNoDefaultDataDirWithoutHome(t *testing.T) {
	noHome := slices.DeleteFunc(commandEnv(), func(kv string) bool {
		return strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_STATE_HOME=")
	})
	for _, env := range [][]string{noHome, append(slices.Clone(noHome), "XDG_STATE_HOME=state"), append(slices.Clone(noHome), "HOME=")} {
		for _, args := range [][]string{{"serve", "--listen", "127.0.0.1:0"}, {"keys", "init"}, {"keys", "list"}, {"keys", "rotate"}} {
			t.Run(strings.Join(args, " ")+" "+strings.Join(env[len(noHome):], " "), func(t *testing.T) {
				wd := t.TempDir()
				cmd, stdout, stderr := command(t, env, args...)
				cmd.Dir = wd
				r := finish(t, cmd.Run(), stdout, stderr)
				for _, want := range []string{"--data-dir", "SESSIOND_DATA_DIR", "HOME", "XDG_STATE_HOME"} {
					if r.code != 1 || !strings.Contains(r.stderr, want) {
						t.Errorf("exit %d, stderr %q; want exit 1 and a message naming %s", r.code, r.stderr, want)
					}
				}
				if entries, _ := os.ReadDir(wd); len(entries) != 0 {
					t.Errorf("%s wrote %d files in the working directory, want none", args[0], len(entries))
				}
			})
		}
	}
	// With HOME, the default is under it.
	home := t.TempDir()
	cmd, stdout, stderr := command(t, append(slices.Clone(noHome), "HOME="+home), "keys", "init")
	cmd.Dir = t.TempDir()
	if r := finish(t, cmd.Run(), stdout, stderr); r.code != 0 {
		t.Fatalf("keys init with HOME: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(home, ".local", "state", "sessiond", "keys.json")); err != nil {
		t.Errorf("keys init with HOME: %v", err)
	}
}
