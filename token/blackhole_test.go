package token_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

// blackHole is a loopback HTTP server that serves a JWK Set until it is
// switched to a black hole: from then on it accepts connections and never
// answers on them.
type blackHole struct {
	net.Listener
	srv  *http.Server
	hole atomic.Bool

	mu   sync.Mutex
	held []net.Conn
}

func newBlackHole(t *testing.T, h http.Handler) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{Listener: ln, srv: &http.Server{Handler: h}}
	// Every connection closes after its response, so that the next
	// request needs a new one, which the black hole swallows.
	b.srv.SetKeepAlivesEnabled(false)
	go b.srv.Serve(b)
	t.Cleanup(func() { b.srv.Close(); b.release() })
	return b
}

func (b *blackHole) Accept() (net.Conn, error) {
	for {
		c, err := b.Listener.Accept()
		if err != nil || !b.hole.Load() {
			return c, err
		}
		b.mu.Lock()
		b.held = append(b.held, c) // never read, never answered
		b.mu.Unlock()
	}
}

// release closes the connections the black hole holds.
func (b *blackHole) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.held {
		c.Close()
	}
	b.held = nil
}

func (b *blackHole) url() string { return "http://" + b.Addr().String() + "/.well-known/jwks.json" }

// countingTransport counts the round trips that have begun and ended.
type countingTransport struct{ begun, ended atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.begun.Add(1)
	defer c.ended.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// With the JWKS host black-holed after a first fetch, a known key answers
// from the cache while the refresh hangs in the background, however many
// look-ups ask; a key source that never had a set waits, but only as long
// as its context allows, even behind another caller's fetch.
func TestRemoteJWKSBlackHole(t *testing.T) {
	pub := publicKey(t, keys.EdDSA)
	served := newJWKSServer(t, pub) // for its handler: max-age=60
	hole := newBlackHole(t, served.Config.Handler)
	transport := &countingTransport{}
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	clk := newAtomicClock(t0)
	r := token.NewRemoteJWKS(hole.url(), token.WithJWKSClient(client), token.WithJWKSClock(clk.Now), token.WithJWKSMinInterval(time.Second))
	mustFind(t, r, pub.ID)

	hole.hole.Store(true)
	clk.Advance(time.Hour) // the copy is due for a refresh
	ended := transport.ended.Load()
	for range 100 {
		// A deadline, so that a look-up that waits for the fetch ends it
		// (then the check below fails) rather than wait for a minute.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _, err := r.VerificationKey(ctx, pub.ID)
		cancel()
		if err != nil {
			t.Fatalf("VerificationKey(known kid) with the host black-holed = %v, want the cached key", err)
		}
		if transport.ended.Load() != ended {
			t.Fatal("VerificationKey(known kid) returned after the refresh had ended: it waited for the network")
		}
	}
	feedEventually(t, func() bool { return transport.begun.Load() > ended })
	if got := transport.begun.Load() - ended; got != 1 {
		t.Errorf("%d refreshes began for 100 look-ups, want 1", got)
	}
	mustFind(t, r, pub.ID)
	if transport.ended.Load() != ended {
		t.Fatal("the refresh ended on its own: the black hole answered")
	}

	// A source that never had a set waits for its fetch, bounded by its
	// context, and so does a second caller behind the first one's fetch.
	cold := token.NewRemoteJWKS(hole.url(), token.WithJWKSClient(client), token.WithJWKSClock(clk.Now), token.WithJWKSMinInterval(time.Second))
	first := make(chan error, 1)
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	go func() { _, _, err := cold.VerificationKey(firstCtx, pub.ID); first <- err }()
	feedEventually(t, func() bool { return transport.begun.Load() > ended+1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := cold.VerificationKey(ctx, pub.ID)
	if !errors.Is(err, token.ErrKeysUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("VerificationKey() of a cold source behind a hanging fetch = %v, want ErrKeysUnavailable and DeadlineExceeded", err)
	}
	if transport.ended.Load() != ended {
		t.Error("the second caller returned only after the first one's fetch had ended")
	}
	cancelFirst()
	if err := <-first; !errors.Is(err, token.ErrKeysUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("VerificationKey() of the first caller, cancelled = %v, want ErrKeysUnavailable and Canceled", err)
	}

	// Let the hanging fetches end, and the goroutines with them.
	hole.release()
	feedEventually(t, func() bool { hole.release(); return transport.ended.Load() == transport.begun.Load() })
}
