package publish_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/publish"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
	"github.com/sessiond/sessiond/token"
)

// feedEnv is a revocation feed over real HTTP on loopback, with the real
// key file and Badger store in a temporary directory.
type feedEnv struct {
	url    string // of the feed
	store  *revocation.Badger
	ring   *keys.Keyring
	client *client.Client // of the session API, on the same server
}

func newFeedEnv(t *testing.T, opts publish.RevocationsOptions) *feedEnv {
	t.Helper()
	dir := t.TempDir()
	store, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: time.Hour}, keys.KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/{$}", rpc.NewHandler(session.New(store, ring), rpc.HandlerOptions{}))
	mux.Handle("GET /revocations", publish.NewRevocationsHandler(store, ring, opts))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &feedEnv{url: srv.URL + "/revocations", store: store, ring: ring, client: client.New(srv.URL+"/", srv.Client())}
}

// get fetches url and returns the status and body.
func feedGet(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// fetch fetches and verifies the document at query.
func (e *feedEnv) fetch(t *testing.T, query string) *token.RevocationList {
	t.Helper()
	status, hdr, body := feedGet(t, http.MethodGet, e.url+query)
	if status != http.StatusOK {
		t.Fatalf("GET /revocations%s = %d %s", query, status, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/revocations+jwt" {
		t.Errorf("Content-Type = %q", ct)
	}
	l, err := token.NewVerifier(e.ring).ParseRevocations(context.Background(), body)
	if err != nil {
		t.Fatalf("GET /revocations%s: %v", query, err)
	}
	return l
}

func (e *feedEnv) revoke(t *testing.T, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
		if err := e.store.Revoke(context.Background(), ids[i], time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func wantListIDs(t *testing.T, l *token.RevocationList, want ...uuid.UUID) {
	t.Helper()
	got := make([]uuid.UUID, len(l.Revoked))
	for i, r := range l.Revoked {
		got[i] = r.ID
	}
	slices.SortFunc(got, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(got, want) {
		t.Fatalf("document lists %v, want %v", got, want)
	}
}

func TestRevocationsHandler(t *testing.T) {
	// Rebuild of a nanosecond: every snapshot request sees the list now.
	e := newFeedEnv(t, publish.RevocationsOptions{Rebuild: time.Nanosecond, MaxDelta: 4, FreshFor: time.Minute})

	empty := e.fetch(t, "")
	if !empty.Snapshot || empty.Seq != 0 || len(empty.Revoked) != 0 || empty.Epoch == "" || empty.Issuer != "sessiond" {
		t.Fatalf("snapshot of an empty list = %+v", empty)
	}
	if got := empty.FreshUntil.Sub(empty.IssuedAt); got != time.Minute {
		t.Errorf("fresh_until - iat = %v, want FreshFor, 1m", got)
	}
	first := e.revoke(t, 3)

	t.Run("snapshot", func(t *testing.T) {
		l := e.fetch(t, "")
		if !l.Snapshot || l.Seq != 3 || l.Since != 0 || l.Epoch != empty.Epoch {
			t.Errorf("GET /revocations = %+v, want a snapshot at seq 3", l)
		}
		wantListIDs(t, l, first...)
		if kid, _, _, _ := e.ring.SigningKey(); l.KeyID != kid {
			t.Errorf("signed by %q, want the active key %q", l.KeyID, kid)
		}
	})
	t.Run("since 0 is a snapshot", func(t *testing.T) {
		wantListIDs(t, e.fetch(t, "?since=0"), first...)
	})
	t.Run("nothing new", func(t *testing.T) {
		l := e.fetch(t, "?since=3")
		if l.Snapshot || l.Seq != 3 || l.Since != 3 || len(l.Revoked) != 0 {
			t.Errorf("GET ?since=3 = %+v, want an empty delta", l)
		}
	})
	second := e.revoke(t, 2)
	t.Run("delta", func(t *testing.T) {
		l := e.fetch(t, "?since=3&epoch="+empty.Epoch)
		if l.Snapshot || l.Seq != 5 || l.Since != 3 {
			t.Errorf("GET ?since=3 = seq %d since %d snapshot %v, want a delta from 3 to 5", l.Seq, l.Since, l.Snapshot)
		}
		wantListIDs(t, l, second...)
	})
	all := append(first, second...)
	t.Run("since ahead", func(t *testing.T) {
		l := e.fetch(t, "?since=99")
		if !l.Snapshot || l.Seq != 5 {
			t.Errorf("GET ?since=99 = %+v, want a snapshot", l)
		}
		wantListIDs(t, l, all...)
	})
	t.Run("another epoch", func(t *testing.T) {
		l := e.fetch(t, "?since=3&epoch=other")
		if !l.Snapshot {
			t.Errorf("GET ?since=3&epoch=other is a delta, want a snapshot")
		}
		wantListIDs(t, l, all...)
	})
	third := e.revoke(t, 5)
	t.Run("delta over MaxDelta", func(t *testing.T) {
		l := e.fetch(t, "?since=5")
		if !l.Snapshot || l.Seq != 10 {
			t.Errorf("GET ?since=5 with 5 changes, MaxDelta 4 = seq %d snapshot %v, want a snapshot", l.Seq, l.Snapshot)
		}
		wantListIDs(t, l, append(all, third...)...)
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, q := range []string{"?since=", "?since=abc", "?since=-1", "?since=%2B1", "?since=1.0", "?since=18446744073709551616", "?since=1&since=2"} {
			if status, _, body := feedGet(t, http.MethodGet, e.url+q); status != http.StatusBadRequest {
				t.Errorf("GET %s = %d %.60s, want 400", q, status, body)
			}
		}
		status, hdr, _ := feedGet(t, http.MethodPost, e.url)
		if status != http.StatusMethodNotAllowed {
			t.Errorf("POST /revocations = %d, want 405 (Allow %q)", status, hdr.Get("Allow"))
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		if status, _, body := feedGet(t, http.MethodHead, e.url); status != http.StatusOK || body != "" {
			t.Errorf("HEAD /revocations = %d with %d bytes, want 200 and no body", status, len(body))
		}
	})
}

// feedAt is a revocation.Feed over a fixed list, for the cache tests and the
// benchmark.
type feedAt struct {
	mu      sync.Mutex
	seq     uint64
	entries []revocation.Entry
	calls   int // of Changes
	// snapshots counts the calls of Changes that copied the whole list;
	// heads, those of Head.
	snapshots, heads int
}

func (f *feedAt) Changes(_ context.Context, since uint64) (revocation.Changes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	c := revocation.Changes{Epoch: "e", Seq: f.seq, Snapshot: f.snapshotFor(since)}
	if c.Snapshot {
		f.snapshots++
	}
	c.Entries = make([]revocation.Entry, 0, len(f.entries))
	for _, e := range f.entries {
		if c.Snapshot || e.Seq > since {
			c.Entries = append(c.Entries, e)
		}
	}
	return c, nil
}

func (f *feedAt) Head(_ context.Context, since uint64) (revocation.Head, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heads++
	h := revocation.Head{Epoch: "e", Seq: f.seq, Snapshot: f.snapshotFor(since), Total: len(f.entries)}
	for _, e := range f.entries {
		if h.Snapshot || e.Seq > since {
			h.Entries++
		}
	}
	return h, nil
}

// snapshotFor reports whether since gets a snapshot, by the store's rule:
// since 0, since ahead of the list, or more than half of it in the delta.
// f.mu is held.
func (f *feedAt) snapshotFor(since uint64) bool {
	if since == 0 || since > f.seq {
		return true
	}
	n := 0
	for _, e := range f.entries {
		if e.Seq > since {
			n++
		}
	}
	return n > len(f.entries)/2
}

// counts returns how many times Changes was called for a snapshot and for
// a delta, and Head.
func (f *feedAt) counts() (snapshots, deltas, heads int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapshots, f.calls - f.snapshots, f.heads
}

func (f *feedAt) add(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.seq++
		f.entries = append(f.entries, revocation.Entry{ID: uuid.New(), Until: time.Now().Add(48 * time.Hour).Truncate(time.Second), Seq: f.seq})
	}
}

type feedTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *feedTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *feedTestClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A large snapshot is built at most every Rebuild; meanwhile requests
// share it, and an unchanged list is served again for a while longer. A
// small one is always current.
func TestRevocationsSnapshotCache(t *testing.T) {
	ring, err := keys.OpenKeyring(filepath.Join(t.TempDir(), "keys.json"), keys.Policy{MaxTokenLifetime: time.Hour}, keys.KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	feed := &feedAt{}
	clock := &feedTestClock{now: time.Now()}
	h := publish.NewRevocationsHandler(feed, ring, publish.RevocationsOptions{Now: clock.Now}) // Rebuild 5s, FreshFor 5m
	get := func(query string) string {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/revocations"+query, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d", query, rec.Code)
		}
		return rec.Body.String()
	}
	parse := func(doc string) *token.RevocationList {
		t.Helper()
		l, err := token.NewVerifier(ring, token.WithClock(clock.Now)).ParseRevocations(context.Background(), doc)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	t.Run("small", func(t *testing.T) {
		first := get("")
		if again := get(""); again != first {
			t.Errorf("unchanged small snapshot built again")
		}
		feed.add(1)
		if l := parse(get("")); l.Seq != 1 || len(l.Revoked) != 1 {
			t.Errorf("small snapshot after a write = seq %d with %d ids, want it current: seq 1 with 1", l.Seq, len(l.Revoked))
		}
	})

	feed.add(3000) // about 110 KB: large
	clock.Add(time.Hour)
	first := get("")
	if again := get(""); again != first {
		t.Errorf("second snapshot request built a new document")
	}
	feed.add(1)
	clock.Add(4 * time.Second)
	if again := get(""); again != first {
		t.Errorf("large snapshot rebuilt within Rebuild")
	}
	clock.Add(2 * time.Second)
	changed := get("")
	if changed == first {
		t.Fatalf("snapshot not rebuilt after Rebuild although the list changed")
	}
	if l := parse(changed); l.Seq != 3002 || len(l.Revoked) != 3002 {
		t.Fatalf("rebuilt snapshot = seq %d with %d ids; want 3002 and 3002", l.Seq, len(l.Revoked))
	}

	clock.Add(30 * time.Second)
	if again := get(""); again != changed {
		t.Errorf("unchanged list: snapshot rebuilt after 30s, want it served again for a minute")
	}
	clock.Add(time.Minute)
	if again := get(""); again == changed {
		t.Errorf("snapshot served for more than a minute")
	}

	t.Run("deltas", func(t *testing.T) {
		d := get("?since=3002")
		if again := get("?since=3002"); again != d {
			t.Errorf("the same delta was signed twice within Rebuild")
		}
		feed.add(1)
		if l := parse(get("?since=3002")); l.Seq != 3003 || len(l.Revoked) != 1 {
			t.Errorf("delta after a write = seq %d with %d ids; want seq 3003 with 1 id at once", l.Seq, len(l.Revoked))
		}
	})

	t.Run("never older than the client's list", func(t *testing.T) {
		// A client at seq 3004 whose delta is too large gets a snapshot
		// at 3004 or later, not the shared one at 3003.
		clock.Add(time.Minute) // the snapshot above is too old: build one at 3003
		shared := parse(get(""))
		feed.add(20000) // more than MaxDelta
		clock.Add(time.Second)
		if l := parse(get("?since=3003")); l.Seq != shared.Seq || !l.Snapshot {
			t.Fatalf("GET ?since=3003 = seq %d snapshot %v, want the shared snapshot at %d", l.Seq, l.Snapshot, shared.Seq)
		}
		if l := parse(get("?since=3004")); !l.Snapshot || l.Seq < 3004 {
			t.Errorf("GET ?since=3004 = seq %d snapshot %v, want a snapshot at 3004 or later", l.Seq, l.Snapshot)
		}
	})
}

// A snapshot large enough for the bucketed sort comes out in id order,
// which the parser checks, with every id.
func TestRevocationsLargeSnapshot(t *testing.T) {
	ring, err := keys.OpenKeyring(filepath.Join(t.TempDir(), "keys.json"), keys.Policy{MaxTokenLifetime: time.Hour}, keys.KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	feed := &feedAt{}
	feed.add(20000)
	feed.entries[1].ID = uuid.UUID{0xff, 0xff, 0xff} // the last bucket
	feed.entries[2].ID = uuid.UUID{}                 // the first
	h := publish.NewRevocationsHandler(feed, ring, publish.RevocationsOptions{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/revocations", nil))
	l, err := token.NewVerifier(ring).ParseRevocations(context.Background(), rec.Body.String())
	if err != nil {
		t.Fatalf("ParseRevocations() = %v", err)
	}
	want := make([]uuid.UUID, len(feed.entries))
	for i, e := range feed.entries {
		want[i] = e.ID
	}
	wantListIDs(t, l, want...)
}

// Snapshot requests while revocations are written: every answer verifies,
// and nothing races.
func TestRevocationsConcurrent(t *testing.T) {
	e := newFeedEnv(t, publish.RevocationsOptions{Rebuild: time.Millisecond})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				e.revoke(t, 1)
			}
		}
	})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			var since uint64
			for range 20 {
				l := e.fetch(t, "?since="+strconv.FormatUint(since, 10))
				since = l.Seq
			}
		})
	}
	readers.Wait()
	close(stop)
	wg.Wait()
}

// A verifier following the feed, next to the session API: closing a
// session makes it fail verification offline at the next sync.
func TestRevocationsOfflineVerifier(t *testing.T) {
	e := newFeedEnv(t, publish.RevocationsOptions{Rebuild: time.Nanosecond})
	ctx := context.Background()
	res, err := e.client.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	feed := token.NewVerifier(e.ring, token.WithFeed(e.url)).Feed()
	offline := token.NewVerifier(e.ring, token.WithRevocation(feed))
	if err := feed.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := offline.Verify(ctx, res.AccessToken); err != nil {
		t.Fatalf("offline Verify() = %v", err)
	}
	if err := e.client.CloseSession(ctx, res.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := feed.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := offline.Verify(ctx, res.AccessToken); !errors.Is(err, token.ErrRevoked) {
		t.Fatalf("offline Verify() after close = %v, want %v", err, token.ErrRevoked)
	}
}

// discard is a ResponseWriter that keeps nothing.
type discard struct {
	hdr http.Header
	n   int
}

func (d *discard) Header() http.Header         { return d.hdr }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { d.n = len(p); return len(p), nil }

// BenchmarkRevocationsSnapshot builds, signs and serves a snapshot of a
// million ids (Changes as the store copies it, conversion, sort, encoding,
// EdDSA signature), a new one every iteration.
func BenchmarkRevocationsSnapshot(b *testing.B) {
	ring, err := keys.OpenKeyring(filepath.Join(b.TempDir(), "keys.json"), keys.Policy{MaxTokenLifetime: time.Hour}, keys.KeyringOptions{})
	if err != nil {
		b.Fatal(err)
	}
	feed := &feedAt{}
	feed.add(1_000_000)
	clock := &feedTestClock{now: time.Now()}
	h := publish.NewRevocationsHandler(feed, ring, publish.RevocationsOptions{Now: clock.Now})
	req := httptest.NewRequest(http.MethodGet, "/revocations", nil)
	w := &discard{hdr: http.Header{}}
	for b.Loop() {
		clock.Add(time.Minute) // past Rebuild and reuse: build again
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(w.n)/1e6, "MB/doc")
	b.ReportMetric(float64(w.n)/float64(len(feed.entries)), "bytes/id")
}

// newFeedHandler returns a handler over feed with a fresh key ring.
func newFeedHandler(t *testing.T, feed revocation.Feed, opts publish.RevocationsOptions) (*publish.RevocationsHandler, *keys.Keyring) {
	t.Helper()
	ring, err := keys.OpenKeyring(filepath.Join(t.TempDir(), "keys.json"), keys.Policy{MaxTokenLifetime: time.Hour}, keys.KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return publish.NewRevocationsHandler(feed, ring, opts), ring
}

// Whatever since a request gives, the shared snapshot answers it when it
// can, and the list is copied once per Rebuild at most: 100 concurrent
// requests that all need a snapshot (since 0, since 1, since ahead of the
// list, another epoch) copy the list once, and ask the feed only for its
// head otherwise; after Rebuild, once more.
func TestRevocationsOneBuild(t *testing.T) {
	feed := &feedAt{}
	feed.add(3000) // about 110 KB: large
	clock := &feedTestClock{now: time.Now()}
	h, ring := newFeedHandler(t, feed, publish.RevocationsOptions{Now: clock.Now, ClientEvery: -1})
	round := func(wantSeq uint64) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range 100 {
			query := []string{"", "?since=1", "?since=999999", "?since=5&epoch=another"}[i%4]
			wg.Go(func() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/revocations"+query, nil))
				if rec.Code != http.StatusOK {
					t.Errorf("GET %s = %d %s", query, rec.Code, rec.Body)
					return
				}
				l, err := token.NewVerifier(ring, token.WithClock(clock.Now)).ParseRevocations(context.Background(), rec.Body.String())
				if err != nil {
					t.Errorf("GET %s: %v", query, err)
				} else if !l.Snapshot || l.Seq != wantSeq {
					t.Errorf("GET %s = seq %d snapshot %v, want a snapshot at seq %d", query, l.Seq, l.Snapshot, wantSeq)
				}
			})
		}
		wg.Wait()
	}

	round(3000)
	if snapshots, deltas, heads := feed.counts(); snapshots != 1 || deltas != 0 || heads != 100 {
		t.Errorf("100 requests for a snapshot: %d copies of the list, %d of deltas, %d head checks; want 1, 0 and 100", snapshots, deltas, heads)
	}
	feed.add(1)
	clock.Add(4 * time.Second)
	round(3000) // within Rebuild: the shared one, though the list changed
	if snapshots, deltas, _ := feed.counts(); snapshots != 1 || deltas != 0 {
		t.Errorf("100 more within Rebuild: %d copies of the list in all, %d of deltas; want 1 and 0", snapshots, deltas)
	}
	clock.Add(2 * time.Second)
	round(3001)
	if snapshots, deltas, _ := feed.counts(); snapshots != 2 || deltas != 0 {
		t.Errorf("100 more after Rebuild: %d copies of the list in all, %d of deltas; want 2 and 0", snapshots, deltas)
	}
}

// Large deltas are cached too: the same large delta asked for 50 times is
// built once.
func TestRevocationsLargeDeltaCached(t *testing.T) {
	feed := &feedAt{}
	feed.add(10000)
	h, _ := newFeedHandler(t, feed, publish.RevocationsOptions{ClientEvery: -1})
	for range 50 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/revocations?since=7000", nil)) // 3000 ids, 110 KB
		if rec.Code != http.StatusOK || rec.Body.Len() < 64<<10 {
			t.Fatalf("GET ?since=7000 = %d, %d bytes; want a large delta", rec.Code, rec.Body.Len())
		}
	}
	if _, deltas, _ := feed.counts(); deltas != 1 {
		t.Errorf("the same large delta 50 times: %d copies, want 1", deltas)
	}
}

