package token_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/token"
)

// The "sub" claim, signed with the verifier's own key: a valid subject comes
// back in Claims.Subject; anything else makes the whole token malformed,
// since encoding/json alone would take null for no subject and turn invalid
// UTF-8 into U+FFFD.
func TestVerifySubject(t *testing.T) {
	k := newAtkKeys(t)
	v := token.NewVerifier(k.ring, token.WithClock(atkClock))
	ctx := context.Background()
	sign := func(sub string) string {
		return atkSign(t, "EdDSA", k.ed, atkHeader("EdDSA", k.edKID), atkClaimsWith("1b4e28ba-2fa1-4d2e-8f3c-6b9a1c2d3e4f", `"sub":`+sub))
	}
	long := strings.Repeat("é", token.MaxSubjectSize/2) // 256 bytes
	for _, tt := range []struct{ name, sub, want string }{
		{"ascii", `"alice@example.com"`, "alice@example.com"},
		{"256 bytes", `"` + long + `"`, long},
		{"escaped quote and backslash", `"a\"b\\c"`, `a"b\c`},
		{"unicode escape", `"Zo\u00eb"`, "Zoë"},
		{"surrogate pair", `"\ud83d\ude00"`, "😀"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(ctx, sign(tt.sub))
			if err != nil {
				t.Fatalf("Verify() error = %v, want nil", err)
			}
			if c.Subject != tt.want {
				t.Errorf("Verify().Subject = %q, want %q", c.Subject, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, sub string }{
		{"empty", `""`},
		{"257 bytes", `"` + long + `x"`},
		{"null", `null`},
		{"number", `42`},
		{"object", `{}`},
		{"array", `["alice"]`},
		{"boolean", `true`},
		{"NUL escape", `"a\u0000b"`},
		{"newline escape", `"a\nb"`},
		{"DEL", "\"a\x7fb\""},
		{"C1 control", `"a\u0085b"`},
		{"invalid UTF-8", "\"a\xffb\""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(ctx, sign(tt.sub))
			if !errors.Is(err, token.ErrMalformed) || !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Verify() = %+v, %v, want ErrMalformed", c, err)
			}
		})
	}
}

// IssueFor puts the subject in "sub", Verify gives it back; Issue and
// IssueFor("") write no "sub" at all; a subject the verifier would refuse
// is never signed.
func TestIssueForSubject(t *testing.T) {
	c := &clock{t0}
	ring := newKeyring(t, c)
	iss := issue.New(ring, issue.WithClock(c.Now))
	v := token.NewVerifier(ring, token.WithClock(c.Now))
	ctx := context.Background()
	for _, subject := range []string{"alice@example.com", `q"uo\te`, strings.Repeat("ü", 128), "\u2028 line separator"} {
		tok, claims, err := iss.IssueFor(subject, time.Hour)
		if err != nil {
			t.Fatalf("IssueFor(%q) error = %v", subject, err)
		}
		if claims.Subject != subject {
			t.Errorf("IssueFor(%q) claims.Subject = %q", subject, claims.Subject)
		}
		got, err := v.Verify(ctx, tok)
		if err != nil || got != claims {
			t.Errorf("Verify(IssueFor(%q)) = %+v, %v, want %+v", subject, got, err, claims)
		}
	}
	for _, tok := range []func() (string, token.Claims, error){
		func() (string, token.Claims, error) { return iss.Issue(time.Hour) },
		func() (string, token.Claims, error) { return iss.IssueFor("", time.Hour) },
	} {
		s, claims, err := tok()
		if err != nil {
			t.Fatal(err)
		}
		_, payload, _ := atkParts(s)
		raw, _ := atkB64.DecodeString(payload)
		if strings.Contains(string(raw), `"sub"`) || claims.Subject != "" {
			t.Errorf("claims = %s (Subject %q), want no sub", raw, claims.Subject)
		}
	}
	for _, bad := range []string{strings.Repeat("x", 257), "a\x00b", "\xff", "tab\there"} {
		if tok, _, err := iss.IssueFor(bad, time.Hour); err == nil {
			t.Errorf("IssueFor(%q) = %s, nil, want an error", bad, tok)
		}
	}
}
