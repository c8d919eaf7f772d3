//go:build linux

package main

// This file is the soak schedule: the real sessiond under a mixed open /
// verify / close load (sessionSource) without a break through four phases
// over the benchmark's runner, its memory and goroutines sampled as it goes
// (every --duration/24 and at labelled points), and a flood of forged
// tokens (floodTokens) in the middle:
//
//   - warmup (--warmup, default a quarter of --duration): the verifier's
//     cache and Badger's memtable fill, the heap finds its size.
//   - baseline, flood, recovery: the rest of --duration in three equal
//     parts. During flood, --flood-conns more connections verify forged and
//     garbage tokens as fast as the server answers.
//
// Each phase's latency window leaves out its first second (a fifth of a
// short phase). The checks (targets.json): no request failed and the server
// stopped cleanly on SIGTERM; the goroutines came back to the idle count
// within 10s; RSS at the end grew over RSS after the warm-up by no more than
// rss_growth_mib allows. Every close stores a revocation that outlives the
// run, so the list, and RSS with it, grows throughout; the allowance per
// stored entry covers that, and --closes=false is the control run whose
// list stays empty. The flood's starvation of valid traffic
// (flood/baseline_*) is reported, not a gate.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	errClosedActive = errors.New("a closed session was reported active")
	errForgedActive = errors.New("a forged or garbage token was reported active")
)

// A phase of the soak; at mark (since its start) it takes a sample labelled label.
type phase struct {
	name         string
	length, mark time.Duration
	flood        bool
	label        string
}

// phaseSettle is the start of a phase that its latency window leaves out.
func phaseSettle(length time.Duration) time.Duration { return min(time.Second, length/5) }

// soakSessions is how many live sessions each valid connection keeps.
const soakSessions = 8

// soakSample is how often the soak samples the server.
func soakSample(c config) time.Duration { return c.duration / 24 }

// soakSchedule returns the phases of a soak run.
func soakSchedule(duration, warmup time.Duration) []phase {
	third := (duration - warmup) / 3
	last := duration - warmup - 2*third
	return slices.DeleteFunc([]phase{
		{"warmup", warmup, 0, false, ""},
		{"baseline", third, phaseSettle(third), false, "after_warmup"},
		{"flood", third, third / 2, true, "mid_flood"},
		{"recovery", last, last - min(time.Second, last/4), false, "end"},
	}, func(p phase) bool { return p.length <= 0 })
}

