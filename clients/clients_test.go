package clients_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/clients"
)

func clientsFile(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), clients.FileName)
}

func add(t *testing.T, path, name string, allow ...clients.Permission) clients.Secret {
	t.Helper()
	secret, err := clients.Add(path, name, allow, time.Now())
	if err != nil {
		t.Fatalf("Add(%q) error = %v", name, err)
	}
	return secret
}

func load(t *testing.T, path string) *clients.Set {
	t.Helper()
	s, err := clients.Load(path)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	return s
}

// Add returns a new random secret of 32 bytes, stores only its SHA-256 in a
// file of mode 0600, and Authenticate finds the client by the secret, and
// by nothing else.
func TestAddAuthenticate(t *testing.T) {
	path := clientsFile(t)
	if got := load(t, path).Len(); got != 0 {
		t.Fatalf("Load(missing file).Len() = %d, want 0", got)
	}
	billing := add(t, path, "billing", clients.Verify, clients.Open, clients.Open)
	web := add(t, path, "web-1", clients.Close)
	if billing.Reveal() == web.Reveal() {
		t.Fatal("two clients got the same secret")
	}
	raw, err := base64.RawURLEncoding.DecodeString(billing.Reveal())
	if err != nil || len(raw) != 32 {
		t.Errorf("secret %d bytes of base64url (%v), want 32", len(raw), err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("clients file mode = %04o, want 0600", got)
	}
	data, _ := os.ReadFile(path)
	for _, s := range []clients.Secret{billing, web} {
		if bytes.Contains(data, []byte(s.Reveal())) {
			t.Errorf("clients file holds a secret:\n%s", data)
		}
	}

	set := load(t, path)
	if got := set.Len(); got != 2 {
		t.Fatalf("Len() = %d, want 2", got)
	}
	c, ok := set.Authenticate(billing.Reveal())
	if !ok || c.Name != "billing" {
		t.Fatalf("Authenticate(billing's secret) = %v, %v, want billing", c, ok)
	}
	if want := []clients.Permission{clients.Open, clients.Verify}; !slices.Equal(c.Allow, want) {
		t.Errorf("Allow = %v, want %v", c.Allow, want)
	}
	if c.Created.IsZero() {
		t.Error("Created is zero")
	}
	if c, ok := set.Authenticate(web.Reveal()); !ok || c.Name != "web-1" {
		t.Errorf("Authenticate(web-1's secret) = %v, %v, want web-1", c, ok)
	}
	for _, wrong := range []string{"", "billing", billing.Reveal()[:42], billing.Reveal() + "x", strings.ToUpper(billing.Reveal())} {
		if c, ok := set.Authenticate(wrong); ok {
			t.Errorf("Authenticate(%q) = %v, want none", wrong, c.Name)
		}
	}
	if c, ok := set.Lookup("web-1"); !ok || c.Name != "web-1" {
		t.Errorf("Lookup(web-1) = %v, %v", c, ok)
	}
	if _, ok := set.Lookup("nobody"); ok {
		t.Error("Lookup(nobody) found a client")
	}
}

// A secret prints as [REDACTED] through every fmt verb, slog handler and
// encoding/json; only Reveal gives its text.
func TestSecretNeverPrints(t *testing.T) {
	secret := add(t, clientsFile(t), "app", clients.Open)
	text := secret.Reveal()
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		outs = append(outs, fmt.Sprintf(verb, secret), fmt.Sprintf(verb, &secret),
			fmt.Sprintf(verb, struct{ S clients.Secret }{secret}))
	}
	outs = append(outs, fmt.Sprint(secret), fmt.Sprintln(secret))
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "secret", secret, "p", &secret)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", secret, "p", &secret)
	j, _ := json.Marshal(map[string]any{"s": secret})
	outs = append(outs, logs.String(), string(j))
	for _, out := range outs {
		if strings.Contains(out, text) || !strings.Contains(out, "[REDACTED]") {
			t.Errorf("printed secret as %q, want [REDACTED]", out)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"billing", true}, {"web-1", true}, {"app.example.com", true}, {"a_b", true}, {"0", true},
		{strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {"Billing", false}, {"-x", false}, {".x", false},
		{"_x", false}, {"a b", false}, {"a/b", false}, {"a\n", false}, {"é", false}, {"a=b", false},
	} {
		err := clients.ValidName(tt.name)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, clients.ErrName) {
			t.Errorf("ValidName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestParsePermissions(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []clients.Permission
	}{
		{"open,close,verify", []clients.Permission{clients.Close, clients.Open, clients.Verify}},
		{"verify", []clients.Permission{clients.Verify}},
		{" open , open ", []clients.Permission{clients.Open}},
		{"", nil}, {"open,", nil}, {"admin", nil}, {"Open", nil}, {"open;close", nil},
	} {
		got, err := clients.ParsePermissions(tt.in)
		if !slices.Equal(got, tt.want) || (err == nil) != (tt.want != nil) {
			t.Errorf("ParsePermissions(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, clients.ErrPermission) {
			t.Errorf("ParsePermissions(%q) error = %v, want ErrPermission", tt.in, err)
		}
	}
}

// Each permission allows exactly its methods; rpc.discover is allowed to all.
func TestAllows(t *testing.T) {
	path := clientsFile(t)
	add(t, path, "o", clients.Open)
	add(t, path, "c", clients.Close)
	add(t, path, "v", clients.Verify)
	add(t, path, "all", clients.Open, clients.Close, clients.Verify)
	set := load(t, path)
	allowed := map[string][]string{
		"o":   {"session.open_session", "rpc.discover"},
		"c":   {"session.close_session", "session.close_all_sessions", "rpc.discover"},
		"v":   {"session.verify_session_token", "session.introspect_session_token", "rpc.discover"},
		"all": {"session.open_session", "session.close_session", "session.close_all_sessions", "session.verify_session_token", "session.introspect_session_token", "rpc.discover"},
	}
	methods := []string{"session.open_session", "session.close_session", "session.close_all_sessions",
		"session.verify_session_token", "session.introspect_session_token", "rpc.discover", "nope", "", "session.open_session "}
	for name, want := range allowed {
		c, _ := set.Lookup(name)
		for _, m := range methods {
			if got := c.Allows(m); got != slices.Contains(want, m) {
				t.Errorf("client %s: Allows(%q) = %v, want %v", name, m, got, !got)
			}
		}
	}
}

// Load refuses what it must not trust, saying why and what to do.
func TestLoadRefuses(t *testing.T) {
	good := clientsFile(t)
	add(t, good, "app", clients.Open)
	data, _ := os.ReadFile(good)
	for _, tt := range []struct {
		name  string
		setup func(path string)
		want  error
		fix   string
	}{
		{"group readable", func(p string) { os.WriteFile(p, data, 0o640); os.Chmod(p, 0o640) }, clients.ErrInsecure, "chmod 600"},
		{"symlink", func(p string) { os.Symlink(good, p) }, clients.ErrNotRegular, "move the file into place"},
		{"dangling symlink", func(p string) { os.Symlink(p+".nowhere", p) }, clients.ErrNotRegular, "symbolic link"},
		{"directory", func(p string) { os.Mkdir(p, 0o700) }, clients.ErrNotRegular, "clients file itself"},
		{"not JSON", func(p string) { os.WriteFile(p, []byte("{"), 0o600) }, clients.ErrCorrupt, ""},
		{"version", func(p string) { os.WriteFile(p, []byte(`{"version":2,"clients":[]}`), 0o600) }, clients.ErrCorrupt, "version"},
		{"bad name", func(p string) { os.WriteFile(p, bytes.Replace(data, []byte(`"app"`), []byte(`"A pp"`), 1), 0o600) }, clients.ErrCorrupt, ""},
		{"twice", func(p string) {
			os.WriteFile(p, []byte(`{"version":1,"clients":[{"name":"a","allow":["open"],"secret_sha256":"`+strings.Repeat("0", 64)+`"},{"name":"a","allow":["open"],"secret_sha256":"`+strings.Repeat("1", 64)+`"}]}`), 0o600)
		}, clients.ErrCorrupt, "twice"},
		{"bad permission", func(p string) { os.WriteFile(p, bytes.Replace(data, []byte(`"open"`), []byte(`"admin"`), 1), 0o600) }, clients.ErrCorrupt, "admin"},
		{"no permission", func(p string) {
			os.WriteFile(p, []byte(`{"version":1,"clients":[{"name":"a","allow":[],"secret_sha256":"`+strings.Repeat("0", 64)+`"}]}`), 0o600)
		}, clients.ErrCorrupt, "no permission"},
		{"short hash", func(p string) {
			os.WriteFile(p, []byte(`{"version":1,"clients":[{"name":"a","allow":["open"],"secret_sha256":"00"}]}`), 0o600)
		}, clients.ErrCorrupt, "64 hex digits"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := clientsFile(t)
			tt.setup(path)
			_, err := clients.Load(path)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.fix) {
				t.Errorf("Load() error = %v, want %v mentioning %q", err, tt.want, tt.fix)
			}
			if strings.Contains(tt.name, "symlink") {
				if _, err := clients.Add(path, "other", []clients.Permission{clients.Open}, time.Now()); !errors.Is(err, clients.ErrNotRegular) {
					t.Errorf("Add() through a symlink error = %v, want ErrNotRegular", err)
				}
				if info, err := os.Lstat(path); err != nil || info.Mode()&os.ModeSymlink == 0 {
					t.Errorf("the symlink was replaced: %v %v", info, err)
				}
			}
		})
	}
}

