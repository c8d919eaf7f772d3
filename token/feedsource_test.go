package token_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

// feedClock is a settable clock safe for concurrent use.
type feedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *feedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *feedClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// feedServer is a revocation feed that answers like sessiond's, from a
// list it keeps in memory, with ways to misbehave.
type feedServer struct {
	t      *testing.T
	clock  *feedClock
	signer issue.SigningKeys
	url    string

	mu       sync.Mutex
	epoch    string
	seq      uint64
	entries  []feedEntry
	cutoffs  []feedCutoff
	freshFor time.Duration
	// serve, when set, replaces the answer.
	serve    func(since uint64) string
	requests []string // the query strings received
}

type feedEntry struct {
	id      uuid.UUID
	expires time.Time
	seq     uint64
}

// feedCutoff is a subject cutoff as the server holds it: by hash.
type feedCutoff struct {
	subject [32]byte
	at      time.Time
	expires time.Time
	seq     uint64
}

// cutOff records a cutoff of subject at at, until expires, with the next
// seq, as sessiond's store does (the latest write of a subject wins).
func (f *feedServer) cutOff(subject string, at, expires time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	h := token.SubjectHash(subject)
	f.cutoffs = slices.DeleteFunc(f.cutoffs, func(c feedCutoff) bool { return c.subject == h })
	f.cutoffs = append(f.cutoffs, feedCutoff{h, at, expires, f.seq})
}

func newFeedServer(t *testing.T, c *feedClock, s issue.SigningKeys) *feedServer {
	f := &feedServer{t: t, clock: c, signer: s, epoch: "epoch-1", freshFor: 5 * time.Minute}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/revocations"
	return f
}

func (f *feedServer) revoke(expires time.Time, ids ...uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.seq++
		f.entries = append(f.entries, feedEntry{id, expires, f.seq})
	}
}

// document signs the answer to since as sessiond would.
func (f *feedServer) document(since uint64, epoch string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	l := &token.RevocationList{
		Issuer: token.DefaultIssuer, IssuedAt: now, FreshUntil: now.Add(f.freshFor),
		Epoch: f.epoch, Seq: f.seq, Since: since,
	}
	if since == 0 || since > f.seq || epoch != "" && epoch != f.epoch {
		l.Snapshot, l.Since = true, 0
	}
	for _, e := range f.entries {
		if e.expires.After(now) && (l.Snapshot || e.seq > since) {
			l.Revoked = append(l.Revoked, token.Revoked{ID: e.id, Expires: e.expires})
		}
	}
	for _, c := range f.cutoffs {
		if c.expires.After(now) && (l.Snapshot || c.seq > since) {
			l.Cutoffs = append(l.Cutoffs, token.Cutoff{Subject: c.subject, At: c.at, Expires: c.expires})
		}
	}
	return feedSign(f.t, f.signer, l)
}

func (f *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.RawQuery)
	serve := f.serve
	f.mu.Unlock()
	if serve != nil {
		fmt.Fprint(w, serve(since))
		return
	}
	fmt.Fprint(w, f.document(since, r.URL.Query().Get("epoch")))
}

func (f *feedServer) lastRequest() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func (f *feedServer) setServe(fn func(since uint64) string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serve = fn
}

// feedFixture is a feed server and a RevocationFeed of it on a fake clock.
type feedFixture struct {
	clock  *feedClock
	signer feedSigner
	server *feedServer
	feed   *token.RevocationFeed
}

func newFeedFixture(t *testing.T, opts feedOptions) *feedFixture {
	t.Helper()
	c := &feedClock{now: feedT0}
	s := newFeedSigner(t, keys.EdDSA)
	srv := newFeedServer(t, c, s)
	opts.Now = c.Now
	return &feedFixture{clock: c, signer: s, server: srv, feed: newFeed(srv.url, feedJWKS(t, s), opts)}
}

func (x *feedFixture) sync(t *testing.T) {
	t.Helper()
	if err := x.feed.Sync(context.Background()); err != nil {
		t.Fatalf("Sync() = %v", err)
	}
}