func (b *bench) soak(ctx context.Context) error {
	cfg := b.cfg
	srv, err := b.startSessiond(ctx, "soak", filepath.Join(b.tmp, "data"))
	if err != nil {
		return err
	}
	defer srv.kill()
	var stop atomic.Bool // set when ctx ends: the sources run dry
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	realTok, err := openOne(srv.addr)
	if err != nil {
		return fmt.Errorf("open a session for the flood's header: %w", err)
	}
	pool, err := floodTokens(realTok, floodPoolSize, newRand())
	if err != nil {
		return err
	}
	valid := make([]*sessionSource, cfg.conns)
	flood := make([]*floodSource, cfg.floodConns)
	validSrcs := repeat(cfg.conns, func(i int) source {
		valid[i] = &sessionSource{want: soakSessions, checkClosed: true, noClose: !cfg.closes, step: i % soakCycle, stop: &stop}
		return valid[i]
	})
	floodSrcs := repeat(cfg.floodConns, func(i int) source {
		flood[i] = &floodSource{pool: pool, i: i * len(pool) / cfg.floodConns, stop: &stop}
		return flood[i]
	})
	// One connection per request, so that the sampler's own never lingers
	// among the goroutines.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	smp := &sampler{pid: srv.pid, url: "http://" + srv.admin + "/debug/stats", hc: hc, start: time.Now(), phase: "idle"}
	idle := smp.take(ctx, "idle")
	if idle.Goroutines < 0 {
		return fmt.Errorf("read the idle server's /debug/stats: %s", idle.Err)
	}
	b.progress("soak: server pid %d on %s: idle RSS %.1f MiB, %d goroutines", srv.pid, srv.addr, idle.RSS, idle.Goroutines)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Go(func() {
		for t := time.NewTicker(soakSample(cfg)); ; {
			select {
			case <-sampleCtx.Done():
				t.Stop()
				return
			case <-t.C:
				if x := smp.probe(sampleCtx, ""); sampleCtx.Err() == nil { // one cut short is no failure
					smp.record(x)
				}
			}
		}
	})
	defer func() { stopSampling(); sampling.Wait() }()
	stored, counts := uint64(0), func(k sessionKind) (n uint64) { // revocations stored after the warm-up
		for _, s := range valid {
			n += s.sentN[k]
		}
		return n
	}
	for _, p := range soakSchedule(cfg.duration, cfg.warmup) {
		b.progress("soak: %s for %s: mixed load on %d connections%s", p.name, p.length, cfg.conns, map[bool]string{true: ", and the flood"}[p.flood])
		settle, start, closes0 := phaseSettle(p.length), time.Now(), counts(kindClose)
		smp.setPhase(p.name)
		for _, s := range valid {
			s.from, s.lat = start.Add(settle), [numKinds]lats{}
		}
		validc, floodc := make(chan loadResult, 1), make(chan loadResult, 1)
		go func() { validc <- runLoad(srv.addr, validSrcs, settle, p.length-settle, srv.pid, b.loadCPUs()) }()
		go func() {
			if p.flood {
				floodc <- runLoad(srv.addr, floodSrcs, settle, p.length-settle, 0, nil)
			}
			close(floodc)
		}()
		if p.label != "" {
			select {
			case <-time.After(time.Until(start.Add(p.mark))):
				smp.take(ctx, p.label)
			case <-ctx.Done():
			}
		}
		r := <-validc
		fl, flooded := <-floodc
		r.addErrors(fl)
		w := newResult(&r, procMiB(srv.pid, "VmRSS"), "")
		if flooded {
			w.AttackRPS = fl.rps()
		}
		w.ByKind = map[string]latency{}
		for k := range numKinds {
			var l lats
			for _, s := range valid {
				l = append(l, s.lat[k]...)
			}
			w.ByKind[k.String()] = latency{uint64(len(l)), l.quantile(0.5), l.quantile(0.99)}
		}
		if p.name != "warmup" {
			stored += counts(kindClose) - closes0
		}
		w.Note = fmt.Sprintf("p99 of verify %.3f ms, verify_closed %.3f ms, open %.3f ms, close %.3f ms",
			w.ByKind["verify"].P99, w.ByKind["verify_closed"].P99, w.ByKind["open"].P99, w.ByKind["close"].P99)
		b.rep.add(p.name, w)
		b.progress("soak: %-8s valid %7.0f req/s  p50 %.3f ms  p99 %.3f ms  errors %d", p.name, w.RPS, w.P50, w.P99, w.Errors)
		if err := errors.Join(ctx.Err(), srv.alive()); err != nil {
			return err
		} else if errors.Is(w.firstErr, errServerGone) {
			return w.firstErr
		}
	}
	stopSampling()
	sampling.Wait()
	smp.setPhase("after")
	// Wait, for 10s at most, until the goroutines are back within the
	// target's distance of idle.
	settleStart := time.Now()
	settled := smp.probe(ctx, "settled")
	for settled.Goroutines < 0 || float64(abs(settled.Goroutines-idle.Goroutines)) > b.rep.targets["goroutines_after_load"].Want {
		if time.Since(settleStart) >= 10*time.Second || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
		settled = smp.probe(ctx, "settled")
	}
	smp.record(settled)
	settleTook := time.Since(settleStart)
	b.progress("soak: load stopped; goroutines %d after %.1fs (idle %d)", settled.Goroutines, settleTook.Seconds(), idle.Goroutines)
	peakRSS := procMiB(srv.pid, "VmHWM")
	stopErr := srv.stop()

	// The checks.
	rep := b.rep
	rep.Samples = smp.all()
	var closedActive uint64
	for _, s := range valid {
		closedActive += s.closedActive
	}
	rep.checkErrors(fmt.Sprintf("closed sessions reported active: %d", closedActive))
	if stopErr != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the server did not stop cleanly on SIGTERM: %v", stopErr))
	}
	rep.check("stop_errors", map[bool]float64{true: 1}[stopErr != nil], 0, "")
	var forged, garbage, inactive uint64
	for _, s := range flood {
		forged, garbage, inactive = forged+s.forged, garbage+s.garbage, inactive+s.inactive
	}
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(realTok, ".")[0])
	rep.check("flood_inactive", ratio(float64(inactive), float64(forged+garbage)), 0,
		fmt.Sprintf("%d forged tokens (header %s, the server's; random claims and a canonical signature: a full Ed25519 verification each) and %d garbage tokens on %d connections",
			forged, h, garbage, cfg.floodConns))
	if base, fl := rep.Workloads["baseline"], rep.Workloads["flood"]; base != nil && fl != nil {
		rep.check("flood/baseline_p99", ratio(fl.P99, base.P99), 0, fmt.Sprintf("%.3f vs %.3f ms", fl.P99, base.P99))
		rep.check("flood/baseline_verify_p99", ratio(fl.ByKind["verify"].P99, base.ByKind["verify"].P99), 0, "")
		rep.check("flood/baseline_rps", ratio(fl.RPS, base.RPS), 0, "")
	}
	after, end, floodPeak := findSample(rep.Samples, "after_warmup"), findSample(rep.Samples, "end"), -1
	for _, x := range rep.Samples {
		if x.Phase == "flood" {
			floodPeak = max(floodPeak, x.Goroutines)
		}
	}
	gor := float64(abs(settled.Goroutines - idle.Goroutines))
	if settled.Goroutines < 0 {
		gor = 1e9 // unknown: fails
	}
	rep.check("goroutines_after_load", gor, 0, fmt.Sprintf("idle %d, after warm-up %d, peak during the flood %d, after the load %d (%.1fs after it stopped)",
		idle.Goroutines, after.Goroutines, floodPeak, settled.Goroutines, settleTook.Seconds()))
	t := rep.targets["rss_growth_mib"]
	t.Want = rssAllowed(t, after.RSS, stored)
	rep.targets["rss_growth_mib"] = t
	growth := end.RSS - after.RSS
	if after.RSS <= 0 || end.RSS <= 0 {
		growth = 1e9 // unknown: fails
	}
	perEntry := "control run (--closes=false): no session was closed"
	if stored > 0 {
		perEntry = fmt.Sprintf("%d revocations stored after the warm-up: %.0f bytes of growth each", stored, growth*(1<<20)/float64(stored))
	}
	rep.check("rss_growth_mib", growth, 0, fmt.Sprintf("RSS idle %.1f, after warm-up %.1f, at the end %.1f, peak %.1f MiB (Go heap %.1f → %.1f); %s",
		idle.RSS, after.RSS, end.RSS, peakRSS, after.HeapAlloc, end.HeapAlloc, perEntry))
	rep.Notes = append(rep.Notes, fmt.Sprintf("requests: %d verify of live sessions, %d verify of closed sessions, %d open, %d close",
		counts(kindVerify), counts(kindVerifyClosed), counts(kindOpen), counts(kindClose)))
	for _, x := range rep.Samples {
		if x.Err != "" {
			rep.Notes = append(rep.Notes, fmt.Sprintf("a sample at %.1fs (%s) failed: %s", x.T, x.Phase, x.Err))
		}
	}
	return nil
}

