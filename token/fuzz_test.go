package token_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/token"
)

// fuzzReasons are the precise reasons; every invalid token has one of them.
var fuzzReasons = []error{
	token.ErrMalformed, token.ErrTooLarge, token.ErrType, token.ErrUnknownKey,
	token.ErrAlgorithm, token.ErrSignature, token.ErrExpired, token.ErrNotYetValid,
	token.ErrIssuer, token.ErrRevoked,
}

// FuzzVerify feeds arbitrary strings to a Verifier over a keyring, seeded
// with every token of the attack table (TestVerifyAttacks), controls
// included. Verify must not panic; it may accept only a token this test
// signed itself, byte for byte; every error must be ErrInvalid with exactly
// one precise reason, since with a keyring as the key source the validity
// of a token is never unknown; and a second Verify of the same string (a
// cache hit, for a valid token) must give the same answer.
//
// Mutating a whole token almost never keeps its signature valid, so the
// input is also tried as the signature segment of three valid tokens
// (EdDSA, ES256, RS256), seeded with their real signatures: that is where
// lenient base64, trailing data or a malleable signature would show.
//
// go test runs the seeds; go test -run '^$' -fuzz '^FuzzVerify$' ./token/
// explores from them, and what it finds goes to testdata/fuzz/FuzzVerify.
// Add -fuzzminimizetime 5s for a short run: minimizing each new input (a
// token of a few hundred bytes) otherwise takes up to a minute, during
// which nothing new is tried.
func FuzzVerify(f *testing.F) {
	// The fixed jku URL keeps the seeds the same in every process.
	suite := newAtkSuite(f, "https://attacker.example/jwks.json")
	v := token.NewVerifier(suite.keys.ring, token.WithClock(atkClock))
	signed := map[string]bool{}
	for _, s := range suite.issued {
		signed[s] = true
	}
	var prefixes []string // header.claims. of valid tokens
	for _, tt := range suite.cases {
		// The Issuer's tokens differ from process to process: the
		// coordinator's would be valid but unknown in a worker. Seeds of
		// more than 1 KB (the size limit's cases) would only slow the
		// fuzzer down: minimizing a long input can take a minute.
		if !signed[tt.tok] && len(tt.tok) <= 1024 {
			f.Add(tt.tok)
		}
		signed[tt.tok] = true
		switch tt.name {
		case "control: hand-built EdDSA", "control: ES256 under the keyring", "control: RS256 under the keyring":
			i := strings.LastIndexByte(tt.tok, '.')
			prefixes = append(prefixes, tt.tok[:i+1])
			f.Add(tt.tok[i+1:])
		}
	}
	if len(prefixes) != 3 {
		f.Fatalf("found %d of the 3 controls to splice signatures into", len(prefixes))
	}
	for _, s := range []string{".", "..", "...", "a.b.c", "e30.e30.", "eyJ.eyJ.AA", "\x00.\xff.\u2028"} {
		f.Add(s)
	}

	ctx := context.Background()
	check := func(t *testing.T, s string) {
		got, err := v.Verify(ctx, s)
		again, err2 := v.Verify(ctx, s)
		if again != got || (err == nil) != (err2 == nil) {
			t.Fatalf("Verify(%q) = %+v, %v; again %+v, %v", s, got, err, again, err2)
		}
		if err == nil {
			if !signed[s] {
				t.Fatalf("Verify(%q) = %+v, nil: accepted a token this test did not sign", s, got)
			}
			return
		}
		if got != (token.Claims{}) {
			t.Errorf("Verify(%q) = %+v with error %v, want zero claims", s, got, err)
		}
		if !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("Verify(%q) error = %v, want ErrInvalid", s, err)
		}
		var reasons []error
		for _, r := range fuzzReasons {
			if errors.Is(err, r) {
				reasons = append(reasons, r)
			}
			if errors.Is(err2, r) != errors.Is(err, r) {
				t.Fatalf("Verify(%q) again: error %v, first %v", s, err2, err)
			}
		}
		if len(reasons) != 1 {
			t.Fatalf("Verify(%q) error = %v matches reasons %v, want exactly one", s, err, reasons)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		check(t, s)
		for _, p := range prefixes {
			check(t, p+s)
		}
	})
}
