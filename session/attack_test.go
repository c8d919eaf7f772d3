package session_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/token"
)

// The important cases of token's attack table (TestVerifyAttacks),
// through the real session methods: each is inactive, closing it answers
// true, and nothing reaches the revocation store.
func TestSessionAttacks(t *testing.T) {
	s := newService(t)
	ring := s.ring
	ctx := context.Background()
	kid, alg, signer, err := ring.SigningKey()
	if err != nil || alg != "EdDSA" {
		t.Fatalf("SigningKey() = %s, %s, %v, want an EdDSA key", kid, alg, err)
	}
	ourPub := signer.Public().(ed25519.PublicKey)
	esKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	b64 := base64.RawURLEncoding
	seg := func(s string) string { return b64.EncodeToString([]byte(s)) }
	header := func(alg, typ string) string {
		return fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":%q}`, alg, kid, typ)
	}
	now := time.Now()
	claims := func(iat, exp time.Time, extra string) string {
		return fmt.Sprintf(`{"iss":"sessiond","exp":%d,"iat":%d,"jti":%q%s}`, exp.Unix(), iat.Unix(), uuid.NewString(), extra)
	}
	live := func() string { return claims(now.Add(-time.Minute), now.Add(time.Hour), "") }
	edSign := func(h, c string) string {
		in := seg(h) + "." + seg(c)
		sig, err := signer.Sign(nil, []byte(in), crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + b64.EncodeToString(sig)
	}
	hs256 := func(h, c string, key []byte) string {
		in := seg(h) + "." + seg(c)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return in + "." + b64.EncodeToString(m.Sum(nil))
	}
	es256 := func(h, c string) string {
		in := seg(h) + "." + seg(c)
		d := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, esKey, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return in + "." + b64.EncodeToString(sig)
	}
	tamper := func(tok string) string {
		parts := strings.Split(tok, ".")
		raw, _ := b64.DecodeString(parts[1])
		var m map[string]any
		json.Unmarshal(raw, &m)
		m["exp"] = now.Add(365 * 24 * time.Hour).Unix()
		out, _ := json.Marshal(m)
		parts[1] = b64.EncodeToString(out)
		return strings.Join(parts, ".")
	}
	oversized := edSign(header("EdDSA", jose.TypeSession), claims(now.Add(-time.Minute), now.Add(time.Hour), `,"pad":"`+strings.Repeat("x", token.MaxSize)+`"`))

	control := edSign(header("EdDSA", jose.TypeSession), live())
	if got := s.call(t, "session.verify_session_token", control); got != `{"active":true}` {
		t.Fatalf("verify(hand-built token, correctly signed) = %s, want active: the forgeries below would test nothing", got)
	}

	forged := []struct{ name, tok string }{
		{"alg none", seg(header("none", jose.TypeSession)) + "." + seg(live()) + "."},
		{"alg None", seg(header("None", jose.TypeSession)) + "." + seg(live()) + "."},
		{"HS256 keyed with the public key", hs256(header("HS256", jose.TypeSession), live(), ourPub)},
		{"ES256 header on the Ed25519 key", es256(header("ES256", jose.TypeSession), live())},
		{"expired, our key signed", edSign(header("EdDSA", jose.TypeSession), claims(now.Add(-2*time.Hour), now.Add(-time.Hour), ""))},
		{"exp a string, our key signed", edSign(header("EdDSA", jose.TypeSession), fmt.Sprintf(`{"iss":"sessiond","exp":"9999999999","iat":%d,"jti":%q}`, now.Unix()-60, uuid.NewString()))},
		{"tampered payload", tamper(s.open(t, "3600"))},
		{"typ JWT, our key signed", edSign(header("EdDSA", "JWT"), live())},
		{"typ missing, our key signed", edSign(fmt.Sprintf(`{"alg":"EdDSA","kid":%q}`, kid), live())},
		{"oversized, our key signed", oversized},
	}
	for _, tt := range forged {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.call(t, "session.verify_session_token", tt.tok); got != `{"active":false}` {
				t.Errorf("verify = %s, want {\"active\":false}", got)
			}
			if got := s.call(t, "session.close_session", tt.tok); got != "true" {
				t.Errorf("close = %s, want true", got)
			}
			if n, err := s.store.Len(ctx); err != nil || n != 0 {
				t.Errorf("store Len() = %d, %v, want 0: a forged token was written", n, err)
			}
		})
	}

	t.Run("closed token replayed", func(t *testing.T) {
		tok := s.open(t, "3600")
		if got := s.call(t, "session.close_session", tok); got != "true" {
			t.Fatalf("close = %s, want true", got)
		}
		for range 2 {
			if got := s.call(t, "session.verify_session_token", tok); got != `{"active":false}` {
				t.Errorf("verify(closed) = %s, want {\"active\":false}", got)
			}
			if got := s.call(t, "session.close_session", tok); got != "true" {
				t.Errorf("close(closed) = %s, want true", got)
			}
		}
		if n, err := s.store.Len(ctx); err != nil || n != 1 {
			t.Errorf("store Len() = %d, %v, want 1: one entry however often the token is closed", n, err)
		}
	})
	if got := s.call(t, "session.verify_session_token", control); got != `{"active":true}` {
		t.Errorf("verify(control) at the end = %s, want active", got)
	}
}
