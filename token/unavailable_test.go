package token_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

// When the JWK Set cannot be fetched, validity is unknown: the error is
// ErrKeysUnavailable, not a verdict that the token is invalid.
func TestKeysUnavailable(t *testing.T) {
	c := &clock{t0}
	ring := newKeyring(t, c)
	tok, _, err := issue.New(ring, issue.WithClock(c.Now)).Issue(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := token.NewVerifier(token.NewRemoteJWKS(deadURL(t)), token.WithClock(c.Now))
	_, err = v.Verify(context.Background(), tok)
	if !errors.Is(err, token.ErrKeysUnavailable) || errors.Is(err, token.ErrInvalid) {
		t.Errorf("Verify() error = %v, want ErrKeysUnavailable and not ErrInvalid", err)
	}
}

// deadURL is a loopback URL where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/jwks.json"
	ln.Close() // nothing listens there any more
	return url
}

// wantUnknown fails unless err says that validity is unknown because the
// keys are unavailable: ErrKeysUnavailable, neither ErrFeed (the document
// was not refused) nor ErrInvalid.
func wantUnknown(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, token.ErrKeysUnavailable) || errors.Is(err, token.ErrFeed) || errors.Is(err, token.ErrInvalid) {
		t.Errorf("%s error = %v, want ErrKeysUnavailable, not ErrFeed nor ErrInvalid", what, err)
	}
}

// A revocation document whose keys cannot be had is of unknown validity,
// as a token is: ParseRevocations, Sync and Load say ErrKeysUnavailable
// (they used to panic), and the feed holds no list.
func TestRevocationsKeysUnavailable(t *testing.T) {
	ctx := context.Background()
	s := newFeedSigner(t, keys.EdDSA)
	doc := feedSign(t, s, feedList(3, feedT0))
	keys := token.NewRemoteJWKS(deadURL(t))
	now := func() time.Time { return feedT0.Add(time.Second) }

	_, err := token.NewVerifier(keys, token.WithClock(now)).ParseRevocations(ctx, doc)
	wantUnknown(t, "ParseRevocations()", err)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, doc) }))
	defer srv.Close()
	feed := token.NewVerifier(keys, token.WithClock(now), token.WithFeed(srv.URL)).Feed()
	wantUnknown(t, "Sync()", feed.Sync(ctx))

	path := filepath.Join(t.TempDir(), "revocations.jws")
	if err := os.WriteFile(path, []byte(doc+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantUnknown(t, "Load()", feed.Load(ctx, path))

	if revoked, err := feed.IsRevoked(ctx, feedList(1, feedT0).Revoked[0].ID); !revoked || !errors.Is(err, token.ErrStale) {
		t.Errorf("IsRevoked() = %v, %v; want true and ErrStale: no list is loaded", revoked, err)
	}
}

// failingKeys is a key source that fails, or answers with a key that does
// not fit, in one of several ways chosen by mode; mode 0 is the real set.
type failingKeys struct {
	set  token.KeySource
	mode byte
}

const failingModes = 8

func (k failingKeys) VerificationKey(ctx context.Context, kid string) (string, crypto.PublicKey, error) {
	alg, key, err := k.set.VerificationKey(ctx, kid)
	switch k.mode % failingModes {
	case 1:
		return "", nil, fmt.Errorf("%w: the network is down", token.ErrKeysUnavailable)
	case 2:
		return "", nil, errors.New("no such key")
	case 3:
		return alg, nil, nil // the right algorithm, no key
	case 4:
		return "EdDSA", &rsa.PublicKey{}, nil
	case 5:
		return "ES256", (*ecdsa.PublicKey)(nil), nil
	case 6:
		return "RS256", (*rsa.PublicKey)(nil), nil
	case 7:
		return alg, key, fmt.Errorf("%w: and yet a key", token.ErrKeysUnavailable)
	}
	return alg, key, err
}

// FuzzFailingKeySources gives tokens and revocation documents to
// ParseRevocations and Verify over key sources that fail or answer with
// keys of the wrong type. Neither may panic; an error is either "validity
// unknown" (ErrKeysUnavailable alone) or a verdict with its reason; only
// the real key set accepts anything.
func FuzzFailingKeySources(f *testing.F) {
	var signers []feedSigner
	for _, alg := range []keys.Algorithm{keys.EdDSA, keys.ES256, keys.RS256} {
		signers = append(signers, newFeedSigner(f, alg))
	}
	set := feedJWKS(f, signers...)
	now := func() time.Time { return feedT0.Add(time.Second) }
	for _, s := range signers {
		doc := feedSign(f, s, feedList(2, feedT0))
		tok, _, err := issue.New(s, issue.WithClock(now)).Issue(time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		for mode := range byte(failingModes) {
			f.Add(doc, mode)
			f.Add(tok, mode)
		}
	}
	f.Add("a.b.c", byte(1))
	f.Fuzz(func(t *testing.T, s string, mode byte) {
		ks := failingKeys{set, mode}
		check := func(what string, accepted bool, err error, verdict error) {
			t.Helper()
			switch {
			case err == nil && mode%failingModes != 0:
				t.Fatalf("%s accepted %q under failing key source %d", what, s, mode%failingModes)
			case err == nil && !accepted:
				t.Fatalf("%s = nil error without a result", what)
			case err == nil:
			case errors.Is(err, token.ErrKeysUnavailable):
				if errors.Is(err, verdict) {
					t.Fatalf("%s error = %v: both unknown and a verdict", what, err)
				}
			case !errors.Is(err, verdict):
				t.Fatalf("%s error = %v, want ErrKeysUnavailable or %v", what, err, verdict)
			}
		}
		l, err := token.NewVerifier(ks, token.WithClock(now)).ParseRevocations(context.Background(), s)
		check("ParseRevocations()", l != nil, err, token.ErrFeed)
		_, err = token.NewVerifier(ks, token.WithClock(now)).Verify(context.Background(), s)
		check("Verify()", true, err, token.ErrInvalid)
	})
}
