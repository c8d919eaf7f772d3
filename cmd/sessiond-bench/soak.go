//go:build linux

package main

// This file is the soak schedule: the real sessiond under a mixed open /
// verify / close load (sessionSource) through four phases over the
// workload runner, sampled (RSS, goroutines, heap) every --duration/24 and
// at each phase's end:
//
//   - warmup (--warmup, default a quarter of --duration): the verifier's
//     cache and Badger's memtable fill, the heap finds its size.
//   - baseline, flood, recovery: the rest in three equal parts; during the
//     flood --flood-conns more connections verify forged and garbage tokens.
//
// The valid load and the flood are two clients (sessiond clients add: valid
// may open, close and verify, flooder verify), so that the flood spends its
// own budget of failed signature checks; were they one caller, the valid
// load's first verify of each new session would be refused (-32005) while
// the flood's budget is spent, as the server's design says.
//
// The checks (targets.json): no request failed and the server stopped
// cleanly on SIGTERM; the goroutines came back to the idle count within
// 10s; RSS at the end grew over RSS after the warm-up by no more than
// rss_growth_mib allows, with an allowance per revocation stored (every
// close stores one that outlives the run; --closes=false is the control
// run). The flood's cost to valid traffic (flood/baseline_*) is reported.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

var (
	errClosedActive = errors.New("a closed session was reported active")
	errForgedActive = errors.New("a forged or garbage token was reported active")
)

// checkFlood checks the reply to a forged or garbage token: it must be
// {"active":false}, or -32005 (refused) for the caller's spent budget of
// failed signature checks; {"active":true} is errForgedActive, anything
// else (another error, a bad reply) an error naming it.
func checkFlood(reply []byte) (refused bool, err error) {
	switch {
	case expectInactive.check(reply) == nil:
		return false, nil
	case expectRefused.check(reply) == nil:
		return true, nil
	case expectActive.check(reply) == nil:
		return false, errForgedActive
	}
	return false, fmt.Errorf("reply %.300s to a forged token, want %s or %s", reply, expectInactive, expectRefused)
}

type phase struct {
	name   string
	length time.Duration
	flood  bool
}

// soakSessions is how many live sessions each valid connection keeps.
const soakSessions = 8

// soakSample is how often the soak samples the server.
func soakSample(c config) time.Duration { return c.duration / 24 }

func soakSchedule(duration, warmup time.Duration) []phase {
	third := (duration - warmup) / 3
	return slices.DeleteFunc([]phase{{"warmup", warmup, false}, {"baseline", third, false}, {"flood", third, true},
		{"recovery", duration - warmup - 2*third, false}}, func(p phase) bool { return p.length <= 0 })
}

