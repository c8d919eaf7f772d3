package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/rpc"
)

// Timing of a close seen across nodes: each other node is asked every
// pollEvery and must answer inactive within seenWithin of the close's
// reply (the invalidation delay), then never active again.
const (
	pollEvery  = 10 * time.Millisecond
	seenWithin = 100 * time.Millisecond
)

// storeNodes starts n nodes sharing one key file and the store at url.
func storeNodes(t *testing.T, n int, url string, extra ...string) []*process {
	t.Helper()
	keyFile := filepath.Join(sharedKeyDir(t), "keys.json")
	return startNodes(t, n, append([]string{"--keys-file", keyFile, "--revocation-store", url}, extra...)...)
}

// verdict is a node's answer to verify_session_token.
type verdict string

const (
	vActive   verdict = "active"
	vInactive verdict = "inactive"
	vInternal verdict = "-32603"
)

// verifyOn asks p about tok: active, inactive, -32603, or another error.
func verifyOn(p *process, tok string) (verdict, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	active, err := p.client.VerifySessionToken(ctx, tok)
	var rpcErr *client.Error
	switch {
	case errors.As(err, &rpcErr) && rpcErr.Code == rpc.CodeInternalError:
		return vInternal, nil
	case err != nil:
		return "", err
	case active:
		return vActive, nil
	}
	return vInactive, nil
}

// openOn opens a session on p, of subject when it is not empty.
func openOn(t *testing.T, p *process, subject string) string {
	t.Helper()
	if subject != "" {
		return openSubject(t, p, subject)
	}
	res, err := p.client.OpenSession(context.Background(), time.Hour)
	if err != nil {
		t.Fatalf("open_session: %v\n%s", err, p.stderr)
	}
	return res.AccessToken
}

// requireActive fails unless every node answers tok is active.
func requireActive(t *testing.T, nodes []*process, tok string) {
	t.Helper()
	for i, p := range nodes {
		if v, err := verifyOn(p, tok); v != vActive {
			t.Fatalf("node %d: verify = %s, %v, want active", i, v, err)
		}
	}
}

// seenClosed checks that every node but the closer answers inactive within
// seenWithin of closed (when the close was acknowledged), polling every
// pollEvery, and then never active again.
func seenClosed(t *testing.T, nodes []*process, closer int, tok string, closed time.Time) {
	t.Helper()
	for i, p := range nodes {
		if i == closer {
			continue
		}
		var v verdict
		var err error
		for {
			v, err = verifyOn(p, tok)
			if v == vInactive || time.Since(closed) > seenWithin {
				break
			}
			time.Sleep(pollEvery)
		}
		after := time.Since(closed)
		t.Logf("node %d: inactive %s after the close on node %d", i, after.Round(100*time.Microsecond), closer)
		if v != vInactive {
			t.Errorf("node %d: %s after the close on node %d, verify = %s, %v; want inactive within %s", i, after.Round(time.Millisecond), closer, v, err, seenWithin)
		}
	}
	for range 10 {
		for i, p := range nodes {
			if v, err := verifyOn(p, tok); v != vInactive {
				t.Errorf("node %d: verify of a closed session = %s, %v, want inactive, always", i, v, err)
			}
		}
		time.Sleep(pollEvery)
	}
}

// crossNodeClose is the test every shared store must pass with three
// nodes: open on A verifies on B and C; a close on B is seen on A and C
// within the invalidation delay and stays; close_all_sessions on C is
// seen on A and B likewise.
func crossNodeClose(t *testing.T, nodes []*process) {
	t.Helper()
	ctx := context.Background()
	tok := openOn(t, nodes[0], "")
	requireActive(t, nodes, tok)
	if err := nodes[1].client.CloseSession(ctx, tok); err != nil {
		t.Fatalf("close_session on node 1: %v\n%s", err, nodes[1].stderr)
	}
	seenClosed(t, nodes, 1, tok, time.Now())

	sub := openOn(t, nodes[0], "alice@example.com")
	other := openOn(t, nodes[0], "bob@example.com")
	requireActive(t, nodes, sub)
	if got := rpcCall(t, nodes[2], "session.close_all_sessions", `{"subject":"alice@example.com"}`); got != "true" {
		t.Fatalf("close_all_sessions on node 2 = %s, want true", got)
	}
	seenClosed(t, nodes, 2, sub, time.Now())
	requireActive(t, nodes, other)
}

// Three nodes against one Valkey server, and against one Redis 7.0 server:
// a session opened on one node verifies on the others, and a close on any
// node is seen by the others at once.
func TestNodesShareOneStore(t *testing.T) {
	for _, bin := range []string{"valkey-server", "redis-server"} {
		t.Run(bin, func(t *testing.T) {
			srv := valkeytest.Start(t, valkeytest.Options{Binary: bin})
			crossNodeClose(t, storeNodes(t, 3, srv.URL()))
		})
	}
}

// load verifies a closed token and an open one on every node from a few
// goroutines, and opens and closes sessions on node 0, until stop is
// called. It counts every answer and records what must never happen.
type load struct {
	nodes          []*process
	closed, opened string

	mu       sync.Mutex
	answers  map[string]int // "node i: verdict" → count
	acked    []string       // tokens whose close answered true
	fail     failures
	paused   atomic.Bool // the open/close loop rests (while the store is down)
	down     []atomic.Bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	internal atomic.Int64
}

