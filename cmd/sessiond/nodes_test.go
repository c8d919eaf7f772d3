package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
