//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/token"
)

// TestFloodTokens checks that the flood's forged tokens are what the server
// must verify in full: its header, claims it would accept, a signature
// with a canonical S, rejected only for the signature (the same bytes
// signed with the real key verify); and that the garbage is rejected too.
func TestFloodTokens(t *testing.T) {
	real, _, ring, _, _, _, signer := limitsToken(t)
	v := token.NewVerifier(ring, token.WithCache(0))
	ctx := context.Background()
	if _, err := v.Verify(ctx, real); err != nil {
		t.Fatalf("Verify(real token) = %v, want nil", err)
	}

	toks, err := floodTokens(real, 96)
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(real, ".")
	seen := map[string]bool{}
	var forged, garbage int
	for i, ft := range toks {
		if seen[ft.tok] {
			t.Errorf("token %d repeats", i)
		}
		seen[ft.tok] = true
		if strings.ContainsAny(ft.tok, "\"\\") || strings.IndexFunc(ft.tok, func(r rune) bool { return r < 0x20 || r >= 0x7f }) >= 0 {
			t.Errorf("token %d %q needs JSON escaping; verifyBody does not escape", i, ft.tok)
		}
		_, err := v.Verify(ctx, ft.tok)
		if !errors.Is(err, token.ErrInvalid) {
			t.Errorf("Verify(flood token %d %.60q) = %v, want token.ErrInvalid", i, ft.tok, err)
		}
		if !ft.forged {
			garbage++
			continue
		}
		forged++
		parts := strings.Split(ft.tok, ".")
		if len(parts) != 3 || parts[0] != header {
			t.Fatalf("forged token %d = %.80q, want the real header and three parts", i, ft.tok)
		}
		if !errors.Is(err, token.ErrSignature) {
			t.Errorf("Verify(forged token %d) = %v, want token.ErrSignature", i, err)
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(sig) != ed25519.SignatureSize || sig[63]&0xf0 != 0 {
			t.Errorf("forged signature %d = %x, %v; want 64 bytes with S < 2^252", i, sig, err)
		}
		input := parts[0] + "." + parts[1]
		realSig, err := signer.Sign(nil, []byte(input), crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		signed := input + "." + base64.RawURLEncoding.EncodeToString(realSig)
		if _, err := v.Verify(ctx, signed); err != nil {
			t.Errorf("Verify(forged token %d signed with the real key) = %v, want nil: its header or claims are wrong", i, err)
		}
	}
	if forged != 84 || garbage != 12 {
		t.Errorf("forged, garbage = %d, %d; want 84, 12", forged, garbage)
	}
}

// fakeSessions answers a soakSource's requests like sessiond, from a map;
// with forgetCloses it answers close true and forgets it, the bug the soak
// must catch.
type fakeSessions struct {
	n            int
	closed       map[string]bool
	forgetCloses bool
}

func (f *fakeSessions) reply(body []byte) []byte {
	tokenOf := func(prefix string) string {
		return strings.TrimSuffix(strings.TrimPrefix(string(body), prefix), tokenSuffix)
	}
	switch {
	case bytes.Equal(body, openBody):
		f.n++
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","result":{"access_token":"aaa.bbb.c%d","expires_in":%d},"id":1}`, f.n, openLifetime)
	case strings.HasPrefix(string(body), closePrefix):
		if !f.forgetCloses {
			f.closed[tokenOf(closePrefix)] = true
		}
		return []byte(`{"jsonrpc":"2.0","result":true,"id":1}`)
	case strings.HasPrefix(string(body), verifyPrefix):
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","result":{"active":%t},"id":1}`, !f.closed[tokenOf(verifyPrefix)])
	}
	return []byte(`{"jsonrpc":"2.0","error":{"code":-32601,"message":"method not found"},"id":1}`)
}

func TestSoakSource(t *testing.T) {
	drive := func(t *testing.T, f *fakeSessions, requests int, noClose bool) (*sessionSource, []error) {
		t.Helper()
		var stop atomic.Bool
		s := &sessionSource{want: 4, checkClosed: true, noClose: noClose, stop: &stop}
		var errs []error
		for range requests {
			body, ok := s.next(nil)
			if !ok {
				t.Fatal("next() = _, false; want a request")
			}
			if err := s.check(f.reply(body)); err != nil {
				errs = append(errs, err)
			}
		}
		stop.Store(true)
		if _, ok := s.next(nil); ok {
			t.Error("next() after stop = _, true; want false")
		}
		return s, errs
	}

	t.Run("sessiond", func(t *testing.T) {
		s, errs := drive(t, &fakeSessions{closed: map[string]bool{}}, 20*100, false)
		if len(errs) > 0 {
			t.Fatalf("%d errors, the first %v; want none", len(errs), errs[0])
		}
		// 4 opens to start, then in every 20: 1 open, 1 close, 2 verify
		// of closed sessions, 16 of live ones.
		for k, want := range map[sessionKind][2]uint64{
			kindOpen: {100, 104}, kindClose: {99, 100}, kindVerifyClosed: {197, 200}, kindVerify: {1596, 1600},
		} {
			if got := s.sentN[k]; got < want[0] || got > want[1] {
				t.Errorf("%v requests = %d, want %d to %d", k, got, want[0], want[1])
			}
		}
		if len(s.live) != 4 || len(s.closed) != closedKeep {
			t.Errorf("live, closed sessions = %d, %d; want 4, %d", len(s.live), len(s.closed), closedKeep)
		}
	})

	t.Run("no closes", func(t *testing.T) {
		s, errs := drive(t, &fakeSessions{closed: map[string]bool{}}, 20*100, true)
		if len(errs) > 0 {
			t.Fatalf("%d errors, the first %v; want none", len(errs), errs[0])
		}
		if s.sentN[kindClose] != 0 || s.sentN[kindVerifyClosed] != 0 || len(s.live) != 4 {
			t.Errorf("close, verify_closed requests = %d, %d, live sessions %d; want 0, 0, 4",
				s.sentN[kindClose], s.sentN[kindVerifyClosed], len(s.live))
		}
	})

	t.Run("closes forgotten", func(t *testing.T) {
		s, errs := drive(t, &fakeSessions{closed: map[string]bool{}, forgetCloses: true}, 20*10, false)
		if s.closedActive == 0 || len(errs) != int(s.closedActive) {
			t.Fatalf("closedActive = %d, %d errors; want as many, > 0", s.closedActive, len(errs))
		}
		for _, err := range errs {
			if !errors.Is(err, errClosedActive) {
				t.Errorf("error %v, want errClosedActive", err)
			}
		}
	})
}

func TestRSSAllowed(t *testing.T) {
	tg := newReport("soak").targets["rss_growth_mib"] // 16 MiB or 20%, plus 512 bytes each
	for _, tc := range []struct {
		afterWarmup float64
		stored      uint64
		want        float64
	}{
		{50, 0, 16}, {200, 0, 40}, {50, 2048, 17}, {200, 4096, 42},
	} {
		if got := rssAllowed(tg, tc.afterWarmup, tc.stored); got != tc.want {
			t.Errorf("rssAllowed(%+v, %v, %d) = %v, want %v", tg, tc.afterWarmup, tc.stored, got, tc.want)
		}
	}
}

func TestSoakFlags(t *testing.T) {
	var stderr bytes.Buffer
	c, err := parseFlags([]string{"soak", "--duration", "2m"}, &stderr)
	if err != nil {
		t.Fatalf("parseFlags(soak --duration 2m) = %v\n%s", err, &stderr)
	}
	if c.schedule != "soak" || c.warmup != 30*time.Second || c.conns != 32 || c.floodConns != 32 {
		t.Errorf("schedule, warmup, conns, flood-conns = %q, %v, %d, %d; want soak, 30s, 32, 32", c.schedule, c.warmup, c.conns, c.floodConns)
	}
	if c, _ := parseFlags([]string{"--quick"}, &stderr); c.duration != 2*time.Second || c.conns != 64 || c.preload != 100_000 {
		t.Errorf("--quick: duration, conns, preload = %v, %d, %d; want 2s, 64, 100000", c.duration, c.conns, c.preload)
	}
	for _, args := range [][]string{
		{"soak", "--duration", "1s"}, // phases under 500ms
		{"soak", "--warmup", "2m"},
		{"--conns", "0"},
		{"--only", "nope"},
		{"extra"},
	} {
		if _, err := parseFlags(args, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%q) = %v, want errUsage", args, err)
		}
	}
}
