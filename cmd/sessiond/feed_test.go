package main

import (
	"context"
	"crypto"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

// feedProxy stands between offline verifiers and the server, and can
// tamper with revocation documents on the way, as a network feedAttacker
// could. It follows the server across restarts.
type feedProxy struct {
	url string

	mu       sync.Mutex
	upstream string              // the server's base URL
	rewrite  func(string) string // applied to /revocations bodies when set
	queries  []string            // of /revocations requests
}

func newFeedProxy(t *testing.T, upstream string) *feedProxy {
	p := &feedProxy{upstream: upstream}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *feedProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	upstream, rewrite := p.upstream, p.rewrite
	if r.URL.Path == "/revocations" {
		p.queries = append(p.queries, r.URL.RawQuery)
	}
	p.mu.Unlock()
	resp, err := http.Get(upstream + r.URL.RequestURI())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if r.URL.Path == "/revocations" && rewrite != nil {
		body = []byte(rewrite(string(body)))
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

func (p *feedProxy) set(upstream string, rewrite func(string) string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if upstream != "" {
		p.upstream = upstream
	}
	p.rewrite = rewrite
}

func (p *feedProxy) lastQuery() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queries[len(p.queries)-1]
}

// waitFor polls cond until it holds or timeout passes.
func feedWait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// feedAttacker is a signing key the server does not know.
type feedAttacker struct{ key *keys.Key }

func (a feedAttacker) SigningKey() (string, string, crypto.Signer, error) {
	return a.key.ID, string(a.key.Algorithm), a.key.Signer(), nil
}

// The server and an offline verifier side by side: the verifier follows
// GET /revocations through a proxy that can tamper with it.
func TestRevocationFeedEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := dataDir(t)
	// fresh-for 4s: the server rebuilds a snapshot at least every second.
	serverArgs := []string{"--revocations-fresh-for", "4s"}
	p := startInProcess(t, dir, serverArgs...)
	proxy := newFeedProxy(t, strings.TrimSuffix(p.url, "/"))

	const interval = 200 * time.Millisecond
	jwks := token.NewRemoteJWKS(proxy.url + "/.well-known/jwks.json")
	file := filepath.Join(t.TempDir(), "revocations.jws")
	verifier := token.NewVerifier(jwks, token.WithFeed(proxy.url+"/revocations", token.WithFeedInterval(interval), token.WithFeedFile(file)))
	feed := verifier.Feed()
	runCtx, stopFeed := context.WithCancel(ctx)
	fed := make(chan struct{})
	go func() { feed.Run(runCtx); close(fed) }()
	t.Cleanup(func() { stopFeed(); <-fed })
	noRevocation := token.NewVerifier(jwks)
	feedWait(t, 10*time.Second, "the first sync", func() bool { return feed.Status().Loaded })

	open := func() (string, token.Claims) {
		t.Helper()
		res, err := p.client.OpenSession(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := noRevocation.Verify(ctx, res.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		return res.AccessToken, c
	}
	closeSession := func(tok string) {
		t.Helper()
		if err := p.client.CloseSession(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	verifies := func(tok string) bool {
		t.Helper()
		_, err := verifier.Verify(ctx, tok)
		if err != nil && !errors.Is(err, token.ErrRevoked) {
			t.Fatalf("offline Verify() = %v, want nil or ErrRevoked", err)
		}
		return err == nil
	}
	a, _ := open()
	b, _ := open()
	if !verifies(a) || !verifies(b) {
		t.Fatal("open sessions do not verify offline")
	}

	t.Run("closed session refused within a sync interval", func(t *testing.T) {
		closed := time.Now()
		closeSession(a)
		feedWait(t, interval+2*time.Second, "the offline verifier to refuse the closed session", func() bool { return !verifies(a) })
		t.Logf("refused offline %v after close_session returned (sync interval %v)", time.Since(closed).Round(time.Millisecond), interval)
		if !verifies(b) {
			t.Error("the other session stopped verifying")
		}
		// Whatever the timing: one sync after close_session returns is enough.
		c, _ := open()
		closeSession(c)
		if err := feed.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if verifies(c) {
			t.Error("a session closed before a sync verifies after it")
		}
	})

	t.Run("forged and tampered documents are refused", func(t *testing.T) {
		evil, err := keys.Generate(keys.EdDSA, 0, time.Now(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		sessionToken, _ := open()
		before := feed.Status()
		tests := []struct {
			name    string
			rewrite func(string) string
			want    error
		}{
			{"tampered signature", func(doc string) string {
				i := strings.LastIndexByte(doc, '.')
				return doc[:i+1] + strings.Repeat("A", len(doc)-i-1)
			}, token.ErrSignature},
			{"forged: an empty list signed by another key", func(string) string {
				now := time.Now()
				doc, err := issue.SignRevocations(feedAttacker{evil}, &token.RevocationList{
					Issuer: "sessiond", IssuedAt: now, FreshUntil: now.Add(time.Hour),
					Epoch: before.Epoch, Seq: before.Seq + 1000, Snapshot: true,
				})
				if err != nil {
					t.Error(err)
				}
				return string(doc)
			}, token.ErrUnknownKey},
			{"a session token instead", func(string) string { return sessionToken }, token.ErrType},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				proxy.set("", tt.rewrite)
				defer proxy.set("", nil)
				// A revocation the tampered feed would carry.
				c, _ := open()
				closeSession(c)
				feedWait(t, 10*time.Second, "a refused sync", func() bool { return errors.Is(feed.Status().LastErr, tt.want) })
				st := feed.Status()
				if !errors.Is(st.LastErr, token.ErrFeed) || st.Seq != before.Seq || st.Epoch != before.Epoch {
					t.Errorf("Status() = %+v, want the list at seq %d kept and a refused document", st, before.Seq)
				}
				if verifies(a) {
					t.Error("a closed session verifies after a refused document: the old list was not kept")
				}
				proxy.set("", nil)
				feedWait(t, 10*time.Second, "the genuine feed again", func() bool { return !verifies(c) })
				before = feed.Status()
			})
		}
	})

	// The restart happens here, not in the subtest, whose end would stop
	// the new process.
	before := feed.Status()
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	p = startInProcess(t, dir, serverArgs...)
	proxy.set(strings.TrimSuffix(p.url, "/"), nil)
	t.Run("restart keeps sequence numbers", func(t *testing.T) {

		// Asked directly: the changes since the last seq are none.
		resp, err := http.Get(strings.TrimSuffix(p.url, "/") + "/revocations?since=" + strconv.FormatUint(before.Seq, 10) + "&epoch=" + before.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		l, err := token.NewVerifier(jwks).ParseRevocations(ctx, string(body))
		if err != nil {
			t.Fatal(err)
		}
		if l.Snapshot || l.Seq != before.Seq || l.Epoch != before.Epoch || len(l.Revoked) != 0 {
			t.Fatalf("after restart GET ?since=%d = seq %d, epoch %q, snapshot %v, %d ids; want an empty delta at the same seq and epoch",
				before.Seq, l.Seq, l.Epoch, l.Snapshot, len(l.Revoked))
		}
		synced := time.Now()
		feedWait(t, 10*time.Second, "a sync with the restarted server", func() bool { return feed.Status().LastSync.After(synced) })
		if q := proxy.lastQuery(); !strings.Contains(q, "since="+strconv.FormatUint(before.Seq, 10)) {
			t.Errorf("the verifier asked %q after the restart, want the changes since %d", q, before.Seq)
		}
		if st := feed.Status(); st.Seq != before.Seq || st.Epoch != before.Epoch || st.Len != before.Len {
			t.Errorf("after restart Status() = %+v, want seq %d, epoch %q, %d ids as before", st, before.Seq, before.Epoch, before.Len)
		}
		c, _ := open()
		closeSession(c)
		feedWait(t, 10*time.Second, "a revocation after the restart", func() bool { return !verifies(c) })
		if st := feed.Status(); st.Seq != before.Seq+1 {
			t.Errorf("first revocation after restart has seq %d, want %d", st.Seq, before.Seq+1)
		}
		if verifies(a) {
			t.Error("a session closed before the restart verifies")
		}
	})

	t.Run("the command line", func(t *testing.T) {
		bin, _ := binary()
		base := strings.TrimSuffix(p.url, "/")
		run := func(args ...string) (int, string) {
			out, err := exec.Command(bin, append([]string{"verify", "--jwks", base + "/.well-known/jwks.json"}, args...)...).CombinedOutput()
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return exit.ExitCode(), string(out)
			}
			if err != nil {
				t.Fatal(err)
			}
			return 0, string(out)
		}
		for _, src := range []string{base + "/revocations", file} {
			if code, out := run("--revocations", src, a); code != 1 || !strings.Contains(out, "revoked") {
				t.Errorf("verify --revocations %s CLOSED = exit %d %q, want exit 1 saying revoked", src, code, out)
			}
		}
		if code, out := run("--revocations", base+"/revocations", b); code != 0 {
			t.Errorf("verify --revocations URL OPEN = exit %d %q, want 0", code, out)
		}
		if code, out := run(a); code != 0 {
			t.Errorf("verify without --revocations = exit %d %q, want 0 (offline, a closed session still verifies)", code, out)
		}
	})

	t.Run("expired ids leave the feed and the verifier", func(t *testing.T) {
		// iat is truncated to the second, so a session of n seconds may
		// have little more than n-1 left: 3 leaves room to close it and
		// see it in the verifier's list before it expires.
		res, err := p.client.OpenSession(ctx, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c, err := noRevocation.Verify(ctx, res.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		closeSession(res.AccessToken)
		feedWait(t, 5*time.Second, "the short session in the verifier's list", func() bool {
			revoked, _ := feed.IsRevoked(ctx, c.ID)
			return revoked
		})
		withIt := feed.Status()
		time.Sleep(time.Until(c.Expires.Add(time.Second)))
		feedWait(t, 5*time.Second, "the expired id to leave the verifier's memory", func() bool { return feed.Status().Len == withIt.Len-1 })
		if revoked, err := feed.IsRevoked(ctx, c.ID); revoked || err != nil {
			t.Errorf("IsRevoked(expired) = %v, %v; want false", revoked, err)
		}
		feedWait(t, 5*time.Second, "the expired id to leave the snapshot", func() bool {
			resp, err := http.Get(strings.TrimSuffix(p.url, "/") + "/revocations")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			l, err := token.NewVerifier(jwks).ParseRevocations(ctx, string(body))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range l.Revoked {
				if r.ID == c.ID {
					return false
				}
			}
			return len(l.Revoked) == withIt.Len-1
		})
	})
	if _, err := os.Stat(file); err != nil {
		t.Errorf("the verifier did not save its list: %v", err)
	}
}

// deadJWKS is a loopback JWKS URL where nothing listens.
func deadJWKS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/.well-known/jwks.json"
	ln.Close()
	return url
}

// runVerify runs `sessiond verify ARGS` and returns its exit status and
// output.
func runVerify(t *testing.T, args ...string) (int, string) {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, append([]string{"verify"}, args...)...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// `sessiond verify --jwks DOWN --revocations FILE` says that validity is
// unknown because the keys cannot be had, and how to fix it; it used to
// panic.
func TestVerifyRevocationsKeysUnavailable(t *testing.T) {
	signer, err := keys.Generate(keys.EdDSA, 0, time.Now(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	doc, err := issue.SignRevocations(feedAttacker{signer}, &token.RevocationList{
		Issuer: "sessiond", IssuedAt: now, FreshUntil: now.Add(time.Hour), Epoch: "e", Seq: 1, Snapshot: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "revocations.jws")
	if err := os.WriteFile(file, append(doc, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	jwks := deadJWKS(t)
	code, out := runVerify(t, "--jwks", jwks, "--revocations", file, "some.token.here")
	if code != 3 || strings.Contains(out, "panic") || !strings.Contains(out, "unavailable") || !strings.Contains(out, "--jwks") {
		t.Errorf("verify --jwks DOWN --revocations FILE = exit %d %q, want exit 3 (could not decide) saying the keys are unavailable and naming --jwks", code, out)
	}
}

// A man in the middle who saved an older snapshot and answers the
// verifier's next ?since= request with it gets it refused (ErrOutdated):
// the verifier keeps its copy, and the session closed since stays refused.
func TestRevocationFeedReplayedSnapshot(t *testing.T) {
	ctx := context.Background()
	// Fresh for an hour: the saved snapshot is still fresh when replayed,
	// so only its age can have it refused.
	p := startInProcess(t, dataDir(t), "--revocations-fresh-for", "1h")
	proxy := newFeedProxy(t, strings.TrimSuffix(p.url, "/"))
	jwks := token.NewRemoteJWKS(proxy.url + "/.well-known/jwks.json")
	file := filepath.Join(t.TempDir(), "revocations.jws")
	verifier := token.NewVerifier(jwks, token.WithFeed(proxy.url+"/revocations", token.WithFeedFile(file)))
	feed := verifier.Feed()

	res, err := p.client.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok := res.AccessToken
	if err := feed.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// The attacker saves the snapshot in which the session is open.
	resp, err := http.Get(proxy.url + "/revocations")
	if err != nil {
		t.Fatal(err)
	}
	saved, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := verifier.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify(open session) = %v, want nil", err)
	}

	if err := p.client.CloseSession(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Another write, so that the saved snapshot is two writes behind.
	other, err := p.client.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.client.CloseSession(ctx, other.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := feed.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	held := feed.Status()
	if _, err := verifier.Verify(ctx, tok); !errors.Is(err, token.ErrRevoked) {
		t.Fatalf("Verify(closed session) = %v, want ErrRevoked", err)
	}
	fileBefore, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	proxy.set("", func(string) string { return string(saved) })
	err = feed.Sync(ctx)
	if q := proxy.lastQuery(); !strings.Contains(q, "since=") {
		t.Fatalf("the verifier asked %q, want a ?since= request", q)
	}
	if !errors.Is(err, token.ErrOutdated) || !errors.Is(err, token.ErrFeed) {
		t.Errorf("Sync(replayed older snapshot) = %v, want ErrOutdated and ErrFeed", err)
	}
	if st := feed.Status(); st.Seq != held.Seq || st.Epoch != held.Epoch || st.Len != held.Len || !st.FreshUntil.Equal(held.FreshUntil) {
		t.Errorf("Status() after the replay = %+v, want the copy kept: %+v", st, held)
	}
	if _, err := verifier.Verify(ctx, tok); !errors.Is(err, token.ErrRevoked) {
		t.Errorf("Verify(closed session) after the replay = %v, want ErrRevoked", err)
	}
	if fileAfter, err := os.ReadFile(file); err != nil || string(fileAfter) != string(fileBefore) {
		t.Errorf("the saved file changed after the replay (err %v)", err)
	}

	proxy.set("", nil)
	if err := feed.Sync(ctx); err != nil {
		t.Errorf("Sync(genuine feed) after the replay = %v, want nil", err)
	}
}

// No --leeway on an offline verifier makes a closed session verify once
// the server has let its entry go: the feed states how long it keeps ids
// ("retain"), and a verifier that uses it refuses a token past exp +
// retain as expired, whatever its own leeway.
func TestRevocationFeedLeewayBeyondRetention(t *testing.T) {
	ctx := context.Background()
	p := startInProcess(t, dataDir(t)) // --leeway 0: entries are kept until exp
	base := strings.TrimSuffix(p.url, "/")
	// iat is truncated to the second: a session of 3 s has 2 to 3 left.
	res, err := p.client.OpenSession(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tok := res.AccessToken
	if err := p.client.CloseSession(ctx, tok); err != nil {
		t.Fatal(err)
	}
	jwks := token.NewRemoteJWKS(base + "/.well-known/jwks.json")
	c, err := token.NewVerifier(jwks).Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the token has expired and the server's snapshot no
	// longer lists it.
	time.Sleep(time.Until(c.Expires))
	feedWait(t, 10*time.Second, "the expired id to leave the server's list", func() bool {
		resp, err := http.Get(base + "/revocations")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		l, err := token.NewVerifier(jwks).ParseRevocations(ctx, string(body))
		if err != nil {
			t.Fatal(err)
		}
		if l.Retain != 0 {
			t.Fatalf("server with --leeway 0: retain = %v, want 0", l.Retain)
		}
		return !slices.ContainsFunc(l.Revoked, func(r token.Revoked) bool { return r.ID == c.ID })
	})

	v := token.NewVerifier(jwks, token.WithLeeway(time.Hour), token.WithFeed(base+"/revocations"))
	if err := v.Feed().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); !errors.Is(err, token.ErrExpired) {
		t.Errorf("Verify(closed, expired, leeway 1h, retain 0) = %v, want ErrExpired", err)
	}

	code, out := runVerify(t, "--jwks", base+"/.well-known/jwks.json", "--leeway", "1h", "--revocations", base+"/revocations", tok)
	if code != 1 || !strings.Contains(out, "expired") {
		t.Errorf("verify --leeway 1h --revocations URL CLOSED = exit %d %q, want exit 1 saying expired", code, out)
	}
}

// The README's feed snippet, as written, against a real server: the first
// Verify after `go feed.Run(ctx)` waits for the first sync instead of
// failing with ErrStale. Run a few times over, since it was a race that
// the snippet lost in most runs.
func TestREADMEFeedSnippet(t *testing.T) {
	p := startInProcess(t, dataDir(t))
	base := strings.TrimSuffix(p.url, "/")
	open, err := p.client.OpenSession(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := p.client.OpenSession(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.client.CloseSession(context.Background(), closed.AccessToken); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		accessToken := open.AccessToken
		if i%2 == 1 {
			accessToken = closed.AccessToken
		}
		done := make(chan struct{})
		// From README.md, "Offline verification with revocation":
		keys := token.NewRemoteJWKS(base + "/.well-known/jwks.json")
		v := token.NewVerifier(keys, token.WithFeed(base+"/revocations",
			token.WithFeedInterval(10*time.Second),                            // how often it asks for changes (the default)
			token.WithFeedFile(filepath.Join(t.TempDir(), "revocations.jws")), // optional: start from it, keep it up to date
		))
		go func() { v.Feed().Run(ctx); close(done) }() // go v.Feed().Run(ctx): until ctx ends
		_, err := v.Verify(ctx, accessToken)
		switch {
		case i%2 == 0 && err != nil:
			t.Errorf("run %d: Verify(open session) right after go feed.Run = %v, want nil", i, err)
		case i%2 == 1 && !errors.Is(err, token.ErrRevoked):
			t.Errorf("run %d: Verify(closed session) right after go feed.Run = %v, want ErrRevoked", i, err)
		}
		cancel()
		<-done
	}
}