func (b *bench) soak(ctx context.Context) error {
	cfg, rep := b.cfg, b.rep
	// The valid load and the flood are two clients, as two services would
	// be: each has its own budget of failed signature checks, so the
	// flood's spent budget never refuses the valid load's new sessions.
	dir := filepath.Join(b.tmp, "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	secrets, err := b.addClients(ctx, dir, map[string]string{"valid": "open,close,verify", "flooder": "verify"})
	if err != nil {
		return err
	}
	srv, err := b.startSessiond(ctx, "soak", dir)
	if err != nil {
		return err
	}
	defer srv.kill()
	var stop atomic.Bool // set when ctx ends: the sources run dry
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	realTok, err := openOne(srv.addr, secrets["valid"])
	if err != nil {
		return fmt.Errorf("open a session for the flood's header: %w", err)
	}
	pool, err := floodTokens(realTok, floodPoolSize)
	if err != nil {
		return err
	}
	valid := make([]*sessionSource, cfg.conns)
	validSrcs := withAuth(secrets["valid"], repeat(cfg.conns, func(i int) source {
		valid[i] = &sessionSource{want: soakSessions, checkClosed: true, noClose: !cfg.closes, step: i % soakCycle, stop: &stop}
		return valid[i]
	}))
	// The flood verifies the pool's tokens in turn; each must be inactive,
	// or refused for the flood's budget of failed signature checks.
	var floodSent [2]atomic.Uint64 // garbage, forged
	var floodInactive atomic.Uint64
	floodSrcs := withAuth(secrets["flooder"], repeat(cfg.floodConns, func(c int) source {
		i, forged := c*len(pool)/cfg.floodConns, false
		return funcSource{func(buf []byte) ([]byte, bool) {
			i, forged = (i+1)%len(pool), pool[i].forged
			return verifyBody(buf, pool[i].tok), !stop.Load()
		}, func(reply []byte) error {
			floodSent[map[bool]int{true: 1}[forged]].Add(1)
			_, err := checkFlood(reply)
			if err == nil {
				floodInactive.Add(1)
			}
			return err
		}}
	}))
	smp := &sampler{pid: srv.pid, url: "http://" + srv.admin + "/debug/stats", start: time.Now(),
		// One connection per request, so that the sampler's own never lingers among the goroutines.
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}}
	idle := smp.take(ctx, "idle")
	if idle.Goroutines < 0 {
		return fmt.Errorf("read the idle server's /debug/stats: %s", idle.Err)
	}
	count := func(k sessionKind) (n uint64) {
		for _, s := range valid {
			n += s.sentN[k]
		}
		return n
	}
	var stored uint64 // revocations stored after the warm-up
	for _, p := range soakSchedule(cfg.duration, cfg.warmup) {
		b.progress("soak: %s for %s on %d connections%s", p.name, p.length, cfg.conns, map[bool]string{true: ", and the flood"}[p.flood])
		// Each phase's first second (a fifth at most) is left out of its figures.
		settle, closes0 := min(time.Second, p.length/5), count(kindClose)
		for _, s := range valid {
			s.from, s.lat = time.Now().Add(settle), [numKinds]lats{}
		}
		validc, floodc := make(chan result, 1), make(chan result, 1)
		go func() { validc <- runLoad(srv.addr, validSrcs, settle, p.length-settle, srv.pid, b.loadCPUs()) }()
		go func() {
			if p.flood {
				floodc <- runLoad(srv.addr, floodSrcs, settle, p.length-settle, 0, nil)
			}
			close(floodc)
		}()
		var r result
		for tick, done := time.NewTicker(soakSample(cfg)), false; !done; {
			select {
			case r = <-validc:
				tick.Stop()
				done = true
			case <-tick.C:
				smp.take(ctx, p.name)
			}
		}
		fl, flooded := <-floodc
		smp.take(ctx, p.name)
		r.addErrors(fl)
		w := r.finish(procMiB(srv.pid, "VmRSS"), "")
		w.AttackRPS, w.ByKind = map[bool]float64{true: fl.rps()}[flooded], map[string]latency{}
		for k := range numKinds {
			var l lats
			for _, s := range valid {
				l = append(l, s.lat[k]...)
			}
			w.ByKind[k.String()] = latency{uint64(len(l)), l.quantile(0.5), l.quantile(0.99)}
		}
		if p.name != "warmup" {
			stored += count(kindClose) - closes0
		}
		rep.add(p.name, w)
		b.progress("soak: %-8s valid %7.0f req/s  p50 %.3f ms  p99 %.3f ms  errors %d", p.name, w.RPS, w.P50, w.P99, w.Errors)
		if err := errors.Join(ctx.Err(), srv.alive()); err != nil {
			return err
		} else if errors.Is(w.firstErr, errServerGone) {
			return w.firstErr
		}
	}
	// Wait, for 10s at most, until the goroutines are back near idle.
	settleStart, settled := time.Now(), smp.probe(ctx, "after")
	for (settled.Goroutines < 0 || float64(abs(settled.Goroutines-idle.Goroutines)) > rep.targets["goroutines_after_load"].Want) &&
		time.Since(settleStart) < 10*time.Second && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		settled = smp.probe(ctx, "after")
	}
	settleTook := time.Since(settleStart)
	peakRSS, stopErr := procMiB(srv.pid, "VmHWM"), srv.stop()

	rep.Samples = append(smp.samples, settled)
	var closedActive uint64
	for _, s := range valid {
		closedActive += s.closedActive
	}
	rep.checkErrors(fmt.Sprintf("closed sessions reported active: %d", closedActive))
	stopAbout := ""
	if stopErr != nil {
		stopAbout = stopErr.Error()
	}
	rep.check("stop_errors", map[bool]float64{true: 1}[stopErr != nil], 0, stopAbout)
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(realTok, ".")[0])
	garbage, forged := floodSent[0].Load(), floodSent[1].Load()
	rep.check("flood_inactive", ratio(float64(floodInactive.Load()), float64(forged+garbage)), 0,
		fmt.Sprintf("%d forged tokens (header %s, the server's; random claims and a canonical signature: a full Ed25519 verification each) and %d garbage tokens on %d connections",
			forged, h, garbage, cfg.floodConns))
	rep.checkTargets()
	// after: the first sample after the warm-up; end: the last under load.
	after, end, floodPeak := sample{Goroutines: -1}, sample{Goroutines: -1}, -1
	for _, x := range smp.samples {
		if x.Phase == "flood" {
			floodPeak = max(floodPeak, x.Goroutines)
		}
		if x.Phase != "idle" && x.Phase != "warmup" {
			after, end = map[bool]sample{true: x, false: after}[after.RSS == 0], x
		}
		if x.Err != "" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("a sample at %.1fs (%s) failed: %s", x.T, x.Phase, x.Err))
		}
	}
	gor := map[bool]float64{true: 1e9, false: float64(abs(settled.Goroutines - idle.Goroutines))}[settled.Goroutines < 0] // unknown: fails
	rep.check("goroutines_after_load", gor, 0, fmt.Sprintf("idle %d, after warm-up %d, peak during the flood %d, after the load %d (%.1fs after it stopped)",
		idle.Goroutines, after.Goroutines, floodPeak, settled.Goroutines, settleTook.Seconds()))
	t := rep.targets["rss_growth_mib"]
	t.Want = rssAllowed(t, after.RSS, stored)
	rep.targets["rss_growth_mib"] = t
	growth := map[bool]float64{true: 1e9, false: end.RSS - after.RSS}[after.RSS <= 0 || end.RSS <= 0] // unknown: fails
	perEntry := "control run (--closes=false): no session was closed"
	if stored > 0 {
		perEntry = fmt.Sprintf("%d revocations stored after the warm-up: %.0f bytes of growth each", stored, growth*(1<<20)/float64(stored))
	}
	rep.check("rss_growth_mib", growth, 0, fmt.Sprintf("RSS idle %.1f, after warm-up %.1f, at the end %.1f, peak %.1f MiB (Go heap %.1f → %.1f); %s",
		idle.RSS, after.RSS, end.RSS, peakRSS, after.HeapAlloc, end.HeapAlloc, perEntry))
	rep.Notes = append(rep.Notes, fmt.Sprintf("requests: %d verify of live sessions, %d verify of closed sessions, %d open, %d close",
		count(kindVerify), count(kindVerifyClosed), count(kindOpen), count(kindClose)))
	return nil
}