// wantFeedRevoked fails unless IsRevoked(id) = want, nil.
func wantFeedRevoked(t *testing.T, rc token.RevocationChecker, id uuid.UUID, want bool) {
	t.Helper()
	got, err := rc.IsRevoked(context.Background(), id)
	if err != nil || got != want {
		t.Fatalf("IsRevoked(%s) = %v, %v; want %v, nil", id, got, err, want)
	}
}

func TestRevocationFeedSync(t *testing.T) {
	x := newFeedFixture(t, feedOptions{})
	ctx := context.Background()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	x.server.revoke(feedT0.Add(time.Hour), a, b)

	t.Run("nothing loaded", func(t *testing.T) {
		revoked, err := x.feed.IsRevoked(ctx, a)
		if !errors.Is(err, token.ErrStale) || !revoked {
			t.Fatalf("IsRevoked() before a sync = %v, %v; want true, ErrStale", revoked, err)
		}
		if errors.Is(err, token.ErrInvalid) {
			t.Errorf("ErrStale matches ErrInvalid; it must mean validity unknown")
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		x.sync(t)
		if q := x.server.lastRequest(); q != "" {
			t.Errorf("first sync asked %q, want the whole list (no query)", q)
		}
		wantFeedRevoked(t, x.feed, a, true)
		wantFeedRevoked(t, x.feed, b, true)
		wantFeedRevoked(t, x.feed, c, false)
		if st := x.feed.Status(); !st.Loaded || st.Seq != 2 || st.Len != 2 || st.Epoch != "epoch-1" || st.LastErr != nil {
			t.Errorf("Status() = %+v", st)
		}
	})
	t.Run("delta", func(t *testing.T) {
		x.server.revoke(feedT0.Add(time.Hour), c)
		x.clock.Add(10 * time.Second)
		x.sync(t)
		if q := x.server.lastRequest(); q != "epoch=epoch-1&since=2" {
			t.Errorf("sync asked %q, want the changes since 2", q)
		}
		wantFeedRevoked(t, x.feed, c, true)
		wantFeedRevoked(t, x.feed, a, true)
		if st := x.feed.Status(); st.Seq != 3 || st.Len != 3 || !st.FreshUntil.Equal(x.clock.Now().Add(5*time.Minute)) {
			t.Errorf("Status() = %+v", st)
		}
	})
	t.Run("verifier", func(t *testing.T) {
		tok, claims, err := issue.New(x.signer, issue.WithClock(x.clock.Now)).Issue(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		v := token.NewVerifier(feedJWKS(t, x.signer), token.WithClock(x.clock.Now), token.WithRevocation(x.feed))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("Verify() = %v", err)
		}
		x.server.revoke(claims.Expires, claims.ID)
		x.sync(t)
		if _, err := v.Verify(ctx, tok); !errors.Is(err, token.ErrRevoked) {
			t.Fatalf("Verify() after revocation = %v, want %v", err, token.ErrRevoked)
		}
	})
}

// A document that fails verification is refused and the list kept.
func TestRevocationFeedRefuses(t *testing.T) {
	x := newFeedFixture(t, feedOptions{})
	a := uuid.New()
	x.server.revoke(feedT0.Add(time.Hour), a)
	x.sync(t)
	stranger := newFeedSigner(t, keys.EdDSA)
	sessionToken, _, _ := issue.New(x.signer, issue.WithClock(x.clock.Now)).Issue(time.Hour)
	before := x.feed.Status()

	tests := []struct {
		name string
		doc  func(since uint64) string
		want error
	}{
		{"tampered", func(since uint64) string {
			doc := x.server.document(since, "")
			parts := strings.Split(doc, ".")
			return parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
		}, token.ErrSignature},
		{"forged by another key", func(since uint64) string {
			l := &token.RevocationList{Issuer: "sessiond", IssuedAt: x.clock.Now(), FreshUntil: x.clock.Now().Add(time.Hour), Epoch: "epoch-1", Seq: 99, Snapshot: true}
			return feedSign(t, stranger, l)
		}, token.ErrUnknownKey},
		{"session token", func(uint64) string { return sessionToken }, token.ErrType},
		{"not fresh", func(since uint64) string {
			l := &token.RevocationList{Issuer: "sessiond", IssuedAt: feedT0.Add(-time.Hour), FreshUntil: feedT0.Add(-time.Minute), Epoch: "epoch-1", Seq: 99, Snapshot: true}
			return feedSign(t, x.signer, l)
		}, token.ErrExpired},
		{"older delta", func(uint64) string {
			l := &token.RevocationList{Issuer: "sessiond", IssuedAt: x.clock.Now(), FreshUntil: x.clock.Now().Add(time.Hour), Epoch: "epoch-1", Seq: 0}
			return feedSign(t, x.signer, l)
		}, token.ErrOutdated},
		{"older snapshot", func(uint64) string {
			l := &token.RevocationList{Issuer: "sessiond", IssuedAt: x.clock.Now(), FreshUntil: x.clock.Now().Add(time.Hour), Epoch: "epoch-1", Seq: 0, Snapshot: true}
			return feedSign(t, x.signer, l)
		}, token.ErrOutdated},
		{"garbage", func(uint64) string { return "<html>proxy error</html>" }, token.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x.server.setServe(tt.doc)
			defer x.server.setServe(nil)
			err := x.feed.Sync(context.Background())
			if !errors.Is(err, tt.want) || !errors.Is(err, token.ErrFeed) {
				t.Fatalf("Sync() = %v, want an error matching %v and ErrFeed", err, tt.want)
			}
			wantFeedRevoked(t, x.feed, a, true)
			st := x.feed.Status()
			if st.Seq != before.Seq || st.Epoch != before.Epoch || st.Len != before.Len || !st.FreshUntil.Equal(before.FreshUntil) {
				t.Errorf("Status() after a refused document = %+v, want the list as before, %+v", st, before)
			}
			if !errors.Is(st.LastErr, tt.want) {
				t.Errorf("Status().LastErr = %v, want %v", st.LastErr, tt.want)
			}
		})
	}
	t.Run("HTTP error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		f := token.NewVerifier(feedJWKS(t, x.signer), token.WithClock(x.clock.Now), token.WithFeed(srv.URL)).Feed()
		if err := f.Sync(context.Background()); err == nil || errors.Is(err, token.ErrFeed) {
			t.Errorf("Sync() of a 404 = %v, want a non-feed error", err)
		}
	})
}