func TestAddRemove(t *testing.T) {
	path := clientsFile(t)
	secret := add(t, path, "app", clients.Open)
	if _, err := clients.Add(path, "app", []clients.Permission{clients.Verify}, time.Now()); !errors.Is(err, clients.ErrExists) || !strings.Contains(err.Error(), "sessiond clients remove app") {
		t.Errorf("Add(existing) error = %v, want ErrExists with the fix", err)
	}
	for _, tt := range []struct {
		name  string
		allow []clients.Permission
		want  error
	}{{"Bad", []clients.Permission{clients.Open}, clients.ErrName}, {"ok", nil, clients.ErrPermission}, {"ok", []clients.Permission{"root"}, clients.ErrPermission}} {
		if _, err := clients.Add(path, tt.name, tt.allow, time.Now()); !errors.Is(err, tt.want) {
			t.Errorf("Add(%q, %v) error = %v, want %v", tt.name, tt.allow, err, tt.want)
		}
	}
	if err := clients.Remove(path, "nobody"); !errors.Is(err, clients.ErrNotFound) {
		t.Errorf("Remove(nobody) error = %v, want ErrNotFound", err)
	}
	if err := clients.Remove(path, "app"); err != nil {
		t.Fatalf("Remove(app) error = %v", err)
	}
	set := load(t, path)
	if _, ok := set.Authenticate(secret.Reveal()); ok || set.Len() != 0 {
		t.Errorf("after Remove: Len() = %d, Authenticate = %v, want 0, false", set.Len(), ok)
	}
}

