//go:build linux

package main

// The benchmarks behind the report's limits (limits.go runs them pinned);
// go test -run '^$' -bench . -cpu 1 ./cmd/sessiond-bench runs them alone.

import (
	"context"
	"crypto"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/base64"
	"flag"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/token"
)

var benchConns = flag.Int("bench.conns", 64, "goroutines of BenchmarkBadgerRevoke")

// limitsToken returns a fresh token with its issuer and key ring, and the
// signing input, signature, public key and signer that raw Ed25519 works on.
func limitsToken(tb testing.TB) (tok string, iss *issue.Issuer, ring *keys.Keyring, msg, sig []byte, pub ed25519.PublicKey, signer crypto.Signer) {
	tb.Helper()
	iss, ring, err := newIssuer(tb.TempDir())
	var claims token.Claims
	if err == nil {
		tok, claims, err = iss.Issue(time.Hour)
	}
	dot := strings.LastIndexByte(tok, '.')
	if err == nil {
		sig, err = base64.RawURLEncoding.DecodeString(tok[dot+1:])
	}
	if err == nil {
		_, _, signer, err = ring.SigningKey()
	}
	var key crypto.PublicKey
	if err == nil {
		_, key, err = ring.VerificationKey(context.Background(), claims.KeyID)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return tok, iss, ring, []byte(tok[:dot]), sig, key.(ed25519.PublicKey), signer
}

func benchSign(b *testing.B, parallel bool) {
	_, _, _, msg, _, _, signer := limitsToken(b)
	op := func() {
		if _, err := signer.Sign(nil, msg, crypto.Hash(0)); err != nil {
			b.Error(err)
		}
	}
	loop(b, parallel, op)
}

func benchVerify(b *testing.B, parallel bool) {
	_, _, _, msg, sig, pub, _ := limitsToken(b)
	loop(b, parallel, func() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Error("bad signature")
		}
	})
}

// loop runs op b.N times, in parallel or on this goroutine; on this
// goroutine it also reports the process's CPU time per op (cpu-ns/op),
// which holds still when other processes share the CPU.
func loop(b *testing.B, parallel bool, op func()) {
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op()
			}
		})
		return
	}
	start := selfCPU()
	for b.Loop() {
		op()
	}
	b.ReportMetric((selfCPU()-start)*1e9/float64(b.N), "cpu-ns/op")
}

func BenchmarkEd25519Sign(b *testing.B)           { benchSign(b, false) }
func BenchmarkEd25519SignParallel(b *testing.B)   { benchSign(b, true) }
func BenchmarkEd25519Verify(b *testing.B)         { benchVerify(b, false) }
func BenchmarkEd25519VerifyParallel(b *testing.B) { benchVerify(b, true) }

func benchTokenVerify(b *testing.B, opts ...token.Option) {
	tok, _, ring, _, _, _, _ := limitsToken(b)
	v := token.NewVerifier(ring, opts...)
	ctx := context.Background()
	v.Verify(ctx, tok)
	b.ReportAllocs()
	loop(b, false, func() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkTokenVerify is a verification without the cache.
func BenchmarkTokenVerify(b *testing.B) { benchTokenVerify(b, token.WithCache(0)) }

// BenchmarkTokenVerifyRepeated verifies a token verified before.
func BenchmarkTokenVerifyRepeated(b *testing.B) { benchTokenVerify(b) }

func BenchmarkTokenIssue(b *testing.B) {
	_, iss, _, _, _, _, _ := limitsToken(b)
	b.ReportAllocs()
	loop(b, false, func() {
		if _, _, err := iss.Issue(time.Hour); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkBadgerRevoke is durable revocations from -bench.conns
// goroutines (run it with -cpu 1) into a fresh store.
func BenchmarkBadgerRevoke(b *testing.B) {
	store, err := revocation.OpenBadger(b.TempDir(), revocation.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	until := time.Now().Add(tokenLifetime)
	b.SetParallelism(*benchConns) // × GOMAXPROCS, 1
	b.RunParallel(func(pb *testing.PB) {
		r := newRand()
		for pb.Next() {
			if err := store.Revoke(context.Background(), randomID(r), until); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// randomID returns a random version 4 UUID from r (cheaper than uuid.New's
// crypto/rand, which would dominate a write benchmark).
func randomID(r *rand.ChaCha8) (id uuid.UUID) {
	r.Read(id[:])
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
	return id
}

func newRand() *rand.ChaCha8 {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

func TestParseBench(t *testing.T) {
	ns, allocs := parseBench("goos: linux\nBenchmarkTokenIssue  \t    4522\t     64083 ns/op\t     52695 cpu-ns/op\t     992 B/op\t       5 allocs/op\n" +
		"BenchmarkEd25519VerifyParallel-2   \t    6801\t     45855.5 ns/op\t       1 B/op\t       0 allocs/op\nPASS\n")
	if ns["TokenIssue"] != 52695 || allocs["TokenIssue"] != 5 || ns["Ed25519VerifyParallel"] != 45855.5 || len(ns) != 2 {
		t.Errorf("parseBench = %v, %v; want TokenIssue 52695 ns (CPU), 5 allocs, Ed25519VerifyParallel 45855.5 ns", ns, allocs)
	}
}