func TestRevocationFeedStale(t *testing.T) {
	ctx := context.Background()
	a, b := uuid.New(), uuid.New()
	tests := []struct {
		name      string
		opts      feedOptions
		staleFrom time.Duration // after the sync at feedT0
		wantStale bool          // IsRevoked fails once stale
	}{
		{"fail closed at fresh_until", feedOptions{}, 5 * time.Minute, true},
		{"max staleness sooner", feedOptions{MaxStaleness: time.Minute}, time.Minute, true},
		{"max staleness later changes nothing", feedOptions{MaxStaleness: time.Hour}, 5 * time.Minute, true},
		{"serve stale", feedOptions{ServeStale: true}, 5 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newFeedFixture(t, tt.opts)
			x.server.revoke(feedT0.Add(24*time.Hour), a)
			x.sync(t)
			if st := x.feed.Status(); !st.FreshUntil.Equal(feedT0.Add(tt.staleFrom)) {
				t.Errorf("FreshUntil = %v, want %v", st.FreshUntil, feedT0.Add(tt.staleFrom))
			}
			x.clock.Add(tt.staleFrom - time.Second)
			wantFeedRevoked(t, x.feed, a, true)
			wantFeedRevoked(t, x.feed, b, false)

			// The server goes away; the list goes stale.
			x.server.setServe(func(uint64) string { return "" })
			if err := x.feed.Sync(ctx); err == nil {
				t.Fatal("Sync() of an empty answer succeeded")
			}
			x.clock.Add(time.Second)
			for _, id := range []uuid.UUID{a, b} {
				revoked, err := x.feed.IsRevoked(ctx, id)
				switch {
				case tt.wantStale && (!errors.Is(err, token.ErrStale) || !revoked):
					t.Errorf("IsRevoked(%s) when stale = %v, %v; want true, ErrStale", id, revoked, err)
				case !tt.wantStale && (err != nil || revoked != (id == a)):
					t.Errorf("IsRevoked(%s) when stale = %v, %v; want the last list's answer", id, revoked, err)
				}
				if err != nil && !strings.Contains(err.Error(), "last sync") {
					t.Errorf("ErrStale does not say why the sync failed: %v", err)
				}
			}

			// Back: fresh again.
			x.server.setServe(nil)
			x.sync(t)
			wantFeedRevoked(t, x.feed, a, true)
			wantFeedRevoked(t, x.feed, b, false)
		})
	}
}