func startLoad(t *testing.T, nodes []*process) *load {
	t.Helper()
	l := &load{nodes: nodes, answers: map[string]int{}, down: make([]atomic.Bool, len(nodes))}
	l.closed, l.opened = openOn(t, nodes[0], ""), openOn(t, nodes[0], "")
	if err := nodes[1].client.CloseSession(context.Background(), l.closed); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for w := range 3 {
		l.wg.Go(func() {
			for ctx.Err() == nil {
				for i, p := range nodes {
					if l.down[i].Load() {
						continue
					}
					for _, tok := range []string{l.closed, l.opened} {
						v, err := verifyOn(p, tok)
						l.mu.Lock()
						l.answers[fmt.Sprintf("node %d: %s", i, v)]++
						l.mu.Unlock()
						switch {
						case err != nil && !l.down[i].Load():
							l.fail.add("worker %d: node %d: verify: %v", w, i, err)
						case tok == l.closed && v == vActive:
							l.fail.add("worker %d: node %d: a closed session verified active at %s", w, i, stamp(time.Now()))
						case v == vInternal:
							l.internal.Add(1)
						}
					}
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	l.wg.Go(func() { // closes whose true must survive
		for ctx.Err() == nil {
			if l.paused.Load() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			res, err := nodes[0].client.OpenSession(context.Background(), time.Hour)
			if err != nil {
				l.fail.add("open_session: %v", err)
				return
			}
			if err := nodes[1].client.CloseSession(context.Background(), res.AccessToken); err == nil {
				l.mu.Lock()
				l.acked = append(l.acked, res.AccessToken)
				l.mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Cleanup(l.stop)
	return l
}

func (l *load) stop() { l.cancel(); l.wg.Wait() }

// waitAll polls until every running node answers want for tok (at most
// 30 s), and fails the test otherwise.
func waitAll(t *testing.T, nodes []*process, down []atomic.Bool, tok string, want verdict, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i, p := range nodes {
		if down != nil && down[i].Load() {
			continue
		}
		for {
			v, err := verifyOn(p, tok)
			if v == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: %s: verify = %s, %v; want %s within 30 s\n%s", i, what, v, err, want, p.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// SIGKILL of the Valkey server under load: every node fails closed
// (-32603, or inactive, never active for a session closed before), and
// once the server restarts from its AOF every node recovers by itself with
// every acknowledged close still closed. Then SIGKILL of one sessiond node
// under load: the others go on answering.
func TestNodesSurviveStoreAndNodeKill(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	nodes := storeNodes(t, 3, srv.URL())
	l := startLoad(t, nodes)
	time.Sleep(300 * time.Millisecond)

	l.paused.Store(true)
	srv.Kill()
	time.Sleep(time.Second) // every node notices, under load
	srv.Restart()
	l.paused.Store(false)
	waitAll(t, nodes, nil, l.opened, vActive, "after Valkey restarted from its AOF")
	time.Sleep(300 * time.Millisecond)

	l.down[2].Store(true)
	nodes[2].stop(t, syscall.SIGKILL)
	before := l.internal.Load()
	time.Sleep(500 * time.Millisecond)
	if n := l.internal.Load() - before; n != 0 {
		t.Errorf("%d answers -32603 from the surviving nodes after one node was killed, want 0", n)
	}
	l.stop()
	l.fail.report(t, "failures under load")
	l.mu.Lock()
	acked := l.acked
	t.Logf("answers: %v; %d acknowledged closes", l.answers, len(acked))
	l.mu.Unlock()
	if l.internal.Load() == 0 {
		t.Errorf("no node answered -32603 while Valkey was down: the test did not see the outage")
	}
	for _, tok := range acked {
		for i, p := range nodes[:2] {
			if v, err := verifyOn(p, tok); v != vInactive {
				t.Errorf("node %d: a session whose close answered true verifies %s, %v after the restart, want inactive", i, v, err)
			}
		}
	}
}

// Three nodes against a Valkey Cluster of three masters with one replica
// each: the same cross-node close; then the master that holds the list
// is killed, its replica takes over, and a session closed before (with
// --revocation-store-replicas 1, so the replica had it) stays closed on
// every node, which recover by themselves.
func TestNodesCluster(t *testing.T) {
	c := valkeytest.StartCluster(t, 3, 1)
	nodes := storeNodes(t, 3, c.URL(), "--revocation-store-replicas", "1")
	crossNodeClose(t, nodes)

	closed, opened := openOn(t, nodes[0], ""), openOn(t, nodes[0], "")
	if err := nodes[1].client.CloseSession(context.Background(), closed); err != nil {
		t.Fatal(err)
	}
	const key = "{sessiond}"
	old := c.MasterOf(key)
	c.Node(old).Kill()
	c.WaitFailover(key, old)
	waitAll(t, nodes, nil, opened, vActive, "after the failover")
	for i, p := range nodes {
		if v, err := verifyOn(p, closed); v != vInactive {
			t.Errorf("node %d: after the failover a closed session verifies %s, %v, want inactive", i, v, err)
		}
	}
	crossNodeClose(t, nodes)
}
