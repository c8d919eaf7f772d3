package token_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/publish"
	"github.com/sessiond/sessiond/token"
)

// atomicClock is a clock that tests move while other goroutines read it.
type atomicClock struct{ ns atomic.Int64 }

func newAtomicClock(t time.Time) *atomicClock {
	c := new(atomicClock)
	c.ns.Store(t.UnixNano())
	return c
}

func (c *atomicClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *atomicClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// jwksServer serves a JWK Set the way a test wants it and counts what it
// is asked.
type jwksServer struct {
	*httptest.Server

	mu           sync.Mutex
	keys         []token.PublicKey
	status       int    // 0: serve the set
	cacheControl string // "" : no Cache-Control header
	padding      int    // bytes of white space appended to the body
	raw          []byte // served instead of the set, when not nil
	requests     int
	revalidated  int // requests with If-None-Match
	notModified  int // of which answered 304
}

func newJWKSServer(t *testing.T, pubs ...token.PublicKey) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: pubs, cacheControl: "max-age=60"}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.status != 0 {
		http.Error(w, "broken", s.status)
		return
	}
	body, err := issue.MarshalJWKS(s.keys)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if s.raw != nil {
		body = s.raw
	}
	body = append(body, bytes.Repeat([]byte(" "), s.padding)...)
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:8]) + `"`
	if s.cacheControl != "" {
		w.Header().Set("Cache-Control", s.cacheControl)
	}
	w.Header().Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		s.revalidated++
		if inm == etag {
			s.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Write(body)
}

func (s *jwksServer) set(fn func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *jwksServer) count() (requests, revalidated, notModified int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.revalidated, s.notModified
}

func (s *jwksServer) url() string { return s.URL + "/.well-known/jwks.json" }

func lookup(t *testing.T, r *token.RemoteJWKS, kid string) error {
	t.Helper()
	alg, key, err := r.VerificationKey(context.Background(), kid)
	if err == nil && (alg == "" || key == nil) {
		t.Fatalf("VerificationKey(%s) = %q, %v, nil: no key and no error", kid, alg, key)
	}
	if err != nil && key != nil {
		t.Fatalf("VerificationKey(%s) returned a key with error %v", kid, err)
	}
	return err
}

func mustFind(t *testing.T, r *token.RemoteJWKS, kid string) {
	t.Helper()
	if err := lookup(t, r, kid); err != nil {
		t.Fatalf("VerificationKey(%s) error = %v, want the key", kid, err)
	}
}

// settle waits for the background fetch that a look-up from a set due for
// a refresh has started (Refresh joins a running fetch, and fetches nothing
// within MinInterval of it).
func settle(t *testing.T, r *token.RemoteJWKS) {
	t.Helper()
	r.Refresh(context.Background())
}

func wantRequests(t *testing.T, s *jwksServer, want int) {
	t.Helper()
	if got, _, _ := s.count(); got != want {
		t.Fatalf("server saw %d requests, want %d", got, want)
	}
}