// One client may fetch ClientBurst (4) large documents at once and then
// one per ClientEvery (5 s); sooner it gets 429 with Retry-After and the
// fix, over a real socket. Small documents (its deltas, or a small list)
// are never rationed.
func TestRevocationsClientLimit(t *testing.T) {
	feed := &feedAt{}
	feed.add(3000)
	clock := &feedTestClock{now: time.Now()}
	h, _ := newFeedHandler(t, feed, publish.RevocationsOptions{Now: clock.Now})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	get := func(query string) (int, http.Header, string) {
		t.Helper()
		return feedGet(t, http.MethodGet, srv.URL+"/revocations"+query)
	}
	for i := range 4 {
		if status, _, body := get([]string{"", "?since=1"}[i%2]); status != http.StatusOK {
			t.Fatalf("large document %d of the burst = %d %.100s, want 200", i+1, status, body)
		}
	}
	status, hdr, body := get("?since=1")
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "5" || !strings.Contains(body, "?since=") {
		t.Errorf("fifth large document = %d, Retry-After %q, %q; want 429, Retry-After 5 and the fix", status, hdr.Get("Retry-After"), body)
	}
	if status, _, _ := get("?since=2999"); status != http.StatusOK {
		t.Errorf("a small delta after the burst = %d, want 200", status)
	}
	clock.Add(5 * time.Second)
	if status, _, _ := get(""); status != http.StatusOK {
		t.Errorf("a snapshot 5 s later = %d, want 200", status)
	}
	if status, _, _ := get(""); status != http.StatusTooManyRequests {
		t.Errorf("another one at once = %d, want 429", status)
	}

	small := &feedAt{}
	small.add(10)
	hs, _ := newFeedHandler(t, small, publish.RevocationsOptions{})
	srvSmall := httptest.NewServer(hs)
	t.Cleanup(srvSmall.Close)
	for i := range 20 {
		if status, _, _ := feedGet(t, http.MethodGet, srvSmall.URL+"/revocations"); status != http.StatusOK {
			t.Fatalf("small snapshot %d = %d, want 200: small documents are not rationed", i+1, status)
		}
	}
}

