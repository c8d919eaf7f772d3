package token_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

// forgedDocument is a revocation document of about size bytes whose
// payload is well formed (a list of random bytes) but whose signature is
// random, under header.
func forgedDocument(t *testing.T, header map[string]any, size int) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	list := make([]byte, size*3/4*3/4)
	rand.Read(list)
	claims, err := json.Marshal(map[string]any{
		"iss": "sessiond", "iat": feedT0.Unix(), "fresh_until": feedT0.Add(time.Hour).Unix(),
		"epoch": "e", "seq": 1, "since": 0, "snapshot": true, "revoked": base64.RawURLEncoding.EncodeToString(list),
	})
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	rand.Read(sig)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(claims) + "." + enc(sig)
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A large forged revocation document is refused for its header or its
// signature before its payload is decoded: refusing it allocates a small,
// fixed amount, not a multiple of its size (a 250 MiB one cost 654 MB).
func TestForgedRevocationsCostLittle(t *testing.T) {
	const size = 24 << 20
	ctx := context.Background()
	s := newFeedSigner(t, keys.EdDSA)
	set := feedJWKS(t, s)
	now := token.WithClock(func() time.Time { return feedT0.Add(time.Second) })
	tests := []struct {
		name   string
		header map[string]any
		want   error
	}{
		{"known kid, forged signature", map[string]any{"alg": "EdDSA", "kid": s.key.ID, "typ": jose.TypeRevocations}, token.ErrSignature},
		{"unknown kid", map[string]any{"alg": "EdDSA", "kid": "nobody", "typ": jose.TypeRevocations}, token.ErrUnknownKey},
		{"alg none", map[string]any{"alg": "none", "kid": s.key.ID, "typ": jose.TypeRevocations}, token.ErrSignature},
		{"a token's typ", map[string]any{"alg": "EdDSA", "kid": s.key.ID, "typ": jose.TypeSession}, token.ErrType},
		{"another key's algorithm", map[string]any{"alg": "ES256", "kid": s.key.ID, "typ": jose.TypeRevocations}, token.ErrAlgorithm},
	}
	const allowed = 1 << 20
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := forgedDocument(t, tt.header, size)
			var err error
			got := allocated(func() { _, err = token.NewVerifier(set, now).ParseRevocations(ctx, doc) })
			if !errors.Is(err, token.ErrFeed) || !errors.Is(err, tt.want) {
				t.Fatalf("ParseRevocations(forged) error = %v, want ErrFeed and %v", err, tt.want)
			}
			if got > allowed {
				t.Errorf("refusing a forged document of %d MiB allocated %d KiB, want at most %d KiB", len(doc)>>20, got>>10, allowed>>10)
			}
		})
	}

	// Through the feed, the document is read once, and nothing more.
	doc := forgedDocument(t, tests[0].header, size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(doc)))
		strings.NewReader(doc).WriteTo(w)
	}))
	defer srv.Close()
	feed := token.NewVerifier(set, token.WithClock(func() time.Time { return feedT0.Add(time.Second) }), token.WithFeed(srv.URL)).Feed()
	var err error
	got := allocated(func() { err = feed.Sync(ctx) })
	if !errors.Is(err, token.ErrSignature) {
		t.Fatalf("Sync(forged) error = %v, want ErrSignature", err)
	}
	if limit := uint64(len(doc)) + allowed; got > limit {
		t.Errorf("Sync(forged document of %d MiB) allocated %d KiB, want at most the document and %d KiB", len(doc)>>20, got>>10, allowed>>10)
	}
}

// A document larger than FeedOptions.MaxSize is refused unread, fetched
// or loaded, with ErrTooLarge.
func TestRevocationsTooLarge(t *testing.T) {
	ctx := context.Background()
	s := newFeedSigner(t, keys.EdDSA)
	set := feedJWKS(t, s)
	now := func() time.Time { return feedT0.Add(time.Second) }
	doc := feedSign(t, s, feedList(4000, feedT0)) // some 150 KB
	const max = 64 << 10
	path := filepath.Join(t.TempDir(), "revocations.jws")
	if err := os.WriteFile(path, []byte(doc+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, doc) }))
	defer srv.Close()
	feed := token.NewVerifier(set, token.WithClock(now), token.WithFeed(srv.URL, token.WithFeedMaxSize(max))).Feed()
	for what, err := range map[string]error{"Sync()": feed.Sync(ctx), "Load()": feed.Load(ctx, path)} {
		if !errors.Is(err, token.ErrFeed) || !errors.Is(err, token.ErrTooLarge) || !strings.Contains(err.Error(), "MaxSize") {
			t.Errorf("%s of a %d KiB document, MaxSize %d KiB: error = %v, want ErrFeed and ErrTooLarge naming MaxSize", what, len(doc)>>10, max>>10, err)
		}
	}
	if st := feed.Status(); st.Loaded {
		t.Errorf("Status() = %+v, want no list", st)
	}
}
