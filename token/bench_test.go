package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

func benchKeyring(b *testing.B) *keys.Keyring {
	b.Helper()
	ring, err := keys.OpenKeyring(filepath.Join(b.TempDir(), "keys.json"), keys.Policy{MaxTokenLifetime: 24 * time.Hour}, keys.KeyringOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return ring
}

// BenchmarkEd25519Verify is the floor under BenchmarkVerify: the one
// signature check over a token-sized message.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte(strings.Repeat("x", 190))
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

// BenchmarkEd25519Sign is the floor under BenchmarkIssue.
func BenchmarkEd25519Sign(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte(strings.Repeat("x", 190))
	for b.Loop() {
		ed25519.Sign(priv, msg)
	}
}

func BenchmarkIssue(b *testing.B) {
	iss := issue.New(benchKeyring(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := iss.Issue(time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify checks a token never seen before (cache off).
func BenchmarkVerify(b *testing.B) {
	ring := benchKeyring(b)
	tok, _, _ := issue.New(ring).Issue(time.Hour)
	v := token.NewVerifier(ring, token.WithCache(0))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRepeated checks a token that verified before.
func BenchmarkVerifyRepeated(b *testing.B) {
	ring := benchKeyring(b)
	tok, _, _ := issue.New(ring).Issue(time.Hour)
	v := token.NewVerifier(ring)
	ctx := context.Background()
	v.Verify(ctx, tok)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