// A new epoch (the server's store replaced) replaces the list, even when
// the new list's seq is lower.
func TestRevocationFeedEpoch(t *testing.T) {
	x := newFeedFixture(t, feedOptions{})
	old, fresh := uuid.New(), uuid.New()
	x.server.revoke(feedT0.Add(time.Hour), old, uuid.New(), uuid.New())
	x.sync(t)

	x.server.mu.Lock()
	x.server.epoch, x.server.seq, x.server.entries = "epoch-2", 0, nil
	x.server.mu.Unlock()
	x.server.revoke(feedT0.Add(time.Hour), fresh)
	x.sync(t)
	if q := x.server.lastRequest(); q != "epoch=epoch-1&since=3" {
		t.Errorf("sync asked %q", q)
	}
	wantFeedRevoked(t, x.feed, old, false)
	wantFeedRevoked(t, x.feed, fresh, true)
	if st := x.feed.Status(); st.Epoch != "epoch-2" || st.Seq != 1 || st.Len != 1 {
		t.Errorf("Status() = %+v, want epoch-2 at seq 1 with 1 id", st)
	}

	t.Run("a delta of another epoch fetches the snapshot", func(t *testing.T) {
		// A server that ignores epoch= answers a delta of its own epoch.
		x.server.mu.Lock()
		x.server.epoch = "epoch-3"
		x.server.mu.Unlock()
		x.server.setServe(func(since uint64) string { return x.server.document(since, "") })
		defer x.server.setServe(nil)
		x.sync(t)
		if q := x.server.lastRequest(); q != "" {
			t.Errorf("after a delta of another epoch the sync asked %q, want the whole list", q)
		}
		if st := x.feed.Status(); st.Epoch != "epoch-3" {
			t.Errorf("Status().Epoch = %q, want epoch-3", st.Epoch)
		}
	})
}

// Ids leave memory once their tokens have expired.
func TestRevocationFeedExpiry(t *testing.T) {
	x := newFeedFixture(t, feedOptions{})
	short, long := uuid.New(), uuid.New()
	x.server.revoke(feedT0.Add(time.Minute), short)
	x.server.revoke(feedT0.Add(time.Hour), long)
	x.sync(t)
	if st := x.feed.Status(); st.Len != 2 {
		t.Fatalf("Len = %d, want 2", st.Len)
	}
	x.clock.Add(time.Minute)
	wantFeedRevoked(t, x.feed, short, false) // expired: its token is refused by exp
	x.sync(t)
	if st := x.feed.Status(); st.Len != 1 {
		t.Errorf("Len after expiry = %d, want 1", st.Len)
	}
	wantFeedRevoked(t, x.feed, long, true)
}

func TestRevocationFeedFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "revocations.jws")
	x := newFeedFixture(t, feedOptions{File: path})
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	x.server.revoke(feedT0.Add(time.Hour), a)
	x.sync(t) // snapshot
	x.server.revoke(feedT0.Add(time.Hour), b)
	x.sync(t) // delta
	x.sync(t) // empty delta
	x.clock.Add(time.Second)
	x.sync(t) // empty delta, in place of the last
	lines := strings.Split(strings.TrimSpace(readFile(t, path)), "\n")
	if len(lines) != 3 {
		t.Fatalf("file has %d documents, want 3 (snapshot, delta, one empty delta)", len(lines))
	}

	load := func(t *testing.T, opts feedOptions) (*token.RevocationFeed, error) {
		t.Helper()
		opts.Now = x.clock.Now
		f := newFeed("", feedJWKS(t, x.signer), opts)
		return f, f.Load(ctx, path)
	}
	t.Run("load", func(t *testing.T) {
		f, err := load(t, feedOptions{})
		if err != nil {
			t.Fatalf("Load() = %v", err)
		}
		wantFeedRevoked(t, f, a, true)
		wantFeedRevoked(t, f, b, true)
		wantFeedRevoked(t, f, c, false)
		if got, want := f.Status(), x.feed.Status(); got.Seq != want.Seq || !got.FreshUntil.Equal(want.FreshUntil) {
			t.Errorf("loaded Status() = %+v, want as saved: %+v", got, want)
		}
	})
	t.Run("stale file", func(t *testing.T) {
		x.clock.Add(10 * time.Minute) // past fresh_until, not past the ids' expiry
		defer x.clock.Add(-10 * time.Minute)
		f, err := load(t, feedOptions{})
		if err != nil {
			t.Fatalf("Load() of a stale file = %v", err)
		}
		if _, err := f.IsRevoked(ctx, c); !errors.Is(err, token.ErrStale) {
			t.Errorf("IsRevoked() from a stale file = %v, want ErrStale", err)
		}
		f, _ = load(t, feedOptions{ServeStale: true})
		wantFeedRevoked(t, f, b, true)
	})
	t.Run("tampered file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.jws")
		tampered := lines[0] + "\n" + lines[1][:len(lines[1])-4] + "AAAA\n" + lines[2] + "\n"
		if err := os.WriteFile(bad, []byte(tampered), 0o644); err != nil {
			t.Fatal(err)
		}
		f := token.NewVerifier(feedJWKS(t, x.signer), token.WithClock(x.clock.Now), token.WithFeed("")).Feed()
		err := f.Load(ctx, bad)
		if !errors.Is(err, token.ErrSignature) || !strings.Contains(err.Error(), "document 2") {
			t.Fatalf("Load(tampered) = %v, want ErrSignature in document 2", err)
		}
		wantFeedRevoked(t, f, a, true) // the snapshot before it stays
		wantFeedRevoked(t, f, b, false)
	})
	t.Run("run starts from the file", func(t *testing.T) {
		x.server.revoke(feedT0.Add(time.Hour), c)
		opts := feedOptions{File: path, Now: x.clock.Now, Interval: time.Hour}
		f := newFeed(x.server.url, feedJWKS(t, x.signer), opts)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { f.Run(runCtx); close(done) }()
		deadline := time.Now().Add(5 * time.Second)
		for f.Status().LastSync.IsZero() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
		if q := x.server.lastRequest(); q != "epoch=epoch-1&since=2" {
			t.Errorf("first sync after loading the file asked %q, want the changes since 2", q)
		}
		wantFeedRevoked(t, f, c, true)
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// BenchmarkRevocationFeedIsRevoked looks ids up in a list of a million:
// hits and misses, each over a million different ids so that the map is
// as cold in the CPU caches as it is for real traffic.
func BenchmarkRevocationFeedIsRevoked(b *testing.B) {
	s := newFeedSigner(b, keys.EdDSA)
	l := feedList(1_000_000, time.Now())
	ids := make([]uuid.UUID, len(l.Revoked))
	for i, r := range l.Revoked {
		ids[i] = r.ID
	}
	path := filepath.Join(b.TempDir(), "list.jws")
	if err := os.WriteFile(path, []byte(feedSign(b, s, l)), 0o644); err != nil {
		b.Fatal(err)
	}
	f := token.NewVerifier(feedJWKS(b, s), token.WithFeed("")).Feed()
	if err := f.Load(context.Background(), path); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("hit", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if ok, err := f.IsRevoked(ctx, ids[i%len(ids)]); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		misses := make([]uuid.UUID, len(ids)) // as many, so as cold as the hits
		for i := range misses {
			misses[i] = uuid.New()
		}
		for i := 0; b.Loop(); i++ {
			if ok, err := f.IsRevoked(ctx, misses[i%len(misses)]); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := f.IsRevoked(ctx, ids[i%len(ids)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// A snapshot at the seq of the list held but issued before the document
// that brought the list there (a server's shared snapshot) is no news: it
// is accepted, and the list stays as fresh as it was.
func TestRevocationFeedSharedOlderSnapshot(t *testing.T) {
	x := newFeedFixture(t, feedOptions{})
	a := uuid.New()
	x.server.revoke(feedT0.Add(time.Hour), a)
	shared := x.server.document(0, "")
	x.clock.Add(time.Minute)
	x.sync(t)
	before := x.feed.Status()
	x.server.setServe(func(uint64) string { return shared })
	defer x.server.setServe(nil)
	if err := x.feed.Sync(context.Background()); err != nil {
		t.Fatalf("Sync(shared older snapshot at the same seq) = %v, want nil", err)
	}
	wantFeedRevoked(t, x.feed, a, true)
	if st := x.feed.Status(); st.Seq != before.Seq || !st.IssuedAt.Equal(before.IssuedAt) || !st.FreshUntil.Equal(before.FreshUntil) {
		t.Errorf("Status() = %+v, want seq, iat and fresh-until as before: %+v", st, before)
	}
}

// A verifier with a feed allows itself no more leeway on exp than the feed
// retains ids for: past exp + retain a token is expired, whatever the
// leeway; a document without "retain" means 0.
func TestRevocationFeedRetention(t *testing.T) {
	ctx := context.Background()
	x := newFeedFixture(t, feedOptions{})
	tok, c, err := issue.New(x.signer, issue.WithClock(x.clock.Now)).Issue(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	x.clock.Add(time.Hour + 10*time.Minute) // 10 minutes past exp
	now := x.clock.Now()
	doc := func(retain time.Duration) string {
		return feedSign(t, x.signer, &token.RevocationList{
			Issuer: "sessiond", IssuedAt: now, FreshUntil: now.Add(time.Minute), Epoch: "e", Seq: 1, Snapshot: true, Retain: retain,
		})
	}
	noMember := feedCraft(t, x.signer, nil, feedWith(feedClaims(), "iat", now.Unix(), "fresh_until", now.Add(time.Minute).Unix()))
	tests := []struct {
		name string
		doc  string
		want error // of Verify with a leeway of an hour
	}{
		{"retain 0", doc(0), token.ErrExpired},
		{"retain 5m", doc(5 * time.Minute), token.ErrExpired},
		{"retain 30m", doc(30 * time.Minute), nil},
		{"retain 2h, leeway 1h", doc(2 * time.Hour), nil},
		{"no retain member", noMember, token.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x.server.setServe(func(uint64) string { return tt.doc })
			defer x.server.setServe(nil)
			feed := token.NewVerifier(feedJWKS(t, x.signer), token.WithClock(x.clock.Now), token.WithFeed(x.server.url)).Feed()
			if err := feed.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			v := token.NewVerifier(feedJWKS(t, x.signer), token.WithClock(x.clock.Now), token.WithLeeway(time.Hour), token.WithRevocation(feed))
			got, err := v.Verify(ctx, tok)
			if !errors.Is(err, tt.want) || tt.want == nil && got.ID != c.ID {
				t.Errorf("Verify(10 minutes past exp, leeway 1h) = %v, %v; want %v", got.ID, err, tt.want)
			}
			if tt.want != nil && !errors.Is(err, token.ErrInvalid) {
				t.Errorf("Verify() error = %v, want it to match ErrInvalid", err)
			}
		})
	}
}

// Until the first sync has ended, IsRevoked waits for it, bounded by its
// context; a feed that nobody syncs answers ErrStale after a short grace
// rather than hold a verifier up.
func TestRevocationFeedColdStart(t *testing.T) {
	a := uuid.New()
	t.Run("waits for the first sync", func(t *testing.T) {
		x := newFeedFixture(t, feedOptions{})
		x.server.revoke(feedT0.Add(time.Hour), a)
		release := make(chan struct{})
		x.server.setServe(func(since uint64) string {
			<-release // the first sync hangs until released
			return x.server.document(since, "")
		})
		synced := make(chan error, 1)
		go func() { synced <- x.feed.Sync(context.Background()) }()
		answered := make(chan error, 1)
		go func() {
			revoked, err := x.feed.IsRevoked(context.Background(), a)
			if err == nil && !revoked {
				err = errors.New("not revoked")
			}
			answered <- err
		}()
		time.Sleep(50 * time.Millisecond) // let IsRevoked wait, most of the time
		close(release)
		if err := <-answered; err != nil {
			t.Errorf("IsRevoked() during the first sync = %v, want true, nil once it has ended", err)
		}
		if err := <-synced; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bounded by the context", func(t *testing.T) {
		x := newFeedFixture(t, feedOptions{})
		release := make(chan struct{})
		defer close(release)
		x.server.setServe(func(since uint64) string { <-release; return "" })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go x.feed.Sync(ctx)
		feedEventually(t, func() bool { return len(x.server.requestsSoFar()) > 0 })
		waitCtx, stop := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer stop()
		if revoked, err := x.feed.IsRevoked(waitCtx, a); !revoked || !errors.Is(err, token.ErrStale) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("IsRevoked(ctx that ends) during the first sync = %v, %v; want true, ErrStale and DeadlineExceeded", revoked, err)
		}
	})
	t.Run("nobody syncs", func(t *testing.T) {
		x := newFeedFixture(t, feedOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if revoked, err := x.feed.IsRevoked(ctx, a); !revoked || !errors.Is(err, token.ErrStale) || ctx.Err() != nil {
			t.Errorf("IsRevoked() of a feed never synced = %v, %v; want true and ErrStale, before the context ends", revoked, err)
		}
	})
}

// feedEventually polls cond for up to ten seconds.
func feedEventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

func (f *feedServer) requestsSoFar() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// feedOptions are the settings of a test feed: those of the Verifier that
// owns it (Now, Leeway) and the feed's own.
type feedOptions struct {
	Client       *http.Client
	Interval     time.Duration
	MaxStaleness time.Duration
	ServeStale   bool
	File         string
	Leeway       time.Duration
	MaxSize      int64
	Now          func() time.Time
}

// newFeed returns the feed of a Verifier over keys configured by o.
func newFeed(url string, keys token.KeySource, o feedOptions) *token.RevocationFeed {
	vopts := []token.Option{token.WithLeeway(o.Leeway)}
	if o.Now != nil {
		vopts = append(vopts, token.WithClock(o.Now))
	}
	var fopts []token.FeedOption
	if o.Client != nil {
		fopts = append(fopts, token.WithFeedClient(o.Client))
	}
	if o.Interval != 0 {
		fopts = append(fopts, token.WithFeedInterval(o.Interval))
	}
	if o.MaxStaleness != 0 {
		fopts = append(fopts, token.WithMaxStaleness(o.MaxStaleness))
	}
	if o.ServeStale {
		fopts = append(fopts, token.WithServeStale())
	}
	if o.File != "" {
		fopts = append(fopts, token.WithFeedFile(o.File))
	}
	if o.MaxSize != 0 {
		fopts = append(fopts, token.WithFeedMaxSize(o.MaxSize))
	}
	return token.NewVerifier(keys, append(vopts, token.WithFeed(url, fopts...))...).Feed()
}