// rssAllowed is the RSS growth in MiB that t allows after a warm-up that
// ended at afterWarmup MiB, with stored revocations written since.
func rssAllowed(t target, afterWarmup float64, stored uint64) float64 {
	return max(afterWarmup*t.Pct/100, t.Want) + float64(stored)*t.BytesPerRevocation/(1<<20)
}

func abs(x int) int { return max(x, -x) }

// openOne opens a session as the client with secret and returns its token.
func openOne(addr, secret string) (string, error) {
	c := &client{addr: addr, auth: authHeader(secret), deadline: time.Now().Add(10 * time.Second)}
	defer c.close()
	reply, err := c.do(openBody)
	if err != nil {
		return "", err
	}
	return openedToken(reply)
}

// sample is one reading of the server's memory and goroutines.
type sample struct {
	T          float64 `json:"t_s"` // since the idle sample
	Phase      string  `json:"phase"`
	RSS        float64 `json:"rss_mib"`    // VmRSS
	Goroutines int     `json:"goroutines"` // -1 when /debug/stats could not be read
	HeapAlloc  float64 `json:"heap_alloc_mib"`
	Err        string  `json:"error,omitempty"`
}

// sampler reads the server's VmRSS and GET /debug/stats (admin listener).
type sampler struct {
	pid     int
	url     string
	hc      *http.Client
	start   time.Time
	samples []sample
}

