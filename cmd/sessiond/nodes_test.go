package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sharedKeyDir returns a new directory, private to its owner, for a key
// file several nodes share.
func sharedKeyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startNodes starts n `sessiond serve` processes at once, each on a data
// dir of its own, with extra flags, and waits until all serve.
func startNodes(t *testing.T, n int, extra ...string) []*process {
	t.Helper()
	nodes := make([]*process, n)
	for i := range nodes {
		dir := dataDir(t)
		nodes[i] = launch(t, dir, extra...)
		nodes[i].dataDir = dir
	}
	for _, p := range nodes {
		p.await(t)
	}
	return nodes
}

// Three nodes started at once on one empty shared key file end with one
// key: the first start's key creation is under the key file's lock, and the
// others load what it wrote. Every node publishes it, and a token opened on
// one verifies on the others.
func TestSharedKeyFileFirstStart(t *testing.T) {
	keyFile := filepath.Join(sharedKeyDir(t), "keys.json")
	nodes := startNodes(t, 3, "--keys-file", keyFile)
	r := sessiond(t, commandEnv(), "keys", "list", "--json", "--keys-file", keyFile)
	if r.code != 0 || strings.Count(r.stdout, `"kid"`) != 1 {
		t.Fatalf("keys list --keys-file: exit %d, %s%s; want one key", r.code, r.stdout, r.stderr)
	}
	var want []string
	for i, p := range nodes {
		kids := jwksKids(t, p)
		if i == 0 {
			want = kids
		}
		if len(kids) != 1 || !slices.Equal(kids, want) {
			t.Errorf("node %d publishes %v, want the one key %v", i, kids, want)
		}
	}
	ctx := context.Background()
	res, err := nodes[0].client.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range nodes[1:] {
		if active, err := p.client.VerifySessionToken(ctx, res.AccessToken); !active || err != nil {
			t.Errorf("node %d: verify of a token opened on node 0 = %v, %v, want true", i+1, active, err)
		}
	}
	for i, p := range nodes {
		if _, err := os.Lstat(filepath.Join(p.dataDir, "keys.json")); !os.IsNotExist(err) {
			t.Errorf("node %d: its data dir holds a keys.json (%v), want only the shared key file", i, err)
		}
	}
}

// A key file replaced by rename, as a mounted secret or a deployment tool
// replaces it, is reloaded even when the new file has the old one's
// modification time: the keyring notices the new inode.
func TestKeyFileReplacedByRename(t *testing.T) {
	keyFile := filepath.Join(sharedKeyDir(t), "keys.json")
	p := startInProcess(t, dataDir(t), "--keys-file", keyFile)
	old := jwksKids(t, p)
	other := filepath.Join(sharedKeyDir(t), "keys.json")
	if r := sessiond(t, commandEnv(), "keys", "init", "--keys-file", other); r.code != 0 {
		t.Fatalf("keys init --keys-file: exit %d\n%s", r.code, r.stderr)
	}
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, keyFile); err != nil {
		t.Fatal(err)
	}
	p.srv.ReloadKeys()
	var kids []string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if kids = jwksKids(t, p); len(kids) == 1 && kids[0] != old[0] {
			return
		}
	}
	t.Errorf("after the key file was replaced by rename: JWKS %v, want only the new key (the old one was %v)", kids, old)
}

// serve and the key commands refuse a --keys-file whose directory is
// missing or writable by others, saying what to do, and serve then creates
// nothing.
func TestKeysFileRefusals(t *testing.T) {
	open := sharedKeyDir(t)
	os.Chmod(open, 0o777)
	tests := []struct {
		name, keyFile, want string
	}{
		{"missing directory", filepath.Join(t.TempDir(), "nope", "keys.json"), "mkdir -m 700"},
		{"writable by others", filepath.Join(open, "keys.json"), "chmod go-w"},
	}
	for _, tt := range tests {
		for _, args := range [][]string{{"serve", "--listen", "127.0.0.1:0"}, {"keys", "list"}, {"keys", "rotate"}} {
			t.Run(tt.name+" "+strings.Join(args[:2], " "), func(t *testing.T) {
				dir := dataDir(t)
				r := sessiond(t, commandEnv("SESSIOND_KEYS_FILE="+tt.keyFile), append(args, "--data-dir", dir)...)
				if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
					t.Errorf("exit %d, stderr %q; want exit 1 saying %q", r.code, r.stderr, tt.want)
				}
				if _, err := os.Lstat(dir); !os.IsNotExist(err) {
					t.Errorf("a refused command created the data dir: %v", err)
				}
			})
		}
	}
}

