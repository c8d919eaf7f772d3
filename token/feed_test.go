package token_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

// feedT0 is the time the revocation-document tests run at.
var feedT0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// feedSigner is one generated key as issue.SigningKeys.
type feedSigner struct{ key *keys.Key }

func (s feedSigner) SigningKey() (string, string, crypto.Signer, error) {
	return s.key.ID, string(s.key.Algorithm), s.key.Signer(), nil
}

func newFeedSigner(tb testing.TB, alg keys.Algorithm) feedSigner {
	tb.Helper()
	k, err := keys.Generate(alg, 0, feedT0, feedT0)
	if err != nil {
		tb.Fatal(err)
	}
	return feedSigner{k}
}

// feedJWKS is the JWK Set of the signers' public keys.
func feedJWKS(tb testing.TB, signers ...feedSigner) *token.JWKS {
	tb.Helper()
	var pub []token.PublicKey
	for _, s := range signers {
		pub = append(pub, token.PublicKey{ID: s.key.ID, Algorithm: string(s.key.Algorithm), Key: s.key.Public()})
	}
	data, err := issue.MarshalJWKS(pub)
	if err != nil {
		tb.Fatal(err)
	}
	set, err := token.ParseJWKS(data)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// feedList is a list of n random ids issued at iat, fresh for 5 minutes.
func feedList(n int, iat time.Time) *token.RevocationList {
	l := &token.RevocationList{
		Issuer:     token.DefaultIssuer,
		IssuedAt:   iat,
		FreshUntil: iat.Add(5 * time.Minute),
		Epoch:      "epoch-1",
		Seq:        uint64(n),
		Snapshot:   true,
	}
	for i := range n {
		l.Revoked = append(l.Revoked, token.Revoked{ID: uuid.New(), Expires: iat.Add(time.Duration(i+1) * time.Hour)})
	}
	return l
}

func feedSign(tb testing.TB, s issue.SigningKeys, l *token.RevocationList) string {
	tb.Helper()
	doc, err := issue.SignRevocations(s, l)
	if err != nil {
		tb.Fatalf("SignRevocations() error = %v", err)
	}
	return string(doc)
}

func feedParseOpts() []token.Option {
	return []token.Option{token.WithClock(func() time.Time { return feedT0.Add(time.Second) })}
}

func TestSignParseRevocations(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.EdDSA, keys.ES256, keys.RS256} {
		t.Run(string(alg), func(t *testing.T) {
			s := newFeedSigner(t, alg)
			want := feedList(3, feedT0)
			want.Since, want.Seq, want.Snapshot = 7, 10, false
			want.Retain = 90*time.Second + 500*time.Millisecond // signed as 90 s
			doc := feedSign(t, s, want)

			header, _, _ := strings.Cut(doc, ".")
			raw, _ := base64.RawURLEncoding.DecodeString(header)
			if got := fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"revocations+jwt"}`, alg, s.key.ID); string(raw) != got {
				t.Errorf("header = %s, want %s", raw, got)
			}

			got, err := token.NewVerifier(feedJWKS(t, s), feedParseOpts()...).ParseRevocations(context.Background(), doc)
			if err != nil {
				t.Fatalf("ParseRevocations() error = %v", err)
			}
			if got.KeyID != s.key.ID || got.Issuer != want.Issuer || !got.IssuedAt.Equal(want.IssuedAt) ||
				!got.FreshUntil.Equal(want.FreshUntil) || got.Epoch != want.Epoch || got.Seq != 10 ||
				got.Since != 7 || got.Snapshot || got.Retain != 90*time.Second {
				t.Errorf("ParseRevocations() = %+v, want %+v", got, want)
			}
			// SignRevocations sorted want.Revoked in place.
			if !slices.IsSortedFunc(want.Revoked, func(a, b token.Revoked) int { return strings.Compare(string(a.ID[:]), string(b.ID[:])) }) {
				t.Errorf("SignRevocations left the entries unsorted")
			}
			if !slices.EqualFunc(got.Revoked, want.Revoked, func(a, b token.Revoked) bool { return a.ID == b.ID && a.Expires.Equal(b.Expires) }) {
				t.Errorf("Revoked = %v, want %v", got.Revoked, want.Revoked)
			}

			// Any JOSE library can check it: golang-jwt's own parser here.
			if _, err := jwt.Parse(doc, func(*jwt.Token) (any, error) { return s.key.Public(), nil },
				jwt.WithValidMethods([]string{string(alg)}), jwt.WithTimeFunc(func() time.Time { return feedT0 })); err != nil {
				t.Errorf("jwt.Parse() error = %v", err)
			}
		})
	}
}

func TestSignRevocationsRefuses(t *testing.T) {
	s := newFeedSigner(t, keys.EdDSA)
	id := uuid.New()
	tests := []struct {
		name   string
		change func(*token.RevocationList)
	}{
		{"fresh until not after iat", func(l *token.RevocationList) { l.FreshUntil = l.IssuedAt }},
		{"snapshot with since", func(l *token.RevocationList) { l.Since = 1 }},
		{"since after seq", func(l *token.RevocationList) { l.Snapshot, l.Since, l.Seq = false, 5, 4 }},
		{"negative retain", func(l *token.RevocationList) { l.Retain = -time.Second }},
		{"duplicate id", func(l *token.RevocationList) {
			l.Revoked = []token.Revoked{{ID: id, Expires: feedT0}, {ID: id, Expires: feedT0}}
		}},
		{"expiry before 1970", func(l *token.RevocationList) { l.Revoked[0].Expires = time.Unix(0, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := feedList(2, feedT0)
			tt.change(l)
			if doc, err := issue.SignRevocations(s, l); err == nil {
				t.Errorf("SignRevocations() = %.40s…, want an error", doc)
			}
		})
	}
}

// craft signs claims under header with key, as an attacker holding a key
// (or a confused issuer) could.
func feedCraft(tb testing.TB, s feedSigner, header map[string]any, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(jwt.GetSigningMethod(string(s.key.Algorithm)), claims)
	t.Header["kid"] = s.key.ID
	t.Header["typ"] = jose.TypeRevocations
	for k, v := range header {
		if v == nil {
			delete(t.Header, k)
		} else {
			t.Header[k] = v
		}
	}
	doc, err := t.SignedString(rawPrivateKey(tb, s.key))
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// revokedList encodes a binary revoked list by hand.
func feedRevoked(count uint64, entries ...any) string {
	b := binary.AppendUvarint(nil, count)
	for _, e := range entries {
		switch e := e.(type) {
		case uuid.UUID:
			b = append(b, e[:]...)
		case uint64:
			b = binary.AppendUvarint(b, e)
		case []byte:
			b = append(b, e...)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func feedClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "sessiond", "iat": feedT0.Unix(), "fresh_until": feedT0.Add(time.Minute).Unix(),
		"epoch": "e", "seq": 3, "since": 0, "snapshot": true, "revoked": feedRevoked(0),
	}
}

func feedWith(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	c = maps.Clone(c)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func TestParseRevocationsRefuses(t *testing.T) {
	ctx := context.Background()
	s := newFeedSigner(t, keys.EdDSA)
	es := newFeedSigner(t, keys.ES256)
	stranger := newFeedSigner(t, keys.EdDSA)
	set := feedJWKS(t, s, es)
	good := feedSign(t, s, feedList(2, feedT0))
	lo, hi := uuid.UUID{1}, uuid.UUID{2}

	sessionToken, _, err := issue.New(s, issue.WithClock(func() time.Time { return feedT0 })).Issue(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	// flip changes one character in the middle to another base64url
	// character (flipping a bit could make it no base64 at all).
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)/2] == 'A' {
			b[len(b)/2] = 'B'
		} else {
			b[len(b)/2] = 'A'
		}
		return string(b)
	}
	// tamper changes the seq of a payload, keeping it valid JSON.
	tamper := func(payload string) string {
		raw, _ := base64.RawURLEncoding.DecodeString(payload)
		changed := strings.Replace(string(raw), `"seq":2`, `"seq":3`, 1)
		if changed == string(raw) {
			t.Fatalf("payload %s has no seq 2", raw)
		}
		return base64.RawURLEncoding.EncodeToString([]byte(changed))
	}
	// An ES256 document whose kid names the EdDSA key.
	confused := feedCraft(t, es, map[string]any{"kid": s.key.ID}, feedClaims())

	tests := []struct {
		name string
		doc  string
		want error
	}{
		{"session token", sessionToken, token.ErrType},
		{"no typ", feedCraft(t, s, map[string]any{"typ": nil}, feedClaims()), token.ErrType},
		{"tampered payload", parts[0] + "." + tamper(parts[1]) + "." + parts[2], token.ErrSignature},
		{"garbled payload", parts[0] + "." + flip(parts[1]) + "." + parts[2], token.ErrFeed},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), token.ErrSignature},
		{"no signature", parts[0] + "." + parts[1] + ".", token.ErrSignature},
		{"unknown key", feedSign(t, stranger, feedList(1, feedT0)), token.ErrUnknownKey},
		{"no kid", feedCraft(t, s, map[string]any{"kid": nil}, feedClaims()), token.ErrUnknownKey},
		{"algorithm of another key", confused, token.ErrAlgorithm},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+s.key.ID+`","typ":"revocations+jwt"}`)) + "." + parts[1] + ".", token.ErrSignature},
		{"crit", feedCraft(t, s, map[string]any{"crit": []string{"exp"}}, feedClaims()), token.ErrMalformed},
		{"wrong issuer", feedCraft(t, s, nil, feedWith(feedClaims(), "iss", "other")), token.ErrIssuer},
		{"issued in the future", feedCraft(t, s, nil, feedWith(feedClaims(), "iat", feedT0.Add(time.Hour).Unix(), "fresh_until", feedT0.Add(2*time.Hour).Unix())), token.ErrNotYetValid},
		{"no iat", feedCraft(t, s, nil, feedWith(feedClaims(), "iat", nil)), token.ErrMalformed},
		{"no fresh_until", feedCraft(t, s, nil, feedWith(feedClaims(), "fresh_until", nil)), token.ErrMalformed},
		{"fresh_until not after iat", feedCraft(t, s, nil, feedWith(feedClaims(), "fresh_until", feedT0.Unix())), token.ErrMalformed},
		{"no epoch", feedCraft(t, s, nil, feedWith(feedClaims(), "epoch", nil)), token.ErrMalformed},
		{"no revoked list", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", nil)), token.ErrMalformed},
		{"snapshot with since", feedCraft(t, s, nil, feedWith(feedClaims(), "since", 1)), token.ErrMalformed},
		{"since after seq", feedCraft(t, s, nil, feedWith(feedClaims(), "snapshot", false, "since", 4)), token.ErrMalformed},
		{"seq not a number", feedCraft(t, s, nil, feedWith(feedClaims(), "seq", "3")), token.ErrMalformed},
		{"negative retain", feedCraft(t, s, nil, feedWith(feedClaims(), "retain", -1)), token.ErrMalformed},
		{"fractional retain", feedCraft(t, s, nil, feedWith(feedClaims(), "retain", 1.5)), token.ErrMalformed},
		{"retain a string", feedCraft(t, s, nil, feedWith(feedClaims(), "retain", "60")), token.ErrMalformed},
		{"retain past year 9999", feedCraft(t, s, nil, feedWith(feedClaims(), "retain", uint64(1)<<40)), token.ErrMalformed},
		{"revoked not base64url", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", "a+b/")), token.ErrMalformed},
		{"count beyond the data", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(2, lo, uint64(5)))), token.ErrMalformed},
		{"huge count", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(1<<62))), token.ErrMalformed},
		{"ids out of order", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(2, hi, uint64(5), lo, uint64(5)))), token.ErrMalformed},
		{"id twice", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(2, lo, uint64(5), lo, uint64(6)))), token.ErrMalformed},
		{"expiry zero", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(1, lo, uint64(0)))), token.ErrMalformed},
		{"expiry past year 9999", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(1, lo, uint64(1)<<40))), token.ErrMalformed},
		{"expiry not in its shortest form", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(1, lo, []byte{0xcb, 0x00}))), token.ErrMalformed},
		{"bytes after the list", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(1, lo, uint64(5), []byte{0}))), token.ErrMalformed},
		{"truncated entry", feedCraft(t, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(1, []byte{1, 2, 3}, make([]byte, 20)))), token.ErrMalformed},
		{"not a JWS", "hello", token.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := token.NewVerifier(set, feedParseOpts()...).ParseRevocations(ctx, tt.doc)
			if !errors.Is(err, tt.want) || !errors.Is(err, token.ErrFeed) {
				t.Fatalf("ParseRevocations() = %+v, %v; want an error matching %v and ErrFeed", l, err, tt.want)
			}
			if l != nil {
				t.Errorf("ParseRevocations() returned a list with an error")
			}
		})
	}
	t.Run("the good one parses", func(t *testing.T) {
		if _, err := token.NewVerifier(set, feedParseOpts()...).ParseRevocations(ctx, good); err != nil {
			t.Fatalf("ParseRevocations(good) = %v", err)
		}
		if _, err := token.NewVerifier(set, feedParseOpts()...).ParseRevocations(ctx, feedCraft(t, s, nil, feedClaims())); err != nil {
			t.Fatalf("ParseRevocations(crafted good) = %v", err)
		}
	})
	t.Run("issuer option", func(t *testing.T) {
		doc := feedCraft(t, s, nil, feedWith(feedClaims(), "iss", "other"))
		if _, err := token.NewVerifier(set, append(feedParseOpts(), token.WithIssuer("other"))...).ParseRevocations(ctx, doc); err != nil {
			t.Fatalf("ParseRevocations(WithIssuer) = %v", err)
		}
	})
}

