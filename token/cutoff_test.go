package token_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/token"
)

// subjectToken signs a session token of subject ("" for none) issued at
// iat, valid for an hour, with s's key.
func subjectToken(tb testing.TB, s feedSigner, subject string, iat time.Time) string {
	tb.Helper()
	header := fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"session+jwt"}`, s.key.Algorithm, s.key.ID)
	claims := map[string]any{"iss": token.DefaultIssuer, "iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(), "jti": uuid.NewString()}
	if subject != "" {
		claims["sub"] = subject
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	return feedSignRaw(tb, s, header, string(payload))
}

// feedSignRaw signs header and payload (JSON) as a JWS with s's key.
func feedSignRaw(tb testing.TB, s feedSigner, header, payload string) string {
	tb.Helper()
	input := jose.B64.EncodeToString([]byte(header)) + "." + jose.B64.EncodeToString([]byte(payload))
	sig, err := jose.Sign(string(s.key.Algorithm), s.key.Signer(), []byte(input))
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + jose.B64.EncodeToString(sig)
}

// wantVerify fails the test unless Verify(tok) fails with want (nil: passes).
func wantVerify(t *testing.T, v *token.Verifier, name, tok string, want error) {
	t.Helper()
	c, err := v.Verify(context.Background(), tok)
	switch {
	case want == nil && err != nil:
		t.Errorf("Verify(%s) = %v, want nil", name, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("Verify(%s) = %+v, %v, want %v", name, c, err, want)
	case want != nil && !errors.Is(err, token.ErrInvalid):
		t.Errorf("Verify(%s) = %v, does not match ErrInvalid", name, err)
	case errors.Is(want, token.ErrSubjectClosed) && errors.Is(err, token.ErrRevoked):
		t.Errorf("Verify(%s) = %v, matches ErrRevoked too; want exactly one reason", name, err)
	}
}

// A token whose sub has a cutoff at or after its iat is refused with
// ErrSubjectClosed within one sync, by snapshot and by delta; one issued
// after the cutoff second, of another subject, or without sub passes; a
// later cutoff wins, an earlier one never moves it back; a snapshot
// replaces the cutoffs; expired ones are forgotten.
func TestRevocationFeedSubjectCutoff(t *testing.T) {
	x := newFeedFixture(t, feedOptions{})
	v := token.NewVerifier(feedJWKS(t, x.signer), token.WithClock(x.clock.Now), token.WithRevocation(x.feed))
	ctx := context.Background()
	cut := feedT0.Add(-time.Minute)
	x.server.cutOff("alice@example.com", cut, feedT0.Add(2*time.Hour))

	aliceBefore := subjectToken(t, x.signer, "alice@example.com", cut.Add(-30*time.Second))
	aliceSame := subjectToken(t, x.signer, "alice@example.com", cut)
	aliceAfter := subjectToken(t, x.signer, "alice@example.com", cut.Add(time.Second))
	bob := subjectToken(t, x.signer, "bob@example.com", cut.Add(-30*time.Second))
	nobody := subjectToken(t, x.signer, "", cut.Add(-30*time.Second))

	t.Run("before any sync", func(t *testing.T) {
		_, ok, err := x.feed.Cutoff(ctx, "alice@example.com")
		if !errors.Is(err, token.ErrStale) || !ok {
			t.Fatalf("Cutoff() before a sync = %v, %v; want true, ErrStale", ok, err)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		x.sync(t)
		wantVerify(t, v, "alice before the cutoff", aliceBefore, token.ErrSubjectClosed)
		wantVerify(t, v, "alice in the cutoff second", aliceSame, token.ErrSubjectClosed)
		wantVerify(t, v, "alice after the cutoff second", aliceAfter, nil)
		wantVerify(t, v, "bob", bob, nil)
		wantVerify(t, v, "no sub", nobody, nil)
		if st := x.feed.Status(); st.Cutoffs != 1 || st.Len != 0 {
			t.Errorf("Status() = %+v, want 1 cutoff and no ids", st)
		}
	})
	t.Run("delta", func(t *testing.T) {
		x.server.cutOff("bob@example.com", cut, feedT0.Add(3*time.Hour))
		x.server.cutOff("alice@example.com", cut.Add(5*time.Second), feedT0.Add(2*time.Hour))
		x.clock.Add(10 * time.Second)
		x.sync(t)
		if q := x.server.lastRequest(); q != "epoch=epoch-1&since=1" {
			t.Errorf("sync asked %q, want the changes since 1", q)
		}
		wantVerify(t, v, "bob", bob, token.ErrSubjectClosed)
		wantVerify(t, v, "alice after the first cutoff", aliceAfter, token.ErrSubjectClosed)
		wantVerify(t, v, "no sub", nobody, nil)
		later := subjectToken(t, x.signer, "alice@example.com", cut.Add(6*time.Second))
		wantVerify(t, v, "alice after the later cutoff", later, nil)
	})
	t.Run("an earlier cutoff in a delta never moves it back", func(t *testing.T) {
		x.server.cutOff("alice@example.com", cut.Add(-time.Hour), feedT0.Add(time.Hour))
		x.sync(t)
		wantVerify(t, v, "alice after the first cutoff", aliceAfter, token.ErrSubjectClosed)
		at, ok, err := x.feed.Cutoff(ctx, "alice@example.com")
		if err != nil || !ok || !at.Equal(cut.Add(5*time.Second)) {
			t.Errorf("Cutoff() = %s, %v, %v; want %s", at, ok, err, cut.Add(5*time.Second))
		}
	})
	t.Run("expired cutoffs are forgotten", func(t *testing.T) {
		// alice's cutoff lasts two hours (the later of her records'),
		// bob's three: past two hours alice's is gone.
		x.clock.Add(2 * time.Hour)
		x.sync(t)
		if _, ok, err := x.feed.Cutoff(ctx, "alice@example.com"); ok || err != nil {
			t.Errorf("Cutoff(alice) after its expiry = %v, %v; want none", ok, err)
		}
		if _, ok, err := x.feed.Cutoff(ctx, "bob@example.com"); !ok || err != nil {
			t.Errorf("Cutoff(bob) = %v, %v; want one", ok, err)
		}
		if st := x.feed.Status(); st.Cutoffs != 1 {
			t.Errorf("Status().Cutoffs = %d, want 1", st.Cutoffs)
		}
	})
	t.Run("a snapshot replaces them", func(t *testing.T) {
		x.server.mu.Lock()
		x.server.epoch, x.server.cutoffs = "epoch-2", nil
		x.server.mu.Unlock()
		x.sync(t)
		if _, ok, err := x.feed.Cutoff(ctx, "bob@example.com"); ok || err != nil {
			t.Errorf("Cutoff(bob) after a snapshot without it = %v, %v; want none", ok, err)
		}
		if st := x.feed.Status(); st.Cutoffs != 0 || st.Epoch != "epoch-2" {
			t.Errorf("Status() = %+v, want epoch-2 with no cutoffs", st)
		}
	})
	t.Run("stale", func(t *testing.T) {
		x.clock.Add(time.Hour)
		_, ok, err := x.feed.Cutoff(ctx, "bob@example.com")
		if !errors.Is(err, token.ErrStale) || !ok {
			t.Errorf("Cutoff() of a stale list = %v, %v; want true, ErrStale", ok, err)
		}
	})
}

// Cutoffs round-trip through SignRevocations and ParseRevocations, by
// hash, sorted; a document without the member has none; the subject is
// nowhere in the document.
func TestSignParseCutoffs(t *testing.T) {
	s := newFeedSigner(t, "EdDSA")
	v := token.NewVerifier(feedJWKS(t, s), feedParseOpts()...)
	l := feedList(2, feedT0)
	subjects := []string{"alice@example.com", "bob@example.com", "carol"}
	for i, sub := range subjects {
		l.Cutoffs = append(l.Cutoffs, token.Cutoff{Subject: token.SubjectHash(sub), At: feedT0.Add(-time.Duration(i) * time.Second), Expires: feedT0.Add(time.Hour)})
	}
	doc := feedSign(t, s, l)
	for _, sub := range subjects {
		for _, form := range []string{sub, base64.RawURLEncoding.EncodeToString([]byte(sub)), base64.StdEncoding.EncodeToString([]byte(sub))} {
			if strings.Contains(doc, form) || strings.Contains(payloadOf(t, doc), form) {
				t.Errorf("document contains the subject %q as %q", sub, form)
			}
		}
	}
	got, err := v.ParseRevocations(context.Background(), doc)
	if err != nil {
		t.Fatalf("ParseRevocations() error = %v", err)
	}
	if len(got.Cutoffs) != len(l.Cutoffs) {
		t.Fatalf("ParseRevocations() has %d cutoffs, want %d", len(got.Cutoffs), len(l.Cutoffs))
	}
	for i, c := range got.Cutoffs {
		w := l.Cutoffs[i] // sorted in place by SignRevocations
		if c.Subject != w.Subject || !c.At.Equal(w.At) || !c.Expires.Equal(w.Expires) {
			t.Errorf("cutoff %d = %+v, want %+v", i, c, w)
		}
		if i > 0 && strings.Compare(string(got.Cutoffs[i-1].Subject[:]), string(c.Subject[:])) >= 0 {
			t.Errorf("cutoffs not in ascending order of hash")
		}
	}
	none := feedSign(t, s, feedList(2, feedT0))
	if strings.Contains(payloadOf(t, none), `"cutoffs"`) {
		t.Errorf("a list without cutoffs has a cutoffs member: %s", payloadOf(t, none))
	}
	if got, err := v.ParseRevocations(context.Background(), none); err != nil || got.Cutoffs != nil {
		t.Errorf("ParseRevocations(no member) = %+v, %v; want no cutoffs", got, err)
	}
}

func payloadOf(tb testing.TB, doc string) string {
	tb.Helper()
	parts := strings.Split(doc, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	return string(raw)
}

// cutoffList encodes cutoffs as the document's binary list, with count n.
func cutoffList(n uint64, items ...[]byte) string {
	raw := binary.AppendUvarint(nil, n)
	for _, it := range items {
		raw = append(raw, it...)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// cutoffItem is one binary cutoff: hash byte b repeated, then the raw
// uvarint bytes of the cutoff and expiry.
func cutoffItem(b byte, tail ...byte) []byte {
	h := make([]byte, 32)
	for i := range h {
		h[i] = b
	}
	return append(h, tail...)
}

func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// A cutoffs member that is not canonical, too long for its bytes or out of
// range is refused as malformed, and the feed keeps its list.
func TestParseCutoffsMalformed(t *testing.T) {
	s := newFeedSigner(t, "EdDSA")
	v := token.NewVerifier(feedJWKS(t, s), feedParseOpts()...)
	at, exp := uint64(feedT0.Unix()), uint64(feedT0.Add(time.Hour).Unix())
	good := cat(uv(at), uv(exp))
	header := fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"revocations+jwt"}`, s.key.ID)
	doc := func(member string) string {
		return feedSignRaw(t, s, header, fmt.Sprintf(`{"iss":"sessiond","iat":%d,"fresh_until":%d,"epoch":"e","seq":1,"since":0,"snapshot":true,"retain":0,"cutoffs":%s,"revoked":"AA"}`,
			feedT0.Unix(), feedT0.Add(time.Minute).Unix(), member))
	}
	t.Run("control", func(t *testing.T) {
		l, err := v.ParseRevocations(context.Background(), doc(`"`+cutoffList(2, cutoffItem(1, good...), cutoffItem(2, good...))+`"`))
		if err != nil || len(l.Cutoffs) != 2 || l.Cutoffs[0].At.Unix() != int64(at) || l.Cutoffs[1].Expires.Unix() != int64(exp) {
			t.Fatalf("ParseRevocations(control) = %+v, %v", l, err)
		}
		if l, err := v.ParseRevocations(context.Background(), doc(`"`+cutoffList(0)+`"`)); err != nil || len(l.Cutoffs) != 0 {
			t.Fatalf("ParseRevocations(empty list) = %+v, %v", l, err)
		}
	})
	for _, tt := range []struct{ name, member string }{
		{"not a string", `42`},
		{"null", `null`},
		{"bad base64", `"!!"`},
		{"padded base64", `"` + base64.URLEncoding.EncodeToString(cat(uv(1), cutoffItem(1, good...))) + `"`},
		{"empty", `""`},
		{"count beyond the bytes", `"` + cutoffList(1000000, cutoffItem(1, good...)) + `"`},
		{"huge count", `"` + cutoffList(1<<62) + `"`},
		{"truncated", `"` + cutoffList(2, cutoffItem(1, good...), cutoffItem(2, good...)[:20]) + `"`},
		{"out of order", `"` + cutoffList(2, cutoffItem(2, good...), cutoffItem(1, good...)) + `"`},
		{"twice", `"` + cutoffList(2, cutoffItem(1, good...), cutoffItem(1, good...)) + `"`},
		{"long cutoff uvarint", `"` + cutoffList(1, cutoffItem(1, cat([]byte{0x81, 0x00}, uv(exp))...)) + `"`},
		{"long count uvarint", `"` + base64.RawURLEncoding.EncodeToString(cat([]byte{0x81, 0x00}, cutoffItem(1, good...))) + `"`},
		{"cutoff after 9999", `"` + cutoffList(1, cutoffItem(1, cat(uv(jose.MaxExpiry+1), uv(exp))...)) + `"`},
		{"zero expiry", `"` + cutoffList(1, cutoffItem(1, cat(uv(at), uv(0))...)) + `"`},
		{"expiry after 9999", `"` + cutoffList(1, cutoffItem(1, cat(uv(at), uv(1<<60))...)) + `"`},
		{"bytes after the last", `"` + cutoffList(1, cutoffItem(1, good...), []byte{0}) + `"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := v.ParseRevocations(context.Background(), doc(tt.member))
			if !errors.Is(err, token.ErrMalformed) || !errors.Is(err, token.ErrFeed) {
				t.Fatalf("ParseRevocations() = %+v, %v; want ErrMalformed", l, err)
			}
		})
	}
}

// A forged document that adds a cutoff is refused with the document: the
// cutoffs and ids held are kept, and the tokens it would close verify.
func TestRevocationFeedForgedCutoff(t *testing.T) {
	x := newFeedFixture(t, feedOptions{})
	v := token.NewVerifier(feedJWKS(t, x.signer), token.WithClock(x.clock.Now), token.WithRevocation(x.feed))
	x.server.cutOff("alice@example.com", feedT0, feedT0.Add(2*time.Hour))
	x.sync(t)
	bob := subjectToken(t, x.signer, "bob@example.com", feedT0.Add(-time.Minute))
	alice := subjectToken(t, x.signer, "alice@example.com", feedT0.Add(-time.Minute))

	// The real next delta, with bob's cutoff in it, then tampered with.
	x.server.cutOff("bob@example.com", feedT0, feedT0.Add(2*time.Hour))
	real := x.server.document(1, "epoch-1")
	other := newFeedSigner(t, "EdDSA")
	forgeries := map[string]string{
		"payload changed under the signature": func() string {
			parts := strings.Split(real, ".")
			p := strings.Replace(payloadOf(t, real), `"seq":2`, `"seq":3`, 1)
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(p)) + "." + parts[2]
		}(),
		"signed by an unknown key": func() string {
			l := &token.RevocationList{Issuer: token.DefaultIssuer, IssuedAt: feedT0, FreshUntil: feedT0.Add(time.Minute),
				Epoch: "epoch-1", Seq: 2, Since: 1,
				Cutoffs: []token.Cutoff{{Subject: token.SubjectHash("bob@example.com"), At: feedT0, Expires: feedT0.Add(time.Hour)}}}
			return feedSign(t, other, l)
		}(),
		"signature of another document": func() string {
			parts := strings.Split(real, ".")
			sig := strings.Split(x.server.document(0, ""), ".")[2]
			return parts[0] + "." + parts[1] + "." + sig
		}(),
	}
	for name, forged := range forgeries {
		t.Run(name, func(t *testing.T) {
			x.server.setServe(func(uint64) string { return forged })
			if err := x.feed.Sync(context.Background()); !errors.Is(err, token.ErrFeed) {
				t.Fatalf("Sync(forged) = %v, want ErrFeed", err)
			}
			wantVerify(t, v, "bob", bob, nil)
			wantVerify(t, v, "alice", alice, token.ErrSubjectClosed)
			if st := x.feed.Status(); st.Seq != 1 || st.Cutoffs != 1 {
				t.Errorf("Status() = %+v, want the list at seq 1 with 1 cutoff", st)
			}
		})
	}
	x.server.setServe(nil)
	x.sync(t)
	wantVerify(t, v, "bob after the real delta", bob, token.ErrSubjectClosed)
}

// A delta that carries only cutoffs is kept in the feed's file (not
// taken for an empty delta and overwritten), so a verifier that starts
// from the file refuses the closed subject's tokens.
func TestRevocationFeedFileCutoffs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "revocations.jws")
	x := newFeedFixture(t, feedOptions{File: file})
	x.server.revoke(feedT0.Add(time.Hour), uuid.New())
	x.sync(t)
	x.server.cutOff("alice@example.com", feedT0, feedT0.Add(2*time.Hour))
	x.clock.Add(time.Second)
	x.sync(t) // a delta of one cutoff and no ids
	x.clock.Add(time.Second)
	x.sync(t) // an empty delta, which may replace an empty one
	if n := strings.Count(readFile(t, file), "\n"); n != 3 {
		t.Errorf("file has %d documents, want 3 (snapshot, cutoff delta, empty delta)", n)
	}

	fresh := newFeed("", feedJWKS(t, x.signer), feedOptions{Now: x.clock.Now})
	if err := fresh.Load(context.Background(), file); err != nil {
		t.Fatalf("Load() = %v", err)
	}
	at, ok, err := fresh.Cutoff(context.Background(), "alice@example.com")
	if err != nil || !ok || !at.Equal(feedT0) {
		t.Fatalf("Cutoff() after Load = %s, %v, %v; want %s", at, ok, err, feedT0)
	}
}