// A Badger lends its list for a snapshot (revocation.Badger.Snapshot)
// instead of copying it; the document is byte for byte the one built from
// the copy (Changes), which a feed without Snapshot gives. 5000 entries:
// more than the counting sort's threshold, some expired, one extended.
func TestRevocationsLentSnapshot(t *testing.T) {
	dir := t.TempDir()
	clock := &feedTestClock{now: time.Now()}
	store, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	extended := uuid.New()
	ids := make(chan uuid.UUID, 5000)
	ids <- extended
	for len(ids) < cap(ids) {
		ids <- uuid.New()
	}
	close(ids)
	if err := store.Revoke(context.Background(), uuid.New(), clock.Now().Add(time.Minute)); err != nil { // expires below
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for id := range ids {
				if err := store.Revoke(context.Background(), id, clock.Now().Add(time.Hour)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := store.Revoke(context.Background(), extended, clock.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Minute)

	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: time.Hour}, keys.KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(feed revocation.Feed) string {
		t.Helper()
		rec := httptest.NewRecorder()
		publish.NewRevocationsHandler(feed, ring, publish.RevocationsOptions{Now: clock.Now}).
			ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/revocations", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /revocations = %d %s", rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	lent := get(store)
	copied := get(struct{ revocation.Feed }{store}) // Changes and Head only
	if lent != copied {
		t.Fatalf("the snapshot from Badger.Snapshot (%d bytes) differs from the one from Changes (%d bytes)", len(lent), len(copied))
	}
	l, err := token.NewVerifier(ring, token.WithClock(clock.Now)).ParseRevocations(context.Background(), lent)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Revoked) != 5000 {
		t.Errorf("snapshot lists %d ids, want the 5000 unexpired", len(l.Revoked))
	}
}