// A revocation document is not a session token: the Verifier refuses it by
// its typ, whatever else it carries.
func TestVerifierRefusesRevocationDocument(t *testing.T) {
	s := newFeedSigner(t, keys.EdDSA)
	v := token.NewVerifier(feedJWKS(t, s), token.WithClock(func() time.Time { return feedT0 }))
	tests := map[string]string{
		"feed document": feedSign(t, s, feedList(1, feedT0)),
		// Even with every claim a session token needs.
		"with session claims": feedCraft(t, s, nil, jwt.MapClaims{
			"iss": "sessiond", "iat": feedT0.Unix(), "exp": feedT0.Add(time.Hour).Unix(), "jti": uuid.NewString(),
		}),
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(context.Background(), doc); !errors.Is(err, token.ErrType) {
				t.Errorf("Verify(revocation document) = %v, want %v", err, token.ErrType)
			}
		})
	}
}

func TestRevocationListJSON(t *testing.T) {
	// The payload is plain JSON with the documented members.
	s := newFeedSigner(t, keys.EdDSA)
	doc := feedSign(t, s, feedList(1, feedT0))
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(doc, ".")[1])
	var got map[string]any
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	members := []string{"iss", "iat", "fresh_until", "epoch", "seq", "since", "snapshot", "retain", "revoked"}
	for _, member := range members {
		if _, ok := got[member]; !ok {
			t.Errorf("payload %s lacks %q", payload, member)
		}
	}
	if len(got) != len(members) {
		t.Errorf("payload %s has %d members, want %d", payload, len(got), len(members))
	}
	raw, _ := base64.RawURLEncoding.DecodeString(got["revoked"].(string))
	if len(raw) != 1+16+5 {
		t.Errorf("revoked list of one id is %d bytes, want 22", len(raw))
	}
}