// Against sessiond's own handler: the set is cached for its max-age, then
// revalidated with If-None-Match, which the handler answers with 304.
func TestRemoteJWKSCachesAndRevalidates(t *testing.T) {
	pub := publicKey(t, keys.EdDSA)
	var requests, conditional, notModified atomic.Int32
	h := publish.NewJWKSHandler(func() []token.PublicKey { return []token.PublicKey{pub} }, time.Minute, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("If-None-Match") != "" {
			conditional.Add(1)
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusNotModified {
			notModified.Add(1)
		}
	}))
	defer srv.Close()

	clk := newAtomicClock(t0)
	r := token.NewRemoteJWKS(srv.URL+"/.well-known/jwks.json", token.WithJWKSClock(clk.Now), token.WithJWKSMinInterval(time.Second))
	for range 100 {
		mustFind(t, r, pub.ID)
	}
	clk.Advance(59 * time.Second)
	mustFind(t, r, pub.ID)
	if got := requests.Load(); got != 1 {
		t.Fatalf("requests within max-age = %d, want 1", got)
	}
	clk.Advance(time.Second) // max-age is over
	mustFind(t, r, pub.ID)
	settle(t, r)
	if requests.Load() != 2 || conditional.Load() != 1 || notModified.Load() != 1 {
		t.Fatalf("after max-age: requests %d, conditional %d, 304 %d, want 2, 1, 1",
			requests.Load(), conditional.Load(), notModified.Load())
	}
	// The 304 made the copy fresh for another max-age.
	clk.Advance(59 * time.Second)
	mustFind(t, r, pub.ID)
	if got := requests.Load(); got != 2 {
		t.Errorf("requests within the renewed max-age = %d, want 2", got)
	}
	clk.Advance(time.Second)
	mustFind(t, r, pub.ID)
	settle(t, r)
	if requests.Load() != 3 || notModified.Load() != 2 {
		t.Errorf("requests %d, 304 %d, want 3, 2", requests.Load(), notModified.Load())
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// A changed set is fetched in full after revalidation fails, and a key
// published since is found by the look-up that needs it.
func TestRemoteJWKSUnknownKid(t *testing.T) {
	old, added := publicKey(t, keys.EdDSA), publicKey(t, keys.ES256)
	s := newJWKSServer(t, old)
	clk := newAtomicClock(t0)
	const minInterval = 10 * time.Second
	r := token.NewRemoteJWKS(s.url(), token.WithJWKSClock(clk.Now), token.WithJWKSMinInterval(minInterval))
	mustFind(t, r, old.ID)
	wantRequests(t, s, 1)

	// A flood of made-up key ids, from many goroutines, fetches nothing
	// within MinInterval of the last fetch.
	flood := func() {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					if err := lookup(t, r, fmt.Sprintf("made-up-%d-%d", g, i)); err == nil {
						t.Errorf("VerificationKey(made-up) error = nil")
						return
					}
				}
			})
		}
		wg.Wait()
	}
	flood()
	wantRequests(t, s, 1)
	clk.Advance(minInterval - time.Millisecond)
	flood()
	wantRequests(t, s, 1)
	// Once MinInterval has passed, the flood causes exactly one fetch.
	clk.Advance(time.Millisecond)
	flood()
	wantRequests(t, s, 2)
	// Known keys keep working meanwhile, without fetching.
	mustFind(t, r, old.ID)
	wantRequests(t, s, 2)

	// A key published since the last fetch is found at once when the
	// last attempt was MinInterval ago, although the copy is fresh.
	s.set(func(s *jwksServer) { s.keys = append(s.keys, added) })
	clk.Advance(minInterval)
	mustFind(t, r, added.ID)
	mustFind(t, r, old.ID)
	requests, revalidated, notModified := s.count()
	if requests != 3 || revalidated != 2 || notModified != 1 {
		t.Errorf("requests %d, revalidated %d, 304 %d, want 3, 2, 1 (the changed set comes in full)", requests, revalidated, notModified)
	}
	// Within MinInterval of that fetch, the new key is looked up locally.
	mustFind(t, r, added.ID)
	wantRequests(t, s, 3)
}

// When the server fails, the last good set stays in use, and failed
// attempts are rate-limited like successful ones.
func TestRemoteJWKSKeepsLastGoodSet(t *testing.T) {
	pub := publicKey(t, keys.RS256)
	s := newJWKSServer(t, pub)
	clk := newAtomicClock(t0)
	r := token.NewRemoteJWKS(s.url(), token.WithJWKSClock(clk.Now), token.WithJWKSMinInterval(time.Second))
	mustFind(t, r, pub.ID)

	s.set(func(s *jwksServer) { s.status = http.StatusInternalServerError })
	clk.Advance(time.Hour)
	mustFind(t, r, pub.ID) // the copy is stale and the fetch fails: keep it
	settle(t, r)
	wantRequests(t, s, 2)
	// Within MinInterval, Refresh fetches nothing and reports the last
	// attempt's error.
	if err := r.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("Refresh() within MinInterval error = %v, want the last attempt's 500", err)
	}
	for range 50 {
		mustFind(t, r, pub.ID)
	}
	wantRequests(t, s, 2)
	clk.Advance(time.Second)
	if err := r.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("Refresh() error = %v, want the 500", err)
	}
	wantRequests(t, s, 3)

	// Not even there any more: connection refused.
	s.Close()
	clk.Advance(time.Second)
	mustFind(t, r, pub.ID)
	if err := r.Refresh(context.Background()); err == nil {
		t.Error("Refresh() from a closed server error = nil")
	}
	// A kid that was never published still fails.
	if err := lookup(t, r, "made-up"); err == nil {
		t.Error("VerificationKey(made-up) error = nil")
	}
}

