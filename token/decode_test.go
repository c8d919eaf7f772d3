package token_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/token"
)

// TestVerifySubjectEscapes verifies tokens whose subject the Issuer had to
// escape ('"' and '\') or that hold characters beyond ASCII: the strict
// decoder must read back exactly the subject that was signed.
func TestVerifySubjectEscapes(t *testing.T) {
	k := newAtkKeys(t)
	iss := issue.New(k.ring, issue.WithClock(atkClock))
	v := token.NewVerifier(k.ring, token.WithClock(atkClock), token.WithCache(0))
	for _, sub := range []string{`a"b`, `a\b`, `\"\\`, `"`, `\`, "é😀 ü", "a/b", "x\u2028y"} {
		tok, want, err := iss.IssueFor(sub, time.Hour)
		if err != nil {
			t.Fatalf("IssueFor(%q) error = %v", sub, err)
		}
		got, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("Verify(IssueFor(%q)) error = %v", sub, err)
		}
		if got != want || got.Subject != sub {
			t.Errorf("Verify(IssueFor(%q)) = %+v, want %+v", sub, got, want)
		}
	}
}