// BenchmarkSignRevocations signs a snapshot of a million ids and reports
// its size.
func BenchmarkSignRevocations(b *testing.B) {
	s := newFeedSigner(b, keys.EdDSA)
	l := feedList(1_000_000, feedT0)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		doc, err := issue.SignRevocations(s, l)
		if err != nil {
			b.Fatal(err)
		}
		size = len(doc)
	}
	b.ReportMetric(float64(size)/1e6, "MB/doc")
	b.ReportMetric(float64(size)/float64(len(l.Revoked)), "bytes/id")
}

// BenchmarkParseRevocations verifies and decodes a snapshot of a million
// ids: what a verifier pays to load one.
func BenchmarkParseRevocations(b *testing.B) {
	s := newFeedSigner(b, keys.EdDSA)
	doc := feedSign(b, s, feedList(1_000_000, feedT0))
	set := feedJWKS(b, s)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.NewVerifier(set, feedParseOpts()...).ParseRevocations(context.Background(), doc); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseRevocations feeds documents, genuine and broken, to the parser:
// it never panics, refuses with ErrFeed, and what it accepts is the
// signer's.
func FuzzParseRevocations(f *testing.F) {
	s := newFeedSigner(f, keys.EdDSA)
	set := feedJWKS(f, s)
	f.Add(feedSign(f, s, feedList(3, feedT0)))
	f.Add(feedCraft(f, s, nil, feedClaims()))
	f.Add(feedCraft(f, s, nil, feedWith(feedClaims(), "revoked", feedRevoked(2, uuid.UUID{2}, uint64(5), uuid.UUID{1}, uint64(5)))))
	f.Add(feedCraft(f, s, map[string]any{"typ": jose.TypeSession}, feedClaims()))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, doc string) {
		l, err := token.NewVerifier(set, feedParseOpts()...).ParseRevocations(context.Background(), doc)
		if err != nil {
			if !errors.Is(err, token.ErrFeed) || l != nil {
				t.Fatalf("ParseRevocations() = %v, %v; want nil and an error matching ErrFeed", l, err)
			}
			return
		}
		if l.KeyID != s.key.ID {
			t.Fatalf("accepted a document of key %q", l.KeyID)
		}
	})
}