// Until a first fetch succeeds, every look-up fails, and a verifier using
// the source accepts nothing.
func TestRemoteJWKSFailsClosed(t *testing.T) {
	c := &clock{t0}
	ring := newKeyring(t, c)
	tok, _, err := issue.New(ring, issue.WithClock(c.Now)).Issue(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kid, _, _, _ := ring.SigningKey()

	broken := newJWKSServer(t)
	broken.status = http.StatusServiceUnavailable
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for name, url := range map[string]string{
		"503":                broken.url(),
		"connection refused": closed.URL + "/.well-known/jwks.json",
		"bad URL":            "http://[::1",
	} {
		t.Run(name, func(t *testing.T) {
			r := token.NewRemoteJWKS(url, token.WithJWKSClock(c.Now), token.WithJWKSMinInterval(time.Millisecond))
			if err := lookup(t, r, kid); err == nil {
				t.Fatal("VerificationKey() error = nil, want one")
			}
			claims, err := token.NewVerifier(r, token.WithClock(c.Now)).Verify(context.Background(), tok)
			if err == nil || claims != (token.Claims{}) {
				t.Fatalf("Verify() = %+v, %v, want no claims and an error", claims, err)
			}
		})
	}
}

func TestRemoteJWKSBadBodies(t *testing.T) {
	pub := publicKey(t, keys.ES256)
	const limit = 1 << 20
	body, err := issue.MarshalJWKS([]token.PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		padding int
		status  int
		wantErr string // "" means the key is found
	}{
		{"exactly 1 MiB", limit - len(body), 0, ""},
		{"1 MiB and a byte", limit - len(body) + 1, 0, "larger than"},
		{"10 MiB", 10 * limit, 0, "larger than"},
		{"404", 0, http.StatusNotFound, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newJWKSServer(t, pub)
			s.padding, s.status = tt.padding, tt.status
			r := token.NewRemoteJWKS(s.url())
			err := lookup(t, r, pub.ID)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("VerificationKey() error = %v, want the key", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("VerificationKey() error = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}

	// A set that is not a valid JWK Set is an error too, and does not
	// replace a good one.
	s := newJWKSServer(t, pub)
	clk := newAtomicClock(t0)
	r := token.NewRemoteJWKS(s.url(), token.WithJWKSClock(clk.Now), token.WithJWKSMinInterval(time.Second))
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh() error = %v", err)
	}
	s.set(func(s *jwksServer) {
		s.raw = []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"AAAA","d":"AAAA"}]}`)
	})
	clk.Advance(time.Hour)
	mustFind(t, r, pub.ID)
	settle(t, r)
	clk.Advance(time.Second)
	if err := r.Refresh(context.Background()); !errors.Is(err, token.ErrJWKS) {
		t.Errorf("Refresh() of a set with private members error = %v, want ErrJWKS", err)
	}
	mustFind(t, r, pub.ID)
	wantRequests(t, s, 3)
}

// Cache-Control decides how long a copy is fresh: max-age, or no time at
// all for no-store and no-cache (whatever else the header says), or
// DefaultMaxAge without one. A copy that is not fresh is fetched again at
// the next look-up, but never more often than MinInterval.
func TestRemoteJWKSCacheControl(t *testing.T) {
	tests := []struct {
		cacheControl string
		fresh        time.Duration // how long the copy is fresh
	}{
		{"max-age=30", 30 * time.Second},
		{"public, max-age=30", 30 * time.Second},
		{`max-age="30"`, 30 * time.Second},
		{"", 3 * time.Minute}, // DefaultMaxAge below
		{"max-age=-5", 3 * time.Minute},
		{"no-store", 0},
		{"no-cache", 0},
		{"max-age=600, no-store", 0},
		{"public, max-age=600, no-cache", 0},
		{"No-Store", 0},
		{"max-age=99999999999", 7 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.cacheControl, func(t *testing.T) {
			pub := publicKey(t, keys.EdDSA)
			s := newJWKSServer(t, pub)
			s.cacheControl = tt.cacheControl
			clk := newAtomicClock(t0)
			const minInterval = time.Second
			r := token.NewRemoteJWKS(s.url(), token.WithJWKSClock(clk.Now), token.WithJWKSMinInterval(minInterval), token.WithJWKSMaxAge(3*time.Minute))
			mustFind(t, r, pub.ID)
			mustFind(t, r, pub.ID) // MinInterval has not passed
			wantRequests(t, s, 1)
			if tt.fresh > minInterval {
				clk.Advance(tt.fresh - time.Millisecond)
				mustFind(t, r, pub.ID)
				wantRequests(t, s, 1)
				clk.Advance(time.Millisecond)
			} else {
				clk.Advance(minInterval)
			}
			mustFind(t, r, pub.ID)
			settle(t, r)
			wantRequests(t, s, 2)
		})
	}
}