func (s *sampler) take(ctx context.Context, phase string) sample {
	x := s.probe(ctx, phase)
	s.samples = append(s.samples, x)
	return x
}

func (s *sampler) probe(ctx context.Context, phase string) sample {
	x := sample{T: time.Since(s.start).Seconds(), Phase: phase, RSS: procMiB(s.pid, "VmRSS"), Goroutines: -1}
	var st struct {
		Goroutines int    `json:"goroutines"`
		HeapAlloc  uint64 `json:"heap_alloc_bytes"`
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	resp, err := s.hc.Do(req)
	if err == nil {
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != http.StatusOK || st.Goroutines <= 0) {
			err = fmt.Errorf("%s, no goroutine count", resp.Status)
		}
	}
	if err != nil {
		x.Err = "GET /debug/stats: " + err.Error()
	} else {
		x.Goroutines, x.HeapAlloc = st.Goroutines, float64(st.HeapAlloc)/(1<<20)
	}
	return x
}

// floodPoolSize is how many different tokens the flood sends, in turn.
// Forged tokens never enter the verifier's cache, so each request costs
// the server a whole verification however often the token repeats.
const floodPoolSize = 4096

type floodToken struct {
	tok    string
	forged bool // forged (a full Ed25519 verification each), else garbage
}

// floodTokens returns n tokens made from real, a token the server issued:
// 7 in 8 are forged, with real's header (the server's kid, alg and typ),
// claims like real's (its iss, iat and exp, a random jti) and 64 random
// signature bytes; 1 in 8 are garbage of several kinds.
//
// A forged signature's S half (bytes 32 to 63, little-endian) is kept below
// 2^252, below the group order: with random bytes there, crypto/ed25519
// would reject 15 in 16 at once as non-canonical, without the scalar
// multiplication that makes a verification expensive.
func floodTokens(real string, n int) ([]floodToken, error) {
	parts := strings.Split(real, ".")
	var rc struct {
		Issuer   string `json:"iss"`
		Expires  int64  `json:"exp"`
		IssuedAt int64  `json:"iat"`
		ID       string `json:"jti"`
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[len(parts)/2])
	if err == nil && len(parts) == 3 {
		err = json.Unmarshal(raw, &rc)
	}
	if err != nil || len(parts) != 3 {
		return nil, fmt.Errorf("not a JWS compact token with JSON claims: %.40q (%v)", real, err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	randB64 := func(k int) string {
		b := make([]byte, k)
		rand.Read(b)
		if k == 64 {
			b[63] &= 0x0f // a signature: S < 2^252 < the group order, canonical
		}
		return b64(b)
	}
	claims := func() string {
		rc.ID = uuid.NewString()
		c, _ := json.Marshal(rc)
		return b64(c)
	}
	toks := make([]floodToken, n)
	for i := range toks {
		tok := parts[0] + "." + claims() + "." + randB64(64)
		if i%8 != 7 {
			toks[i] = floodToken{tok: tok, forged: true}
			continue
		}
		toks[i].tok = [...]string{
			randB64(32 + i%200), // random base64url, no dots
			randB64(30) + "." + randB64(90) + "." + randB64(64),                                                             // three random segments
			b64([]byte(`{"alg":"EdDSA","kid":"`+randB64(32)+`","typ":"session+jwt"}`)) + "." + claims() + "." + randB64(64), // an unknown kid
			b64([]byte(`{"alg":"none","typ":"session+jwt"}`)) + "." + claims() + ".",                                        // alg none
			tok[:len(tok)-46], // a signature cut short
			"not-a-token-" + randB64(8),
		}[(i/8)%6]
	}
	return toks, nil
}
