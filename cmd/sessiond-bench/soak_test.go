package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/token"
)

// TestSoak runs the soak subcommand end to end with tiny settings and
// checks the JSON report's shape and that nothing failed. The RSS limit is
// lifted: a few seconds (under -race, with its shadow memory) say nothing
// about growth after a warm-up; checkRSS has its own test.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs sessiond")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{
		"soak", "--json", "--duration", "3s", "--warmup", "600ms", "--conns", "4", "--flood-conns", "4",
		"--sessions", "3", "--sample", "250ms", "--settle", "5s", "--max-rss-growth-mib", "1024",
		"--tmp-dir", t.TempDir(),
	}
	start := time.Now()
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run(soak) = %v\nstderr:\n%s\nstdout:\n%s", err, &stderr, &stdout)
	}
	t.Logf("%.1fs; stderr:\n%s", time.Since(start).Seconds(), &stderr)

	var rep struct {
		Pass         bool              `json:"pass"`
		Failures     []string          `json:"failures"`
		Errors       *uint64           `json:"errors"`
		ClosedActive *uint64           `json:"closed_reported_active"`
		Requests     map[string]uint64 `json:"requests"`
		Phases       []struct {
			Name     string   `json:"name"`
			RPS      float64  `json:"valid_rps"`
			P50      float64  `json:"p50_ms"`
			P99      float64  `json:"p99_ms"`
			FloodRPS *float64 `json:"flood_rps"`
			Kinds    map[string]struct {
				N   uint64  `json:"n"`
				P99 float64 `json:"p99_ms"`
			} `json:"by_kind"`
		} `json:"phases"`
		Flood struct {
			Forged, Garbage, Served, Inactive uint64
			AllInactive                       bool   `json:"all_inactive"`
			Header                            string `json:"header"`
		} `json:"flood"`
		Fairness *struct {
			P99Ratio float64 `json:"p99_ratio"`
			Starved  *bool   `json:"starved"`
		} `json:"fairness"`
		RSS struct {
			Idle        float64 `json:"idle_mib"`
			AfterWarmup float64 `json:"after_warmup_mib"`
			End         float64 `json:"end_mib"`
			Peak        float64 `json:"peak_mib"`
			Pass        bool    `json:"pass"`
		} `json:"rss"`
		Goroutines struct {
			Idle        int  `json:"idle"`
			AfterWarmup int  `json:"after_warmup"`
			End         int  `json:"end"`
			Pass        bool `json:"pass"`
		} `json:"goroutines"`
		Samples []struct {
			Label      string  `json:"label"`
			RSS        float64 `json:"rss_mib"`
			Goroutines int     `json:"goroutines"`
		} `json:"samples"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.Bytes())
	}

	if !rep.Pass || len(rep.Failures) > 0 {
		t.Errorf("pass = %v, failures = %q; want true, none", rep.Pass, rep.Failures)
	}
	if rep.Errors == nil || *rep.Errors != 0 || rep.ClosedActive == nil || *rep.ClosedActive != 0 {
		t.Errorf("errors = %v, closed_reported_active = %v; want 0, 0", rep.Errors, rep.ClosedActive)
	}
	for _, k := range []string{"verify", "verify_closed", "open", "close"} {
		if rep.Requests[k] == 0 {
			t.Errorf("requests[%q] = 0, want > 0", k)
		}
	}

	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
		t.Run(p.Name, func(t *testing.T) {
			if p.RPS <= 0 || p.P50 <= 0 || p.P99 < p.P50 {
				t.Errorf("valid_rps = %v, p50_ms = %v, p99_ms = %v; want rps > 0, 0 < p50 <= p99", p.RPS, p.P50, p.P99)
			}
			if v := p.Kinds["verify"]; v.N == 0 || v.P99 <= 0 {
				t.Errorf("by_kind[verify] = %+v, want n > 0, p99 > 0", v)
			}
			if got, want := p.FloodRPS != nil, p.Name == "flood"; got != want {
				t.Errorf("flood_rps present = %v, want %v", got, want)
			} else if got && *p.FloodRPS <= 0 {
				t.Errorf("flood_rps = %v, want > 0", *p.FloodRPS)
			}
		})
	}
	if want := []string{"warmup", "baseline", "flood", "recovery"}; !slices.Equal(names, want) {
		t.Errorf("phases = %q, want %q", names, want)
	}

	f := rep.Flood
	if f.Forged == 0 || f.Garbage == 0 || f.Served != f.Forged+f.Garbage || f.Inactive != f.Served || !f.AllInactive {
		t.Errorf("flood = %+v, want forged and garbage > 0, every one served inactive", f)
	}
	if !strings.Contains(f.Header, `"kid":`) || !strings.Contains(f.Header, `"typ":"session+jwt"`) {
		t.Errorf("flood.header = %q, want the server's header with its kid", f.Header)
	}
	if rep.Fairness == nil || rep.Fairness.Starved == nil || rep.Fairness.P99Ratio <= 0 {
		t.Errorf("fairness = %+v, want p99_ratio and starved", rep.Fairness)
	}
	if r := rep.RSS; r.Idle <= 0 || r.AfterWarmup <= 0 || r.End <= 0 || r.Peak < r.End || !r.Pass {
		t.Errorf("rss = %+v, want positive figures, peak >= end, pass", r)
	}
	if g := rep.Goroutines; g.Idle <= 0 || g.AfterWarmup <= g.Idle || !g.Pass {
		t.Errorf("goroutines = %+v, want idle > 0, more under load, pass", g)
	}
	var labels []string
	for _, x := range rep.Samples {
		if x.Label != "" {
			labels = append(labels, x.Label)
		}
		if x.RSS <= 0 || x.Goroutines <= 0 {
			t.Errorf("sample %+v lacks RSS or goroutines", x)
		}
	}
	if want := []string{"idle", "after_warmup", "mid_flood", "end", "settled"}; !slices.Equal(labels, want) {
		t.Errorf("labelled samples = %q, want %q", labels, want)
	}
	if len(rep.Samples) <= len(labels) {
		t.Errorf("%d samples, want periodic ones besides the %d labelled", len(rep.Samples), len(labels))
	}
}

// TestFloodTokens checks that the flood's forged tokens are what the server
// must verify in full: its header, claims it would accept, a signature
// with a canonical S, rejected only for the signature (the same bytes
// signed with the real key verify); and that the garbage is rejected too.
func TestFloodTokens(t *testing.T) {
	iss, ring, err := newIssuer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real, _, err := iss.Issue(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, _, signer, err := ring.SigningKey()
	if err != nil {
		t.Fatal(err)
	}
	v := token.NewVerifier(ring, token.WithCache(0))
	ctx := context.Background()
	if _, err := v.Verify(ctx, real); err != nil {
		t.Fatalf("Verify(real token) = %v, want nil", err)
	}

	toks, err := floodTokens(real, 96, newRand())
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
	drive := func(t *testing.T, f *fakeSessions, requests int, noClose bool) (*soakSource, []error) {
		t.Helper()
		var stop atomic.Bool
		s := &soakSource{want: 4, noClose: noClose, stop: &stop}
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
		for k, want := range map[soakKind][2]uint64{
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

func TestCheckRSS(t *testing.T) {
	for _, tc := range []struct {
		name            string
		afterWarmup, at float64
		wantLimit       float64
		wantOK          bool
	}{
		{"flat", 50, 50, 16, true},
		{"shrank", 50, 40, 16, true},
		{"the MiB floor applies", 50, 66, 16, true},
		{"over the MiB floor", 50, 66.5, 16, false},
		{"the percentage applies", 200, 240, 40, true},
		{"over the percentage", 200, 241, 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := checkRSS(tc.afterWarmup, tc.at, 20, 16)
			if !v.known || v.limitMiB != tc.wantLimit || v.ok != tc.wantOK {
				t.Errorf("checkRSS(%v, %v, 20, 16) = %+v, want limit %v, ok %v", tc.afterWarmup, tc.at, v, tc.wantLimit, tc.wantOK)
			}
		})
	}
	if v := checkRSS(0, 50, 20, 16); v.known || v.ok {
		t.Errorf("checkRSS with RSS after warm-up unknown = %+v, want unknown, not ok", v)
	}
}

func TestCheckGoroutines(t *testing.T) {
	for _, tc := range []struct {
		idle, end int
		want      bool
	}{
		{23, 23, true}, {23, 28, true}, {23, 18, true}, {23, 29, false}, {23, 17, false}, {23, -1, false}, {-1, 23, false},
	} {
		if got := checkGoroutines(tc.idle, tc.end, 5); got != tc.want {
			t.Errorf("checkGoroutines(%d, %d, 5) = %v, want %v", tc.idle, tc.end, got, tc.want)
		}
	}
}

func TestSoakFlags(t *testing.T) {
	var stderr bytes.Buffer
	c, err := parseSoakFlags([]string{"--duration", "2m"}, &stderr)
	if err != nil {
		t.Fatalf("parseSoakFlags(--duration 2m) = %v\n%s", err, &stderr)
	}
	if c.warmup != 30*time.Second || c.conns != 32 || c.floodConns != 32 {
		t.Errorf("warmup, conns, flood-conns = %v, %d, %d; want 30s, 32, 32", c.warmup, c.conns, c.floodConns)
	}
	for _, args := range [][]string{
		{"--duration", "1s"}, // phases under 500ms
		{"--warmup", "2m"},
		{"--conns", "0"},
		{"--starve-factor", "1"},
		{"extra"},
	} {
		if _, err := parseSoakFlags(args, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("parseSoakFlags(%q) = %v, want errUsage", args, err)
		}
	}
}
