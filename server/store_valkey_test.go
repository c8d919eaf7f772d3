package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/server"
)

// Nodes that share a Valkey store must agree on --leeway: a node whose
// leeway is smaller than the store's retention (the largest leeway a node
// opened it with) would refuse as expired the tokens the others accept,
// and answer close_session true for them without revoking them. Such a
// node refuses to start, naming both values and the fix, and leaves
// nothing behind; a node with the same leeway starts and shares the
// sessions; a node with a larger one starts (a rolling raise), after which
// the old leeway is refused too; and once every node is stopped, lowering
// the store's retention as the refusal says lets nodes with the smaller
// leeway start.
func TestLeewayAcrossNodes(t *testing.T) {
	vk := valkeytest.Start(t, valkeytest.Options{})
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	node := func(leeway time.Duration) (*server.Server, string, error) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "data")
		srv := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0", KeysFile: keysFile,
			RevocationStore: vk.URL(), Leeway: leeway})
		if err := srv.Open(context.Background()); err != nil {
			return nil, dir, err
		}
		t.Cleanup(func() { srv.Close() })
		return srv, dir, nil
	}
	mustNode := func(leeway time.Duration) *server.Server {
		t.Helper()
		srv, _, err := node(leeway)
		if err != nil {
			t.Fatalf("Open() of a node with --leeway %s = %v, want nil", leeway, err)
		}
		return srv
	}
	wantRefused := func(leeway, retention time.Duration) {
		t.Helper()
		_, dir, err := node(leeway)
		if !errors.Is(err, server.ErrLeeway) {
			t.Fatalf("Open() of a node with --leeway %s on a store with retention %s = %v, want ErrLeeway", leeway, retention, err)
		}
		for _, want := range []string{
			"this node has --leeway " + leeway.String(),
			"keeps records for " + retention.String(),
			"Give every node the same --leeway: --leeway " + retention.String(),
			"SET '{sessiond}:retain' " + strconv.FormatInt(leeway.Nanoseconds(), 10),
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not say %q", err, want)
			}
		}
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Errorf("a refused node created its data dir: %v", err)
		}
	}

	a := mustNode(time.Minute)
	wantRefused(5*time.Second, time.Minute)
	b := mustNode(time.Minute)
	ctx := context.Background()
	res, err := client.New("http://"+a.Addr()+"/", nil).OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatalf("OpenSession() on node A = %v", err)
	}
	if err := client.New("http://"+b.Addr()+"/", nil).CloseSession(ctx, res.AccessToken); err != nil {
		t.Fatalf("CloseSession() on node B = %v", err)
	}
	if active, err := client.New("http://"+a.Addr()+"/", nil).VerifySessionToken(ctx, res.AccessToken); active || err != nil {
		t.Fatalf("VerifySessionToken() on node A of a session closed on B = %v, %v, want false", active, err)
	}

	// A larger leeway raises the store's retention; the old one is then
	// refused too.
	c := mustNode(2 * time.Minute)
	wantRefused(time.Minute, 2*time.Minute)

	// To lower it for good: stop every node, lower the stored retention,
	// start them with the new leeway.
	for _, srv := range []*server.Server{a, b, c} {
		if err := srv.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	}
	vk.MustDo("SET", "{sessiond}:retain", strconv.FormatInt((5*time.Second).Nanoseconds(), 10))
	d := mustNode(5 * time.Second)
	if active, err := client.New("http://"+d.Addr()+"/", nil).VerifySessionToken(ctx, res.AccessToken); active || err != nil {
		t.Errorf("VerifySessionToken() after lowering the leeway, of a session closed before = %v, %v, want false", active, err)
	}
}
