package token_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"path/filepath"
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

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newKeyring(t *testing.T, c *clock) *keys.Keyring {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	ring, err := keys.OpenKeyring(path, keys.Policy{MaxTokenLifetime: 24 * time.Hour}, keys.KeyringOptions{Now: c.Now})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	return ring
}

// revocations is a RevocationChecker over a map, with an optional failure.
type revocations struct {
	revoked map[uuid.UUID]bool
	err     error
}

func (r *revocations) IsRevoked(_ context.Context, id uuid.UUID) (bool, error) {
	return r.revoked[id], r.err
}

func TestIssueVerify(t *testing.T) {
	c := &clock{t0}
	ring := newKeyring(t, c)
	iss := issue.New(ring, issue.WithClock(c.Now))
	tok, claims, err := iss.Issue(time.Hour)
	if err != nil {
		t.Fatalf("Issue() error = %v", err)
	}
	if claims.Issuer != token.DefaultIssuer || !claims.Expires.Equal(t0.Add(time.Hour)) || claims.ID.Version() != 4 {
		t.Errorf("Issue() claims = %+v", claims)
	}
	header, _, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(header)
	if kid, _, _, _ := ring.SigningKey(); string(raw) != `{"alg":"EdDSA","kid":"`+kid+`","typ":"session+jwt"}` {
		t.Errorf("header = %s", raw)
	}
	ctx := context.Background()
	got, err := token.NewVerifier(ring, token.WithClock(c.Now)).Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	if got != claims {
		t.Errorf("Verify() = %+v, want %+v", got, claims)
	}

	rev := &revocations{revoked: map[uuid.UUID]bool{}}
	cases := []struct {
		name string
		at   time.Time
		v    *token.Verifier
		tok  string
		want error // nil: valid
	}{
		{"valid until just before exp", t0.Add(time.Hour - time.Second), token.NewVerifier(ring, token.WithClock(c.Now)), tok, nil},
		{"expired at exp", t0.Add(time.Hour), token.NewVerifier(ring, token.WithClock(c.Now)), tok, token.ErrExpired},
		{"leeway extends exp", t0.Add(time.Hour + 5*time.Second), token.NewVerifier(ring, token.WithLeeway(10*time.Second), token.WithClock(c.Now)), tok, nil},
		{"issued in the future", t0.Add(-time.Minute), token.NewVerifier(ring, token.WithClock(c.Now)), tok, token.ErrNotYetValid},
		{"leeway covers a skewed iat", t0.Add(-5 * time.Second), token.NewVerifier(ring, token.WithLeeway(10*time.Second), token.WithClock(c.Now)), tok, nil},
		{"wrong issuer", t0, token.NewVerifier(ring, token.WithIssuer("other"), token.WithClock(c.Now)), tok, token.ErrIssuer},
		{"tampered payload", t0, token.NewVerifier(ring, token.WithClock(c.Now)), tamper(tok), token.ErrSignature},
		{"truncated signature", t0, token.NewVerifier(ring, token.WithClock(c.Now)), tok[:len(tok)-4], token.ErrInvalid}, // malformed or bad signature, by the last characters
		{"too large", t0, token.NewVerifier(ring, token.WithClock(c.Now)), tok + strings.Repeat("A", token.MaxSize), token.ErrTooLarge},
		{"garbage", t0, token.NewVerifier(ring, token.WithClock(c.Now)), "00890640-ec03-4663-82ce-456ea993807d", token.ErrMalformed},
		{"empty", t0, token.NewVerifier(ring, token.WithClock(c.Now)), "", token.ErrMalformed},
		{"not revoked", t0, token.NewVerifier(ring, token.WithRevocation(rev), token.WithClock(c.Now)), tok, nil},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c.now = tt.at
			_, err := tt.v.Verify(ctx, tt.tok)
			if tt.want == nil && err != nil || tt.want != nil && !(errors.Is(err, tt.want) && errors.Is(err, token.ErrInvalid)) {
				t.Errorf("Verify() error = %v, want %v", err, tt.want)
			}
		})
	}

	c.now = t0
	t.Run("revoked", func(t *testing.T) {
		rev.revoked[claims.ID] = true
		defer delete(rev.revoked, claims.ID)
		if _, err := token.NewVerifier(ring, token.WithRevocation(rev), token.WithClock(c.Now)).Verify(ctx, tok); !errors.Is(err, token.ErrRevoked) {
			t.Errorf("Verify() error = %v, want ErrRevoked", err)
		}
	})
	t.Run("revocation unknown fails closed", func(t *testing.T) {
		failing := &revocations{err: errors.New("disk on fire")}
		_, err := token.NewVerifier(ring, token.WithRevocation(failing), token.WithClock(c.Now)).Verify(ctx, tok)
		if err == nil || errors.Is(err, token.ErrInvalid) {
			t.Errorf("Verify() error = %v, want an error that is not ErrInvalid", err)
		}
	})
}

