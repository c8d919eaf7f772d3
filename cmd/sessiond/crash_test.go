package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
)

// Crash safety of the real binary: 32 clients open and close sessions while
// the server is SIGKILLed at a random moment, 50 to 300 ms after the first
// close of the round was answered, five times over on the same data
// directory. Every restart must open the store cleanly (the server starts,
// /healthz answers, no error in its log), every close that was answered
// true must still be closed (verify says inactive), and every session that
// was opened and never closed must still be active. Closes whose answer the
// kill swallowed may have gone either way. Each restart checks the round
// before it, the last one everything; the seed of the random delays is
// logged.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	closed, open := crashRounds(t, dir, 5, 32)
	p := start(t, dir)
	healthz(t, p)
	checkSessions(t, p.client, closed, false, 5)
	checkSessions(t, p.client, open, true, 5)
	if log := p.stderr.String(); strings.Contains(log, "level=ERROR") || strings.Contains(log, "panic") {
		t.Errorf("last restart: the server's log has errors:\n%s", log)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM after the last restart: exit %v, want status 0\n%s", err, p.stderr)
	}
}

// crashRounds runs rounds of load and SIGKILL on dir (see TestCrashSafety)
// and returns every token whose close was answered true and every token
// opened and never closed. The server is left killed after the last round.
func crashRounds(t *testing.T, dir string, rounds, workers int) (closed, open []string) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("seed %d", seed)
	ctx := context.Background()

	var lastClosed, lastOpen []string
	for round := range rounds {
		p := start(t, dir)
		transport := &http.Transport{MaxIdleConnsPerHost: workers}
		sc := client.New(p.url, &http.Client{Transport: transport, Timeout: 30 * time.Second})
		healthz(t, p)
		checkSessions(t, sc, lastClosed, false, round)
		checkSessions(t, sc, lastOpen, true, round)
		// The store opened cleanly: nothing worse than a warning.
		if log := p.stderr.String(); strings.Contains(log, "level=ERROR") || strings.Contains(log, "panic") {
			t.Errorf("restart %d: the server's log has errors:\n%s", round, log)
		}

		var (
			mu                     sync.Mutex
			roundClosed, roundOpen []string
			killed                 = make(chan struct{})
			flowing                = make(chan struct{}) // closed at the first close answered
			flowingOnce            sync.Once
			wg                     sync.WaitGroup
		)
		// failed reports whether err ends the worker. An error is expected
		// once the kill is under way; before it, or a JSON-RPC error at any
		// time, it fails the test.
		failed := func(method string, err error) bool {
			if err == nil {
				return false
			}
			select {
			case <-killed:
				if rpcErr, ok := errors.AsType[*client.Error](err); ok {
					t.Errorf("round %d: %s: %v", round, method, rpcErr)
				}
			default:
				t.Errorf("round %d: %s before the kill: %v", round, method, err)
			}
			return true
		}
		for w := range workers {
			wg.Go(func() {
				for i := 0; ; i++ {
					res, err := sc.OpenSession(ctx, time.Hour)
					if failed("open_session", err) {
						return
					}
					if (w+i)%4 == 0 { // a quarter of the sessions stay open
						mu.Lock()
						roundOpen = append(roundOpen, res.AccessToken)
						mu.Unlock()
						continue
					}
					if failed("close_session", sc.CloseSession(ctx, res.AccessToken)) {
						return
					}
					mu.Lock()
					roundClosed = append(roundClosed, res.AccessToken)
					mu.Unlock()
					flowingOnce.Do(func() { close(flowing) })
				}
			})
		}
		select {
		case <-flowing:
		case <-time.After(20 * time.Second):
			t.Errorf("round %d: no close answered in 20s", round)
		}
		delay := time.Duration(50+rng.IntN(251)) * time.Millisecond
		time.Sleep(delay)
		close(killed)
		p.stop(t, syscall.SIGKILL)
		wg.Wait()
		transport.CloseIdleConnections()
		t.Logf("round %d: killed after %v with %d closes answered true, %d sessions left open", round, delay, len(roundClosed), len(roundOpen))
		closed = append(closed, roundClosed...)
		open = append(open, roundOpen...)
		lastClosed, lastOpen = roundClosed, roundOpen
	}
	if len(closed) == 0 {
		t.Error("no close was answered before a kill: the test exercised nothing")
	}
	return closed, open
}

// healthz fails the test unless GET /healthz answers 200.
func healthz(t *testing.T, p *process) {
	t.Helper()
	resp, err := http.Get(p.url + "healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %d, want 200", resp.StatusCode)
	}
}

// checkSessions verifies every token, 16 at a time, and fails the test for
// each whose active state is not want.
func checkSessions(t *testing.T, sc *client.Client, tokens []string, want bool, round int) {
	t.Helper()
	next := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for tok := range next {
				active, err := sc.VerifySessionToken(context.Background(), tok)
				if err != nil || active != want {
					t.Errorf("after restart %d: verify = %v, %v, want active %v", round, active, err, want)
				}
			}
		})
	}
	for _, tok := range tokens {
		next <- tok
	}
	close(next)
	wg.Wait()
}