// rssAllowed is the RSS growth in MiB that t allows after a warm-up that
// ended at afterWarmup MiB, with stored revocations written since.
func rssAllowed(t target, afterWarmup float64, stored uint64) float64 {
	return max(afterWarmup*t.Pct/100, t.Want) + float64(stored)*t.BytesPerRevocation/(1<<20)
}

func abs(x int) int { return max(x, -x) }

// openOne opens a session and returns its token.
func openOne(addr string) (string, error) {
	c := newClient(addr, time.Now().Add(10*time.Second))
	defer c.close()
	status, reply, err := c.do(openBody)
	if err == nil && status != 200 {
		err = fmt.Errorf("HTTP %d: %.200s", status, reply)
	}
	if err != nil {
		return "", err
	}
	return openedToken(reply)
}

// sample is one reading of the server's memory and goroutines.
type sample struct {
	T          float64 `json:"t_s"` // since the idle sample
	Phase      string  `json:"phase"`
	Label      string  `json:"label,omitempty"` // "" for a periodic sample
	RSS        float64 `json:"rss_mib"`         // VmRSS
	Goroutines int     `json:"goroutines"`      // -1 when /debug/stats could not be read
	HeapAlloc  float64 `json:"heap_alloc_mib"`
	Err        string  `json:"error,omitempty"`
}

// sampler reads the server's VmRSS and GET /debug/stats (admin listener).
type sampler struct {
	pid     int
	url     string
	hc      *http.Client
	start   time.Time
	mu      sync.Mutex
	phase   string
	samples []sample
}

func (s *sampler) setPhase(p string) { s.mu.Lock(); s.phase = p; s.mu.Unlock() }
func (s *sampler) record(x sample)   { s.mu.Lock(); s.samples = append(s.samples, x); s.mu.Unlock() }