// tamper changes the payload and keeps the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"iss":"sessiond"`, `"iss":"sessionx"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestVerifyPinsAlgorithmAndType(t *testing.T) {
	c := &clock{t0}
	ring := newKeyring(t, c)
	kid, _, signer, _ := ring.SigningKey()
	v := token.NewVerifier(ring, token.WithClock(c.Now))
	claims := jwt.RegisteredClaims{
		ID: uuid.NewString(), Issuer: token.DefaultIssuer,
		IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
	}
	sign := func(method jwt.SigningMethod, key any, header map[string]any) string {
		t.Helper()
		tk := jwt.NewWithClaims(method, claims)
		for k, v := range header {
			tk.Header[k] = v
		}
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pub := signer.Public().(ed25519.PublicKey)
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"control: well formed", sign(jwt.SigningMethodEdDSA, signer, map[string]any{"kid": kid, "typ": jose.TypeSession}), nil},
		{"no typ", sign(jwt.SigningMethodEdDSA, signer, map[string]any{"kid": kid, "typ": nil}), token.ErrType},
		{"other typ", sign(jwt.SigningMethodEdDSA, signer, map[string]any{"kid": kid, "typ": "JWT"}), token.ErrType},
		{"no kid", sign(jwt.SigningMethodEdDSA, signer, map[string]any{"typ": jose.TypeSession}), token.ErrUnknownKey},
		{"unknown kid", sign(jwt.SigningMethodEdDSA, signer, map[string]any{"kid": "../../etc/passwd", "typ": jose.TypeSession}), token.ErrUnknownKey},
		{"crit header", sign(jwt.SigningMethodEdDSA, signer, map[string]any{"kid": kid, "typ": jose.TypeSession, "crit": []string{"exp"}}), token.ErrMalformed},
		{"HS256 with public key bytes", sign(jwt.SigningMethodHS256, append([]byte(nil), pub...), map[string]any{"kid": kid, "typ": jose.TypeSession}), token.ErrSignature},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid, "typ": jose.TypeSession}), token.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.tok)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify() error = %v, want %v", err, tt.want)
			}
		})
	}
}

// encoding/base64 skips line breaks even in strict mode; a token with one
// in any segment is another string for the same signature and must be
// refused. FuzzVerify found the signature case.
func TestVerifyRefusesLineBreaks(t *testing.T) {
	c := &clock{t0}
	ring := newKeyring(t, c)
	tok, _, err := issue.New(ring, issue.WithClock(c.Now)).Issue(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := token.NewVerifier(ring, token.WithClock(c.Now))
	dots := []int{strings.IndexByte(tok, '.'), strings.LastIndexByte(tok, '.')}
	for _, at := range []int{dots[0] / 2, (dots[0] + dots[1]) / 2, (dots[1] + len(tok)) / 2, len(tok) - 1} {
		for _, nl := range []string{"\r", "\n", "\r\n"} {
			bad := tok[:at] + nl + tok[at:]
			// In the signed part the signature no longer matches; in the
			// signature segment it must not decode.
			want := token.ErrInvalid
			if at > dots[1] {
				want = token.ErrMalformed
			}
			if _, err := v.Verify(context.Background(), bad); !errors.Is(err, want) {
				t.Errorf("Verify(token with %q at %d) = %v, want %v", nl, at, err, want)
			}
		}
	}
}
