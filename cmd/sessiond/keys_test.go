package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond/keys"
)

// result is what a finished sessiond command left behind.
type result struct {
	stdout, stderr string
	code           int
}

// commandEnv is the test's environment without SESSIOND_* variables (a
// developer's own settings must not leak into the commands), plus extra.
// The binary is built with -race, whose runtime otherwise sleeps a second
// before every successful exit.
func commandEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "SESSIOND_") || strings.HasPrefix(kv, "GORACE=")
	})
	env = append(env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return append(env, extra...)
}

// command returns `sessiond args...` ready to run with env.
func command(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("build sessiond: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func finish(t *testing.T, err error, stdout, stderr *bytes.Buffer) result {
	t.Helper()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run sessiond: %v", err)
	}
	return r
}

// sessiond runs the real binary with env and waits for it.
func sessiond(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd, stdout, stderr := command(t, env, args...)
	return finish(t, cmd.Run(), stdout, stderr)
}

// keysCmd runs `sessiond keys sub --data-dir dir flags... args...` and
// requires it to succeed.
func keysCmd(t *testing.T, dir string, sub string, args ...string) result {
	t.Helper()
	r := sessiond(t, commandEnv(), append([]string{"keys", sub, "--data-dir", dir}, args...)...)
	if r.code != 0 {
		t.Fatalf("sessiond keys %s %s: exit %d\n%s%s", sub, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

var addedRE = regexp.MustCompile(`(?m)^added (\S+) key (\S+)$`)

// rotate runs `sessiond keys rotate` and returns the new kid.
func rotate(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := keysCmd(t, dir, "rotate", args...)
	m := addedRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("keys rotate printed %q, want \"added ALG key KID\"", r.stdout)
	}
	return m[2]
}

// listedKey is one key of `sessiond keys list --json`.
type listedKey struct {
	ID        string     `json:"kid"`
	Algorithm string     `json:"alg"`
	State     keys.State `json:"state"`
	Created   time.Time  `json:"created"`
	Activates time.Time  `json:"activates"`
	Retires   *time.Time `json:"retires"`
	Expires   *time.Time `json:"expires"`
}

// parseList parses the output of `keys list --json`, which must be one JSON
// document and nothing else.
func parseList(t *testing.T, stdout string) []listedKey {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	var doc struct{ Keys []listedKey }
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("keys list --json: %v in %q", err, stdout)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		t.Fatalf("keys list --json printed more than one JSON document (%v): %q", err, stdout)
	}
	if doc.Keys == nil {
		t.Fatalf("keys list --json: no keys array in %q", stdout)
	}
	return doc.Keys
}

func listKeys(t *testing.T, dir string, args ...string) []listedKey {
	t.Helper()
	return parseList(t, keysCmd(t, dir, "list", append([]string{"--json"}, args...)...).stdout)
}

func findKey(list []listedKey, kid string) *listedKey {
	for i := range list {
		if list[i].ID == kid {
			return &list[i]
		}
	}
	return nil
}

// inspect reads a token's kid and exp without verifying anything.
func inspect(tok string) (kid string, exp time.Time, err error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", time.Time{}, fmt.Errorf("token %q has %d parts", tok, len(parts))
	}
	var header struct{ Kid string }
	var claims struct{ Exp int64 }
	for i, v := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return "", time.Time{}, fmt.Errorf("token part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return "", time.Time{}, fmt.Errorf("token part %d %s: %v", i, raw, err)
		}
	}
	return header.Kid, time.Unix(claims.Exp, 0), nil
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	kid, _, err := inspect(tok)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// hup makes the server reload its keys at once.
func (p *process) hup(t *testing.T) {
	t.Helper()
	if p.srv != nil {
		p.srv.ReloadKeys()
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
}

// openWithKid opens sessions until one is signed by kid, for at most
// within; it returns that token.
func (p *process) openWithKid(t *testing.T, kid string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res, err := p.client.OpenSession(context.Background(), time.Hour)
		if err != nil {
			t.Fatalf("open_session: %v", err)
		}
		if kidOf(t, res.AccessToken) == kid {
			return res.AccessToken
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token signed by %s within %s (last one by %s)\n%s", kid, within, kidOf(t, res.AccessToken), p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitActive polls verify_session_token until tok's activity is want.
func (p *process) waitActive(t *testing.T, tok string, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		active, err := p.client.VerifySessionToken(context.Background(), tok)
		if err != nil {
			t.Fatalf("verify_session_token: %v", err)
		}
		if active == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("token still active = %v after %s, want %v", active, within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// `keys remove` stops the tokens of the removed key: at once on SIGHUP, and
// within the reload interval without it. Tokens of other keys stay active.
func TestKeysRemove(t *testing.T) {
	dir := dataDir(t)
	p := start(t, dir)
	ctx := context.Background()
	res, err := p.client.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok0, kid0 := res.AccessToken, kidOf(t, res.AccessToken)

	kid1 := rotate(t, dir, "--now")
	p.hup(t)
	tok1 := p.openWithKid(t, kid1, 5*time.Second)

	t.Run("with SIGHUP", func(t *testing.T) {
		r := keysCmd(t, dir, "remove", "--", kid0)
		if !strings.Contains(r.stdout, "removed key "+kid0) {
			t.Errorf("keys remove printed %q", r.stdout)
		}
		p.hup(t)
		// At once: well within the 2 s in which the server would have
		// noticed by itself.
		p.waitActive(t, tok0, false, 3*keyReloadInterval/4)
		if active, err := p.client.VerifySessionToken(ctx, tok1); !active || err != nil {
			t.Errorf("token of the remaining key: active = %v, %v, want true", active, err)
		}
		if kids := jwksKids(t, p); slices.Contains(kids, kid0) || !slices.Contains(kids, kid1) {
			t.Errorf("JWKS kids = %v, want %s and not %s", kids, kid1, kid0)
		}
	})

	t.Run("without SIGHUP", func(t *testing.T) {
		kid2 := rotate(t, dir, "--now")
		p.hup(t)
		tok2 := p.openWithKid(t, kid2, 5*time.Second)
		keysCmd(t, dir, "remove", "--", kid1)
		p.waitActive(t, tok1, false, 3*keyReloadInterval)
		if active, err := p.client.VerifySessionToken(ctx, tok2); !active || err != nil {
			t.Errorf("token of the remaining key: active = %v, %v, want true", active, err)
		}
	})
}

// Two `keys rotate` at once, several times over: the file stays valid and
// keeps every key either of them added.
func TestKeysRotateConcurrent(t *testing.T) {
	dir := dataDir(t)
	all := []string{initKeys(t, dir)}
	for round := range 4 {
		var wg sync.WaitGroup
		algs := []string{"EdDSA", "ES256"}
		errs := make([]error, len(algs))
		stdouts, stderrs := make([]*bytes.Buffer, len(algs)), make([]*bytes.Buffer, len(algs))
		for i, alg := range algs {
			var cmd *exec.Cmd
			cmd, stdouts[i], stderrs[i] = command(t, commandEnv(), "keys", "rotate", "--data-dir", dir, "--alg", alg)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { errs[i] = cmd.Wait() })
		}
		wg.Wait()
		for i, alg := range algs {
			r := finish(t, errs[i], stdouts[i], stderrs[i])
			m := addedRE.FindStringSubmatch(r.stdout)
			if r.code != 0 || m == nil {
				t.Fatalf("round %d: keys rotate --alg %s: exit %d\n%s%s", round, alg, r.code, r.stdout, r.stderr)
			}
			all = append(all, m[2])
		}
		set, err := keys.Load(filepath.Join(dir, "keys.json"))
		if err != nil {
			t.Fatalf("round %d: Load() error = %v", round, err)
		}
		if set.Len() != len(all) {
			t.Errorf("round %d: %d keys in the file, want %d", round, set.Len(), len(all))
		}
		for _, kid := range all {
			if set.Lookup(kid) == nil {
				t.Errorf("round %d: key %s is missing", round, kid)
			}
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "keys.json.tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
	if got := listKeys(t, dir); len(got) != len(all) {
		t.Errorf("keys list has %d keys, want %d", len(got), len(all))
	}
}

// `keys list --json` prints only JSON: each key's kid, alg and state, and
// its lifecycle times.
func TestKeysListJSON(t *testing.T) {
	dir := dataDir(t)
	first := initKeys(t, dir, "--alg", "ES256") // the first key is active at once
	next := rotate(t, dir, "--alg", "RS256", "--activate-after", "1h")
	list := listKeys(t, dir, "--max-expires-in", "2h", "--leeway", "1m")
	if len(list) != 2 {
		t.Fatalf("keys list --json = %+v, want 2 keys", list)
	}
	a, n := findKey(list, first), findKey(list, next)
	if a == nil || a.Algorithm != "ES256" || a.State != keys.Active {
		t.Errorf("first key = %+v, want ES256 active", a)
	}
	if n == nil || n.Algorithm != "RS256" || n.State != keys.Next || n.Retires != nil || n.Expires != nil {
		t.Fatalf("second key = %+v, want RS256 next, with no retirement", n)
	}
	if d := n.Activates.Sub(n.Created); d < time.Hour || d > time.Hour+time.Second {
		t.Errorf("next key activates %s after its creation, want 1h", d)
	}
	if a.Retires == nil || !a.Retires.Equal(n.Activates) || a.Expires == nil || !a.Expires.Equal(n.Activates.Add(2*time.Hour+time.Minute)) {
		t.Errorf("active key retires %v, expires %v; want at %v and 2h1m later", a.Retires, a.Expires, n.Activates)
	}

	r := keysCmd(t, dir, "list")
	if !strings.HasPrefix(r.stdout, "KID") || !strings.Contains(r.stdout, first) || !strings.Contains(r.stdout, "next") {
		t.Errorf("keys list = %q, want a table of both keys", r.stdout)
	}
	if r := sessiond(t, commandEnv(), "keys", "list", "--json", "--data-dir", dataDir(t)); r.code != 1 || r.stdout != "" {
		t.Errorf("keys list --json without a key file: exit %d, stdout %q; want exit 1 and nothing on stdout", r.code, r.stdout)
	}
}

// Removing the key that signs is refused with a message that says what to
// do, whether or not an older key could take over; `--` ends the flags, so
// a kid may start with '-'.
func TestKeysRemoveRefused(t *testing.T) {
	dir := dataDir(t)
	only := initKeys(t, dir)
	rotate(t, dir, "--activate-after", "1h") // next: cannot sign yet

	r := sessiond(t, commandEnv(), "keys", "remove", "--data-dir", dir, "--", only)
	if r.code != 1 || !strings.Contains(r.stderr, "signs new tokens now") || !strings.Contains(r.stderr, "rotate --now") {
		t.Errorf("keys remove of the only active key: exit %d, stderr %q; want exit 1 and advice to rotate --now", r.code, r.stderr)
	}
	if list := listKeys(t, dir); findKey(list, only) == nil || len(list) != 2 {
		t.Errorf("after a refused remove: keys = %+v, want both still there", list)
	}
	// An older, retired key must not silently sign again either.
	newest := rotate(t, dir, "--now")
	r = sessiond(t, commandEnv(), "keys", "remove", "--data-dir", dir, "--", newest)
	if r.code != 1 || !strings.Contains(r.stderr, "signs new tokens now") {
		t.Errorf("keys remove of the active key with a retired one left: exit %d, stderr %q; want exit 1", r.code, r.stderr)
	}

	r = sessiond(t, commandEnv(), "keys", "remove", "--data-dir", dir, "--", "-abc")
	if r.code != 1 || !strings.Contains(r.stderr, `no key "-abc"`) {
		t.Errorf("keys remove -- -abc: exit %d, stderr %q; want exit 1 and no key \"-abc\"", r.code, r.stderr)
	}
	// Without --, it is a flag, and an unknown one.
	r = sessiond(t, commandEnv(), "keys", "remove", "--data-dir", dir, "-abc")
	if r.code != 2 || !strings.Contains(r.stderr, "flag provided but not defined") {
		t.Errorf("keys remove -abc: exit %d, stderr %q; want a usage error (2)", r.code, r.stderr)
	}
	r = sessiond(t, commandEnv(), "keys", "remove", "--data-dir", dir)
	if r.code != 2 || !strings.Contains(r.stderr, "want 1 argument") {
		t.Errorf("keys remove without a kid: exit %d, stderr %q; want a usage error (2)", r.code, r.stderr)
	}
}

// The key commands read the same SESSIOND_* variables as serve; a flag wins
// over the environment.
func TestKeysEnvironment(t *testing.T) {
	dir := dataDir(t)
	env := commandEnv("SESSIOND_DATA_DIR="+dir, "SESSIOND_JWKS_MAX_AGE=1m",
		"SESSIOND_MAX_EXPIRES_IN=2h", "SESSIOND_LEEWAY=30s")
	for _, args := range [][]string{
		{"keys", "init"},
		{"keys", "rotate", "--alg", "ES256"},
		{"keys", "rotate", "--alg", "EdDSA", "--jwks-max-age", "10m"},
	} {
		if r := sessiond(t, env, args...); r.code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "keys.json")); err != nil {
		t.Fatalf("SESSIOND_DATA_DIR: %v", err)
	}
	r := sessiond(t, env, "keys", "list", "--json")
	if r.code != 0 {
		t.Fatalf("keys list --json: exit %d\n%s", r.code, r.stderr)
	}
	list := parseList(t, r.stdout)
	if len(list) != 3 {
		t.Fatalf("keys list = %+v, want 3 keys", list)
	}
	// Each next key waits at least the JWKS max-age, from the environment
	// and then from the flag.
	for i, want := range []time.Duration{time.Minute, 10 * time.Minute} {
		k := list[i+1]
		if d := k.Activates.Sub(k.Created); d < want+keyReloadInterval || d > want+keyReloadInterval+2*time.Second {
			t.Errorf("key %d activates %s after its creation, want %s (and the reload interval)", i+1, d, want)
		}
	}
	if k := list[0]; k.Expires == nil || k.Expires.Sub(*k.Retires) != 2*time.Hour+30*time.Second {
		t.Errorf("first key retires %v, expires %v: want max-expires-in + leeway = 2h0m30s apart", k.Retires, k.Expires)
	}

	r = sessiond(t, commandEnv("SESSIOND_DATA_DIR="+dir, "SESSIOND_LEEWAY=soon"), "keys", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "SESSIOND_LEEWAY") {
		t.Errorf("bad SESSIOND_LEEWAY: exit %d, stderr %q; want exit 1 naming the variable", r.code, r.stderr)
	}
}

// rawPrivateKey returns k's private key as its concrete type
// (ed25519.PrivateKey, *ecdsa.PrivateKey or *rsa.PrivateKey), for tests that
// sign with golang-jwt, whose ES256 and RS256 take only those types.
// keys.Key.Signer is opaque so that it never prints; the key file is where
// the raw key leaves the keys package, so it is read from there.
func rawPrivateKey(tb testing.TB, k *keys.Key) crypto.Signer {
	tb.Helper()
	var s keys.Set
	s.Add(k)
	path := filepath.Join(tb.TempDir(), "keys.json")
	if err := keys.Save(path, &s); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var file struct {
		Keys []struct {
			PrivateKey []byte `json:"private_key_pkcs8"`
		}
	}
	if err := json.Unmarshal(data, &file); err != nil || len(file.Keys) != 1 {
		tb.Fatalf("key file: %v, %d keys", err, len(file.Keys))
	}
	priv, err := x509.ParsePKCS8PrivateKey(file.Keys[0].PrivateKey)
	if err != nil {
		tb.Fatal(err)
	}
	return priv.(crypto.Signer)
}

// initKeys runs `sessiond keys init` on dir and returns the first kid.
func initKeys(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := keysCmd(t, dir, "init", args...)
	m := createdRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("keys init printed %q, want \"created FILE with ALG key KID\"", r.stdout)
	}
	return m[2]
}

var createdRE = regexp.MustCompile(`(?m)^created \S+ with (\S+) key ([^\s,]+)`)

// The key commands other than init never create a data directory or a key
// file: a mistyped --data-dir (or SESSIOND_DATA_DIR) is refused with a
// message that says how to make one, and nothing is written.
func TestKeysRefuseMissingKeyFile(t *testing.T) {
	commands := [][]string{{"rotate"}, {"rotate", "--now"}, {"list"}, {"list", "--json"}, {"prune"}, {"remove", "--", "somekid"}}
	t.Run("no data dir", func(t *testing.T) {
		for _, args := range commands {
			dir := dataDir(t)
			for _, env := range [][]string{commandEnv(), commandEnv("SESSIOND_DATA_DIR=" + dir)} {
				cmdArgs := append([]string{"keys", args[0]}, args[1:]...)
				if len(env) == len(commandEnv()) {
					cmdArgs = append([]string{"keys", args[0], "--data-dir", dir}, args[1:]...)
				}
				r := sessiond(t, env, cmdArgs...)
				if r.code != 1 || !strings.Contains(r.stderr, "does not exist") || !strings.Contains(r.stderr, "sessiond keys init --data-dir "+dir) || r.stdout != "" {
					t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 saying the data dir does not exist and how to create it", strings.Join(cmdArgs, " "), r.code, r.stdout, r.stderr)
				}
				if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s created the data dir: %v", strings.Join(cmdArgs, " "), err)
				}
			}
		}
	})
	t.Run("no key file", func(t *testing.T) {
		for _, args := range commands {
			dir := dataDir(t)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			cmdArgs := append([]string{"keys", args[0], "--data-dir", dir}, args[1:]...)
			r := sessiond(t, commandEnv(), cmdArgs...)
			if r.code != 1 || !strings.Contains(r.stderr, "holds no key file") || !strings.Contains(r.stderr, "sessiond keys init --data-dir "+dir) || r.stdout != "" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 saying there is no key file and how to create one", strings.Join(cmdArgs, " "), r.code, r.stdout, r.stderr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("%s left %d files in the data dir, want none", strings.Join(cmdArgs, " "), len(entries))
			}
		}
	})
}

// `keys init` makes the data dir and its first key, active at once, and
// refuses a data dir that holds a key file already.
func TestKeysInit(t *testing.T) {
	dir := dataDir(t)
	kid := initKeys(t, dir, "--alg", "ES256")
	list := listKeys(t, dir)
	if len(list) != 1 || list[0].ID != kid || list[0].Algorithm != "ES256" || list[0].State != keys.Active {
		t.Fatalf("after keys init: keys = %+v, want one active ES256 key %s", list, kid)
	}
	if got := permOf(t, dir); got != 0o700 {
		t.Errorf("data dir mode = %04o, want 0700", got)
	}
	if got := permOf(t, filepath.Join(dir, "keys.json")); got != 0o600 {
		t.Errorf("keys.json mode = %04o, want 0600", got)
	}
	before, err := os.ReadFile(filepath.Join(dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := sessiond(t, commandEnv(), "keys", "init", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "already holds a key file") || !strings.Contains(r.stderr, "sessiond keys rotate") {
		t.Errorf("second keys init: exit %d, stderr %q; want exit 1 pointing to keys rotate", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "keys.json")); !bytes.Equal(after, before) {
		t.Error("a refused keys init changed the key file")
	}
	// The server uses the key init made, and rotate works from there.
	p := start(t, dir)
	res, err := p.client.OpenSession(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := kidOf(t, res.AccessToken); got != kid {
		t.Errorf("token signed by %s, want the key init made, %s", got, kid)
	}
	rotate(t, dir)
	if list := listKeys(t, dir); len(list) != 2 {
		t.Errorf("after rotate: %d keys, want 2", len(list))
	}
}

// A symbolic link as keys.json, dangling or not, and a key file without a
// key are refused by the server and by the key commands, which say what to
// do; nothing is changed or created, not even the revocation list.
func TestKeyFileRefusedAtStart(t *testing.T) {
	serve := func(dir string) []string { return []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir} }
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (check func(t *testing.T))
		want  []string
	}{
		{"symbolic link", func(t *testing.T, dir string) func(t *testing.T) {
			other := dataDir(t)
			initKeys(t, other)
			elsewhere := filepath.Join(other, "keys.json")
			if err := os.Remove(filepath.Join(dir, "keys.json")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, filepath.Join(dir, "keys.json")); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				if target, err := os.Readlink(filepath.Join(dir, "keys.json")); err != nil || target != elsewhere {
					t.Errorf("keys.json is no longer the symbolic link: %q, %v", target, err)
				}
			}
		}, []string{"is a symbolic link to", "mv "}},
		{"dangling symbolic link", func(t *testing.T, dir string) func(t *testing.T) {
			missing := filepath.Join(t.TempDir(), "keys.json")
			os.Remove(filepath.Join(dir, "keys.json"))
			if err := os.Symlink(missing, filepath.Join(dir, "keys.json")); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				if _, err := os.Lstat(missing); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a key file was created behind the dangling link: %v", err)
				}
			}
		}, []string{"which does not exist", "rm "}},
		{"no keys", func(t *testing.T, dir string) func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(`{"version": 1, "keys": []}`), 0o600); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				if data, _ := os.ReadFile(filepath.Join(dir, "keys.json")); string(data) != `{"version": 1, "keys": []}` {
					t.Errorf("the key file changed: %s", data)
				}
			}
		}, []string{"holds no keys", "sessiond keys init"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, args := range [][]string{serve(""), {"keys", "rotate", "--data-dir", ""}, {"keys", "list", "--data-dir", ""}} {
				dir := dataDir(t)
				initKeys(t, dir)
				check := tt.setup(t, dir)
				args[len(args)-1] = dir
				if args[0] == "serve" {
					os.RemoveAll(filepath.Join(dir, "revocations"))
				}
				r := sessiond(t, commandEnv(), args...)
				for _, want := range tt.want {
					if r.code != 1 || !strings.Contains(r.stderr, want) {
						t.Errorf("%s: exit %d, stderr %q; want exit 1 and %q", args[0]+" "+args[1], r.code, r.stderr, want)
					}
				}
				check(t)
				if _, err := os.Lstat(filepath.Join(dir, "revocations")); args[0] == "serve" && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a refused serve created the revocation list: %v", err)
				}
			}
		})
	}
}