func (s *sampler) take(ctx context.Context, label string) sample {
	x := s.probe(ctx, label)
	s.record(x)
	return x
}

// all returns the samples in time order.
func (s *sampler) all() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.samples)
	slices.SortStableFunc(out, func(a, b sample) int { return int(1e6 * (a.T - b.T)) })
	return out
}

func (s *sampler) probe(ctx context.Context, label string) sample {
	s.mu.Lock()
	x := sample{T: time.Since(s.start).Seconds(), Phase: s.phase, Label: label, Goroutines: -1}
	s.mu.Unlock()
	x.RSS = procMiB(s.pid, "VmRSS")
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
		return x
	}
	x.Goroutines, x.HeapAlloc = st.Goroutines, float64(st.HeapAlloc)/(1<<20)
	return x
}

// findSample returns the first sample with the label.
func findSample(samples []sample, label string) sample {
	for _, x := range samples {
		if x.Label == label {
			return x
		}
	}
	return sample{Goroutines: -1}
}

// floodPoolSize is how many different tokens the flood sends, in turn.
// Forged tokens never enter the verifier's cache, so each request costs
// the server a whole verification however often the token repeats.
const floodPoolSize = 4096

// floodToken is one token of the flood.
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
// 2^252, that is below the group order: with random bytes there, 15 times in
// 16 crypto/ed25519 rejects S at once as non-canonical, without the
// scalar multiplication that makes a verification expensive. With S in
// range the server computes the whole check, as for a signature that is
// wrong in the way only the key's owner could tell.
func floodTokens(real string, n int, r *rand.ChaCha8) ([]floodToken, error) {
	parts := strings.Split(real, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWS compact token: %.40q", real)
	}
	var rc struct {
		Issuer   string `json:"iss"`
		Expires  int64  `json:"exp"`
		IssuedAt int64  `json:"iat"`
		ID       string `json:"jti"`
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err == nil {
		err = json.Unmarshal(raw, &rc)
	}
	if err != nil {
		return nil, fmt.Errorf("the real token's claims: %w", err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	randBytes := func(k int) []byte {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(r.Uint64())
		}
		return b
	}
	claims := func() string {
		rc.ID = randomID(r).String()
		c, _ := json.Marshal(rc)
		return b64(c)
	}
	forgedSig := func() string {
		sig := randBytes(64)
		sig[63] &= 0x0f // S < 2^252 < the group order: canonical
		return b64(sig)
	}
	toks := make([]floodToken, n)
	for i := range toks {
		tok := parts[0] + "." + claims() + "." + forgedSig()
		if i%8 != 7 {
			toks[i] = floodToken{tok: tok, forged: true}
			continue
		}
		switch (i / 8) % 6 {
		case 0: // random base64url, no dots
			tok = b64(randBytes(32 + int(r.Uint64()%200)))
		case 1: // three random segments
			tok = b64(randBytes(30)) + "." + b64(randBytes(90)) + "." + b64(randBytes(64))
		case 2: // a well-formed token under a kid the server does not know
			tok = b64([]byte(`{"alg":"EdDSA","kid":"`+b64(randBytes(32))+`","typ":"session+jwt"}`)) + "." + claims() + "." + forgedSig()
		case 3: // alg none, no signature
			tok = b64([]byte(`{"alg":"none","typ":"session+jwt"}`)) + "." + claims() + "."
		case 4: // a forged token with its signature cut short
			tok = tok[:len(tok)-46]
		default: // not a token at all
			tok = "not-a-token-" + b64(randBytes(8))
		}
		toks[i] = floodToken{tok: tok}
	}
	return toks, nil
}

// floodSource is one connection of the flood: verify_session_token of the
// pool's tokens in turn, each of which must be answered {"active":false}.
type floodSource struct {
	pool            []floodToken
	i               int
	stop            *atomic.Bool
	last            bool   // whether the request in flight is forged
	forged, garbage uint64 // replies received
	inactive        uint64 // of which {"active":false}
}

func (s *floodSource) next(buf []byte) ([]byte, bool) {
	if s.stop.Load() {
		return buf, false
	}
	t := s.pool[s.i]
	s.i, s.last = (s.i+1)%len(s.pool), t.forged
	return verifyBody(buf, t.tok), true
}

func (s *floodSource) check(reply []byte) error {
	if s.last {
		s.forged++
	} else {
		s.garbage++
	}
	if err := expectInactive.check(reply); err != nil {
		if expectActive.check(reply) == nil {
			return errForgedActive
		}
		return err
	}
	s.inactive++
	return nil
}