// A rotation of a key file three nodes share, under load: sessions opened
// on each node and verified on the other two, all the time. No
// verification fails anywhere, and every node publishes the new key before
// any node signs with it (the activation delay, the reload interval plus
// --jwks-max-age, covers the nodes' reloads).
func TestRotationAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("a rotation across three nodes takes about 10 s")
	}
	keyFile := filepath.Join(sharedKeyDir(t), "keys.json")
	nodes := startNodes(t, 3, "--keys-file", keyFile, "--jwks-max-age", "1s")
	oldKid := jwksKids(t, nodes[0])[0]
	var (
		mu        sync.Mutex
		published = make([]time.Time, len(nodes)) // when each node was first seen publishing a new key (response received)
		signed    time.Time                       // request start of the first token seen signed by a new key
		signedOn  = make([]bool, len(nodes))
		verified  int
		fail      failures
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, p := range nodes {
		wg.Go(func() { // JWKS poller
			for ctx.Err() == nil {
				_, kids, err := getJWKS(p.jwksURL())
				received := time.Now()
				if err != nil {
					fail.add("node %d: JWKS: %v", i, err)
					return
				}
				mu.Lock()
				if len(kids) > 1 && published[i].IsZero() {
					published[i] = received
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
		wg.Go(func() { // opens on node i, verifies on the others
			for ctx.Err() == nil {
				requested := time.Now()
				res, err := p.client.OpenSession(context.Background(), time.Hour)
				if err != nil {
					fail.add("node %d: open_session: %v", i, err)
					return
				}
				kid, _, err := inspect(res.AccessToken)
				if err != nil {
					fail.add("node %d: %v", i, err)
					return
				}
				if kid != oldKid {
					mu.Lock()
					if signed.IsZero() || requested.Before(signed) {
						signed = requested
					}
					signedOn[i] = true
					mu.Unlock()
				}
				for j, q := range nodes {
					if j == i {
						continue
					}
					if active, err := q.client.VerifySessionToken(context.Background(), res.AccessToken); !active || err != nil {
						fail.add("node %d: verify of a token of %s opened on node %d at %s = %v, %v, want true", j, kid, i, stamp(requested), active, err)
					}
					mu.Lock()
					verified++
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // load before the rotation
	rotated := time.Now()
	if r := sessiond(t, commandEnv(), "keys", "rotate", "--keys-file", keyFile, "--jwks-max-age", "1s"); r.code != 0 {
		t.Fatalf("keys rotate: exit %d\n%s", r.code, r.stderr)
	}
	allSigned := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !slices.Contains(signedOn, false)
	}
	for deadline := time.Now().Add(30 * time.Second); !allSigned() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // load after every node switched
	cancel()
	wg.Wait()
	fail.report(t, "failures under load")
	if !allSigned() {
		t.Fatalf("30 s after the rotation at %s, the nodes that sign with the new key: %v, want all", stamp(rotated), signedOn)
	}
	for i, at := range published {
		if at.IsZero() || !at.Before(signed) {
			t.Errorf("node %d published the new key at %s, want before the first token it signed (requested at %s)", i, stamp(at), stamp(signed))
		}
	}
	t.Logf("%d cross-node verifications; rotated %s, published %s, first signed %s", verified, stamp(rotated), fmt.Sprint(stamps(published)), stamp(signed))
}

func stamps(ts []time.Time) []string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = stamp(t)
	}
	return s
}

// A bad --revocation-store or --revocation-store-replicas is refused in
// the configuration check, naming the setting and the forms it takes,
// before anything is written; a password in the URL never shows.
func TestServeRefusesBadStore(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown scheme", []string{"--revocation-store", "mysql://127.0.0.1:3306"}, "redis://[user:password@]host:port[/db]"},
		{"a word", []string{"--revocation-store", "valkey"}, "redis://[user:password@]host:port[/db]"},
		{"no host", []string{"--revocation-store", "redis://"}, "--revocation-store"},
		{"bad port", []string{"--revocation-store", "redis://u:hunter2@127.0.0.1:notaport"}, "--revocation-store"},
		{"bad seed", []string{"--revocation-store", "redis://127.0.0.1:6379?addr=nohostport"}, "--revocation-store"},
		{"unknown parameter", []string{"--revocation-store", "redis://127.0.0.1:6379?pool=9"}, "--revocation-store"},
		{"bad db", []string{"--revocation-store", "redis://127.0.0.1:6379/x"}, "--revocation-store"},
		{"negative replicas", []string{"--revocation-store", "redis://127.0.0.1:6379", "--revocation-store-replicas", "-1"}, "must not be negative"},
		{"replicas with Badger", []string{"--revocation-store-replicas", "1"}, "needs a Valkey or Redis --revocation-store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := dataDir(t)
			r := sessiond(t, commandEnv(), append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir}, tt.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 saying %q", r.code, r.stderr, tt.want)
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("stderr %q shows the password", r.stderr)
			}
			if _, err := os.Lstat(dir); !os.IsNotExist(err) {
				t.Errorf("a refused serve created the data dir: %v", err)
			}
		})
	}
}