// Concurrent Adds serialise on the lock: none loses another's client.
func TestConcurrentAdd(t *testing.T) {
	path := clientsFile(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := clients.Add(path, fmt.Sprintf("c%d", i), []clients.Permission{clients.Open}, time.Now()); err != nil {
				t.Errorf("Add(c%d) error = %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := load(t, path).Len(); got != 8 {
		t.Errorf("Len() = %d, want 8", got)
	}
}

// A Registry follows the file: a change is picked up by Reload, and a file
// that turns bad or vanishes leaves the last good clients in place.
func TestRegistryReload(t *testing.T) {
	path := clientsFile(t)
	first := add(t, path, "first", clients.Open)
	var logs bytes.Buffer
	r, err := clients.OpenRegistry(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	second := add(t, path, "second", clients.Verify)
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload() error = %v", err)
	}
	if _, ok := r.Set().Authenticate(second.Reveal()); !ok {
		t.Fatal("after Reload the new client is unknown")
	}
	good, _ := os.ReadFile(path)
	os.WriteFile(path, []byte("not json"), 0o600)
	if err := r.Reload(); !errors.Is(err, clients.ErrCorrupt) {
		t.Errorf("Reload(corrupt) error = %v, want ErrCorrupt", err)
	}
	if err := r.Reload(); err != nil {
		t.Errorf("Reload(same corrupt file again) error = %v, want nil (reported once)", err)
	}
	os.Remove(path)
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Errorf("Reload(deleted) error = %v, want 'is gone'", err)
	}
	if _, ok := r.Set().Authenticate(first.Reveal()); !ok || r.Set().Len() != 2 {
		t.Errorf("after bad reloads: %d clients, first known %v; want the last good 2", r.Set().Len(), ok)
	}
	os.WriteFile(path, good, 0o600)
	clients.Remove(path, "second")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	reload := make(chan struct{}, 1)
	go func() { r.Run(ctx, time.Hour, reload); close(done) }()
	reload <- struct{}{}
	for deadline := time.Now().Add(10 * time.Second); r.Set().Len() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("Run did not reload on request: %d clients", r.Set().Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if strings.Contains(logs.String(), first.Reveal()) || strings.Contains(logs.String(), second.Reveal()) {
		t.Errorf("the log holds a secret:\n%s", logs.String())
	}
}

// NameFrom reads the client NewContext stored, "" without one.
func TestContext(t *testing.T) {
	path := clientsFile(t)
	add(t, path, "app", clients.Open)
	c, _ := load(t, path).Lookup("app")
	ctx := clients.NewContext(context.Background(), c)
	if got := clients.NameFrom(ctx); got != "app" {
		t.Errorf("NameFrom() = %q, want app", got)
	}
	if got := clients.NameFrom(context.Background()); got != "" {
		t.Errorf("NameFrom(empty) = %q, want \"\"", got)
	}
}
