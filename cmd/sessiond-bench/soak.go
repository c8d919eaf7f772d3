package main

// This file is the soak run of issue 4 ("Load", and the forged-token flood of
// "Hostile requests"): the real sessiond under a mixed open / verify / close
// load for a set time, its memory and goroutines sampled as it goes, and a
// flood of forged tokens in the middle. It reuses the benchmark's server
// handling (startSessiond, pinning, /proc readings), its load generator
// (runLoad over the raw-connection client) and its histogram.
//
//	go run ./cmd/sessiond-bench soak                      # 2 minutes
//	go run ./cmd/sessiond-bench soak --duration 10m --json
//
// # Phases
//
// The server is built, started on a fresh data directory and pinned like the
// benchmark's (server on --server-cpu, this process on --client-cpu). Its
// idle goroutine count and RSS are read first; then --conns connections run
// the mixed load (soakSource) without a break through four phases:
//
//   - warmup (--warmup, default a quarter of --duration): the verifier's
//     cache and Badger's memtable fill, the heap finds its size.
//   - baseline, flood, recovery: the rest of --duration in three equal
//     parts. During flood, --flood-conns more connections verify forged and
//     garbage tokens (floodTokens) as fast as the server answers.
//
// Each phase's latency window leaves out its first second (a fifth of a
// short phase), where connections open and the flood ramps up. The server's
// VmRSS and its GET /debug/stats (goroutines, heap) are sampled every
// --sample, and at fixed points: "after_warmup" (the start of baseline's
// window), "end" (just before the load stops) and "settled" (once the load
// has stopped and the goroutines have come back, or --settle has passed).
//
// # Pass or fail
//
// The run fails (exit status 1, after the report) when:
//
//   - any request failed (transport, HTTP status, or a reply other than the
//     expected one: a closed session reported active, a forged token
//     reported active, a live session reported inactive), or the server did
//     not stop cleanly on SIGTERM;
//   - the goroutines did not come back to the idle count ± --goroutine-slack
//     (default 5) within --settle after the load stopped;
//   - VmRSS at the end exceeds VmRSS after the warm-up by more than the
//     larger of --max-rss-growth-pct (default 20%) and --max-rss-growth-mib
//     (default 16 MiB). The floor is one Badger memtable (16 MiB, see
//     revocation.badgerOptions), whose arena becomes resident page by page
//     as closes fill it; the percentage takes over for a server that holds
//     more. On top of that comes --rss-per-revocation (default 512 bytes)
//     for every revocation stored after the warm-up: data the server must
//     keep until the token expires is not a leak.
//
// Every close stores a revocation that outlives the run (the sessions last
// an hour), so with closes in the mix the revocation list grows throughout,
// and RSS with it (memtables, their mmapped logs, the flushed tables); the
// report gives the growth per stored entry. --closes=false is the control:
// the same load without closes leaves the list empty, so that whatever RSS
// still gains is not stored data.
//
// Starvation by the flood is reported but does not fail the run: the flood
// starves valid traffic when the valid requests' p99 (all of them, or the
// verifications of live sessions alone) during the flood exceeds
// --starve-factor (default 10) times its baseline value, or their
// throughput falls below 1/--starve-factor of baseline.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

var (
	// errSoakFailed ends a soak run whose checks failed; the report is
	// printed first.
	errSoakFailed = errors.New("soak failed")
	// errClosedActive is the reply to a verification of a closed session
	// that says it is active.
	errClosedActive = errors.New("a closed session was reported active")
	// errForgedActive is the reply to a verification of a forged or garbage
	// token that says it is active.
	errForgedActive = errors.New("a forged or garbage token was reported active")
)

const soakUsage = `Usage: go run ./cmd/sessiond-bench soak [flags]

Runs the real sessiond under a mixed open / verify / close load for
--duration: a warm-up, then three equal phases (baseline; flood, with forged
tokens on --flood-conns more connections; recovery). Samples the server's RSS
and goroutines, and compares the valid requests' latency with and without the
flood. Exit status 1 when a request failed, when the goroutines did not
return to their idle count, or when RSS grew after the warm-up by more than
--max-rss-growth-pct percent or --max-rss-growth-mib MiB, whichever is larger,
plus --rss-per-revocation bytes for each revocation stored meanwhile. See
soak.go for the details.

Flags:
`

type soakConfig struct {
	duration, warmup, sample, settle time.Duration
	conns, floodConns, sessions      int
	goroutineSlack                   int
	maxGrowthPct, maxGrowthMiB       float64
	perRevocation                    int
	starveFactor                     float64
	json                             bool
	closes                           bool
	serverCPU, clientCPU             int
	noPin, verbose                   bool
	sessiond, tmpDir                 string
}

func parseSoakFlags(args []string, stderr io.Writer) (soakConfig, error) {
	var c soakConfig
	fs := flag.NewFlagSet("sessiond-bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), soakUsage)
		fs.PrintDefaults()
	}
	fs.DurationVar(&c.duration, "duration", 2*time.Minute, "the whole load, warm-up included")
	fs.DurationVar(&c.warmup, "warmup", 0, "warm-up before the baseline (default: a quarter of --duration)")
	fs.IntVar(&c.conns, "conns", 32, "keep-alive connections of the valid load, one goroutine each")
	fs.IntVar(&c.floodConns, "flood-conns", 32, "further connections that send forged and garbage tokens during the flood phase")
	fs.IntVar(&c.sessions, "sessions", 8, "live sessions each valid connection keeps open and verifies in turn")
	fs.DurationVar(&c.sample, "sample", 5*time.Second, "how often the server's RSS and /debug/stats are sampled")
	fs.DurationVar(&c.settle, "settle", 10*time.Second, "how long to wait, after the load stops, for the goroutines to return to the idle count")
	fs.IntVar(&c.goroutineSlack, "goroutine-slack", 5, "how far from the idle count the goroutines may settle")
	fs.Float64Var(&c.maxGrowthPct, "max-rss-growth-pct", 20, "RSS growth after the warm-up allowed, in percent of RSS after the warm-up (the larger of this and --max-rss-growth-mib applies)")
	fs.Float64Var(&c.maxGrowthMiB, "max-rss-growth-mib", 16, "RSS growth after the warm-up allowed, in MiB (the larger of this and --max-rss-growth-pct applies)")
	fs.Float64Var(&c.starveFactor, "starve-factor", 10, "the flood starves valid traffic when their p99 grows by more than this factor or their throughput falls by more (reported, not an exit status)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object instead of the text report")
	fs.IntVar(&c.perRevocation, "rss-per-revocation", 512, "RSS growth allowed for each revocation stored after the warm-up, in bytes: the list must keep them (measured: 155 to 357)")
	fs.BoolVar(&c.closes, "closes", true, "close sessions; false: a control run that drops its oldest session unclosed instead, so that the revocation list stays empty and RSS growth cannot be stored data")
	fs.IntVar(&c.serverCPU, "server-cpu", 0, "CPU the server is pinned to")
	fs.IntVar(&c.clientCPU, "client-cpu", 1, "CPU the load generator is pinned to")
	fs.BoolVar(&c.noPin, "no-pin", false, "do not pin anything to CPUs")
	fs.StringVar(&c.sessiond, "sessiond", "", "sessiond binary to run (default: go build ./cmd/sessiond)")
	fs.StringVar(&c.tmpDir, "tmp-dir", "", "where the data directory goes (default: $TMPDIR); not a tmpfs, or closes cost nothing")
	fs.BoolVar(&c.verbose, "v", false, "echo the server's log to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessiond-bench soak: unexpected argument %q\n", fs.Arg(0))
		return c, errUsage
	}
	warmupGiven := false
	fs.Visit(func(f *flag.Flag) { warmupGiven = warmupGiven || f.Name == "warmup" })
	if !warmupGiven {
		c.warmup = c.duration / 4
	}
	var bad string
	switch {
	case c.duration <= 0 || c.warmup < 0 || c.warmup >= c.duration:
		bad = "--duration must be positive and --warmup from 0 to less than --duration"
	case (c.duration-c.warmup)/3 < 500*time.Millisecond:
		bad = "--duration minus --warmup must leave at least 500ms for each of baseline, flood and recovery"
	case c.conns < 1 || c.floodConns < 1:
		bad = "--conns and --flood-conns must be at least 1"
	case c.sessions < 2:
		bad = "--sessions must be at least 2"
	case c.sample <= 0 || c.settle < 0 || c.goroutineSlack < 0:
		bad = "--sample must be positive, --settle and --goroutine-slack not negative"
	case c.maxGrowthPct < 0 || c.maxGrowthMiB < 0 || c.perRevocation < 0 || !(c.starveFactor > 1):
		bad = "--max-rss-growth-pct, --max-rss-growth-mib and --rss-per-revocation must not be negative, --starve-factor must be over 1"
	}
	if bad != "" {
		fmt.Fprintln(stderr, "sessiond-bench soak:", bad)
		return c, errUsage
	}
	return c, nil
}

// soak is the soak subcommand.
func soak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseSoakFlags(args, stderr)
	if err != nil {
		return err
	}
	rep, err := runSoak(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.json {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeText(stdout)
	}
	if err != nil {
		return err
	}
	if fails := rep.failures(); len(fails) > 0 {
		return fmt.Errorf("%w: %s", errSoakFailed, strings.Join(fails, "; "))
	}
	return nil
}

// Phase names, in order.
const (
	phaseWarmup   = "warmup"
	phaseBaseline = "baseline"
	phaseFlood    = "flood"
	phaseRecovery = "recovery"
	phaseAfter    = "after" // the load has stopped
)

// soakRun is one soak run in progress.
type soakRun struct {
	cfg        soakConfig
	b          *bench
	srv        *server
	smp        *sampler
	stop       atomic.Bool // set when ctx ends: the sources run dry
	valid      []*soakSource
	flood      []*floodSource
	validSrcs  []source
	floodSrcs  []source
	floodPool  []floodToken
	realHeader string
}

// soakPhase is what one phase measured.
type soakPhase struct {
	name   string
	length time.Duration
	window time.Duration // the part of the phase whose latency counts
	valid  loadResult
	flood  *loadResult // the flood phase only
	kinds  [numKinds]histogram
	sent   [numKinds]uint64 // valid requests sent in the phase, by kind
}

func runSoak(ctx context.Context, cfg soakConfig, stderr io.Writer) (_ *soakReport, err error) {
	b := &bench{
		cfg: config{
			conns: cfg.conns, serverCPU: cfg.serverCPU, clientCPU: cfg.clientCPU, noPin: cfg.noPin,
			sessiond: cfg.sessiond, tmpDir: cfg.tmpDir, verbose: cfg.verbose,
		},
		stderr:  stderr,
		started: time.Now(),
	}
	b.machineCPU, b.machineKernel, b.goVers = machine()
	if b.tmp, err = os.MkdirTemp(cfg.tmpDir, "sessiond-soak-"); err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(b.tmp); err == nil {
			err = rerr
		}
	}()
	if isTmpfs(b.tmp) {
		b.note("%s is a tmpfs, where fsync costs nothing: closes are cheaper than on disk (use --tmp-dir)", b.tmp)
	}
	b.sessiond = cfg.sessiond
	if b.sessiond == "" {
		b.progress("building sessiond")
		if b.sessiond, err = buildSessiond(ctx, b.tmp, stderr); err != nil {
			return nil, err
		}
	}
	// Pin after building, or the compiler would run on one CPU.
	if err := b.choosePinning(stderr); err != nil {
		return nil, err
	}
	if err := b.place(b.clientCPUs, 1); err != nil {
		return nil, err
	}
	defer b.place(b.allCPUs, runtime.NumCPU()) // for run's callers in this process

	srv, err := b.startSessiond(ctx, "soak", filepath.Join(b.tmp, "data"))
	if err != nil {
		return nil, err
	}
	defer srv.kill() // a no-op once stopped
	if host, _, err := net.SplitHostPort(srv.addr); err != nil || host != "127.0.0.1" {
		return nil, fmt.Errorf("the server listens on %q, not on 127.0.0.1", srv.addr)
	}

	r := &soakRun{cfg: cfg, b: b, srv: srv}
	stopSources := context.AfterFunc(ctx, func() { r.stop.Store(true) })
	defer stopSources()
	hc := &http.Client{
		Timeout: 10 * time.Second,
		// One connection per request, closed after it, so that the
		// sampler's own connection never lingers among the goroutines.
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	defer hc.CloseIdleConnections()

	realTok, err := openOne(ctx, hc, srv.addr, cfg.duration)
	if err != nil {
		return nil, fmt.Errorf("open a session for the flood's header: %w", err)
	}
	r.realHeader, _, _ = strings.Cut(realTok, ".")
	if r.floodPool, err = floodTokens(realTok, floodPoolSize, newRand()); err != nil {
		return nil, err
	}
	for i := range cfg.conns {
		s := &soakSource{want: cfg.sessions, noClose: !cfg.closes, step: i % soakCycle, stop: &r.stop}
		r.valid = append(r.valid, s)
		r.validSrcs = append(r.validSrcs, s)
	}
	for i := range cfg.floodConns {
		s := &floodSource{pool: r.floodPool, i: i * len(r.floodPool) / cfg.floodConns, stop: &r.stop}
		r.flood = append(r.flood, s)
		r.floodSrcs = append(r.floodSrcs, s)
	}

	if srv.admin == "" {
		return nil, errors.New("the server logged no admin address: its /debug/stats cannot be read")
	}
	r.smp = &sampler{pid: srv.pid, url: "http://" + srv.admin + "/debug/stats", hc: hc, start: time.Now(), phase: "idle"}
	idle := r.smp.take(ctx, "idle")
	if idle.Goroutines < 0 {
		return nil, fmt.Errorf("read the idle server's /debug/stats: %s", idle.Err)
	}
	b.progress("soak: server pid %d on %s: idle RSS %.1f MiB, %d goroutines", srv.pid, srv.addr, idle.RSS, idle.Goroutines)

	rest := cfg.duration - cfg.warmup
	phaseLen := rest / 3
	lastLen := rest - 2*phaseLen

	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Go(func() {
		t := time.NewTicker(cfg.sample)
		defer t.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
				// A sample cut short by the end of sampling is no failure.
				if x := r.smp.probe(sampleCtx, ""); sampleCtx.Err() == nil {
					r.smp.record(x)
				}
			}
		}
	})
	defer func() { stopSampling(); sampling.Wait() }()

	rep := &soakReport{cfg: cfg, b: b}
	if h, err := base64.RawURLEncoding.DecodeString(r.realHeader); err == nil {
		rep.floodHeader = string(h)
	}
	type step struct {
		name   string
		length time.Duration
		flood  bool
		marks  []mark
	}
	steps := []step{
		{phaseWarmup, cfg.warmup, false, nil},
		{phaseBaseline, phaseLen, false, []mark{{phaseSettle(phaseLen), "after_warmup"}}},
		{phaseFlood, phaseLen, true, []mark{{phaseLen / 2, "mid_flood"}}},
		{phaseRecovery, lastLen, false, []mark{{lastLen - min(time.Second, lastLen/4), "end"}}},
	}
	for _, st := range steps {
		if st.length <= 0 {
			continue // a run without warm-up
		}
		what := ""
		if st.flood {
			what = fmt.Sprintf(", and forged tokens on %d more connections", cfg.floodConns)
		}
		b.progress("soak: %s for %s: mixed load on %d connections%s", st.name, st.length, cfg.conns, what)
		p := r.runPhase(ctx, st.name, st.length, st.flood, st.marks...)
		rep.phases = append(rep.phases, p)
		b.progress("soak: %-8s valid %7.0f req/s  p50 %.3f ms  p99 %.3f ms  errors %d%s", p.name, p.valid.rps(),
			ms(p.valid.Hist.quantile(0.5)), ms(p.valid.Hist.quantile(0.99)), p.valid.Errors, p.floodSummary())
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := srv.alive(); err != nil {
			return nil, err
		}
		if errors.Is(p.valid.FirstErr, errServerGone) {
			return nil, p.valid.FirstErr
		}
	}
	stopSampling()
	sampling.Wait()

	r.smp.setPhase(phaseAfter)
	rep.settled, rep.settleTook = r.settleGoroutines(ctx, idle.Goroutines)
	b.progress("soak: load stopped; goroutines %d after %.1fs (idle %d)", rep.settled.Goroutines, rep.settleTook.Seconds(), idle.Goroutines)
	if rep.peakRSS, _, err = procMemory(srv.pid); err != nil {
		return nil, err
	}
	if err := srv.stop(); err != nil {
		rep.stopErr = err
	}

	rep.samples = r.smp.all()
	rep.idle = idle
	rep.afterWarmup, _ = findSample(rep.samples, "after_warmup")
	rep.end, _ = findSample(rep.samples, "end")
	for _, s := range r.valid {
		for k := range numKinds {
			rep.counts[k] += s.sentN[k]
		}
		rep.closedActive += s.closedActive
	}
	for _, s := range r.flood {
		rep.forged += s.forged
		rep.garbage += s.garbage
		rep.inactive += s.inactive
	}
	for _, p := range rep.phases {
		rep.errors += p.valid.Errors
		rep.firstErr = pickErr(rep.firstErr, p.valid.FirstErr)
		if p.flood != nil {
			rep.floodErrors += p.flood.Errors
			rep.firstErr = pickErr(rep.firstErr, p.flood.FirstErr)
		}
		if p.valid.OtherCPU > 0.1 {
			b.note("%s: other processes took %.2f of the two CPUs' time: its figures are noisy", p.name, p.valid.OtherCPU)
		}
	}
	rep.errors += rep.floodErrors
	if rep.firstErr != nil {
		b.note("the first failed request: %v", rep.firstErr)
	}
	for _, x := range rep.samples {
		if x.Err != "" {
			b.note("a sample at %.1fs (%s) failed: %s", x.At.Seconds(), x.Phase, x.Err)
		}
	}
	if f := rep.fairness(); f.starved {
		b.note("the flood STARVED valid traffic (%s); the server verifies forged tokens at the same priority as valid ones: bounding the concurrent cold (uncached) verifications with a semaphore, so that cached tokens, opens and closes skip that queue, would fix it", f.summary())
	}
	b.progress("soak: done")
	return rep, nil
}

// phaseSettle is the start of a phase that its latency window leaves out.
func phaseSettle(length time.Duration) time.Duration { return min(time.Second, length/5) }

// mark asks for a labelled sample at a point of a phase.
type mark struct {
	at    time.Duration // since the phase began
	label string
}

// runPhase runs the valid load, and the flood when flood is set, for
// length, and takes the marked samples meanwhile.
func (r *soakRun) runPhase(ctx context.Context, name string, length time.Duration, flood bool, marks ...mark) soakPhase {
	settle := phaseSettle(length)
	r.smp.setPhase(name)
	start := time.Now()
	var sent0 [numKinds]uint64
	for _, s := range r.valid {
		s.startPhase(start.Add(settle))
		for k := range numKinds {
			sent0[k] += s.sentN[k]
		}
	}
	cpus := r.b.loadCPUs()
	validc := make(chan loadResult, 1)
	go func() { validc <- runLoad(r.srv.addr, r.validSrcs, settle, length-settle, r.srv.pid, cpus) }()
	var floodc chan loadResult
	if flood {
		floodc = make(chan loadResult, 1)
		go func() { floodc <- runLoad(r.srv.addr, r.floodSrcs, settle, length-settle, 0, nil) }()
	}
	for _, m := range marks {
		select {
		case <-time.After(time.Until(start.Add(m.at))):
			r.smp.take(ctx, m.label)
		case <-ctx.Done():
		}
	}
	p := soakPhase{name: name, length: length, window: length - settle, valid: <-validc}
	if floodc != nil {
		f := <-floodc
		p.flood = &f
	}
	for _, s := range r.valid {
		for k := range numKinds {
			p.kinds[k].merge(&s.lat[k])
			p.sent[k] += s.sentN[k]
		}
	}
	for k := range numKinds {
		p.sent[k] -= sent0[k]
	}
	return p
}

func (p *soakPhase) floodSummary() string {
	if p.flood == nil {
		return ""
	}
	return fmt.Sprintf("; flood %.0f req/s, errors %d", p.flood.rps(), p.flood.Errors)
}

// settleGoroutines waits, for at most --settle, until the server's
// goroutines are back within --goroutine-slack of idle, and returns the
// last sample and how long it waited.
func (r *soakRun) settleGoroutines(ctx context.Context, idle int) (soakSample, time.Duration) {
	start := time.Now()
	for {
		x := r.smp.probe(ctx, "settled")
		took := time.Since(start)
		if x.Goroutines >= 0 && abs(x.Goroutines-idle) <= r.cfg.goroutineSlack || took >= r.cfg.settle || ctx.Err() != nil {
			r.smp.record(x)
			return x, took
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func abs(x int) int { return max(x, -x) }

// openOne opens a session on the server at addr for longer than the run
// and returns its token.
func openOne(ctx context.Context, hc *http.Client, addr string, run time.Duration) (string, error) {
	secs := min(int64(run/time.Second)+3600, 365*24*3600)
	body := fmt.Sprintf(`{"jsonrpc":"2.0","method":"session.open_session","params":{"expires_in":%d},"id":1}`, secs)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s: %.200s", resp.Status, reply)
	}
	result, err := decodeReply(reply)
	if err != nil {
		return "", err
	}
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(result, &r); err != nil || !jwtShaped([]byte(r.AccessToken)) {
		return "", fmt.Errorf("bad open_session result %.300s", result)
	}
	return r.AccessToken, nil
}

// The valid load.

// soakKind is the kind of a valid request.
type soakKind int

const (
	kindVerify       soakKind = iota // a live session: must be active
	kindVerifyClosed                 // a session this connection closed: must be inactive
	kindOpen
	kindClose
	numKinds
)

func (k soakKind) String() string {
	return [numKinds]string{"verify", "verify_closed", "open", "close"}[k]
}

// soakCycle is the length of a valid connection's cycle of requests.
const soakCycle = 20

// closedKeep is how many of its closed sessions a connection keeps
// verifying.
const closedKeep = 16

var expectInactive = newExpect(`{"active":false}`)

// soakSource is one connection of the valid load. It keeps want live
// sessions, all opened through the server, and in every soakCycle requests
// sends 1 open, 1 close of its oldest live session, 1 verification of the
// session it just closed, 1 of an older closed one (its last closedKeep, in
// turn), and 16 verifications of its live sessions, in turn. A session thus
// lives from open to close as in production: verified the first time with
// the signature check, then from the verifier's cache, closed, and from then
// on inactive, which is checked at once and again later. Sessions of one
// connection are its own: no other connection closes them.
//
// The latency of each reply received from from on is added to lat, by
// kind; check records it, so it covers only replies that arrived.
type soakSource struct {
	want       int
	noClose    bool     // drop the oldest session instead of closing it (--closes=false)
	live       []string // oldest first
	verify     int      // the live session verified last
	closed     []string // a ring of the last closedKeep closed sessions
	closedNext int      // where the next closed session goes once the ring is full
	closedTurn int      // the closed session verified next, modulo len(closed)
	justClosed string   // closed by the last close, verified next at step 11
	closing    string   // the session of the close in flight
	step       int
	last       soakKind
	stop       *atomic.Bool

	sent         time.Time
	from         time.Time
	lat          [numKinds]histogram
	sentN        [numKinds]uint64
	closedActive uint64
}

// startPhase starts a new latency window at from.
func (s *soakSource) startPhase(from time.Time) {
	s.from = from
	s.lat = [numKinds]histogram{}
}

func (s *soakSource) next(buf []byte) ([]byte, bool) {
	if s.stop.Load() {
		return buf, false
	}
	s.closing = ""
	step := s.step
	s.step = (s.step + 1) % soakCycle
	switch {
	case len(s.live) < s.want || step == 0:
		// Also whenever an open failed and the connection is short.
		s.last = kindOpen
		buf = append(buf, openBody...)
	case step == 10 && s.noClose:
		s.live = slices.Delete(s.live, 0, 1)
		s.last = kindVerify
		s.verify = (s.verify + 1) % len(s.live)
		buf = verifyBody(buf, s.live[s.verify])
	case step == 10:
		s.last = kindClose
		s.closing = s.live[0]
		s.live = slices.Delete(s.live, 0, 1)
		buf = closeBody(buf, s.closing)
	case step == 11 && s.justClosed != "":
		s.last = kindVerifyClosed
		buf = verifyBody(buf, s.justClosed)
		s.justClosed = ""
	case step == 5 && len(s.closed) > 0:
		s.last = kindVerifyClosed
		buf = verifyBody(buf, s.closed[s.closedTurn%len(s.closed)])
		s.closedTurn++
	default:
		s.last = kindVerify
		s.verify = (s.verify + 1) % len(s.live)
		buf = verifyBody(buf, s.live[s.verify])
	}
	s.sentN[s.last]++
	s.sent = time.Now()
	return buf, true
}

func (s *soakSource) check(reply []byte) error {
	if !s.sent.Before(s.from) {
		s.lat[s.last].add(time.Since(s.sent))
	}
	switch s.last {
	case kindOpen:
		tok, err := openedToken(reply)
		if err != nil {
			return err
		}
		s.live = append(s.live, string(tok))
	case kindClose:
		if err := expectTrue.check(reply); err != nil {
			return err
		}
		if len(s.closed) < closedKeep {
			s.closed = append(s.closed, s.closing)
		} else {
			s.closed[s.closedNext] = s.closing
			s.closedNext = (s.closedNext + 1) % closedKeep
		}
		s.justClosed = s.closing
	case kindVerifyClosed:
		if err := expectInactive.check(reply); err != nil {
			if expectActive.check(reply) == nil {
				s.closedActive++
				return errClosedActive
			}
			return err
		}
	default:
		return expectActive.check(reply)
	}
	return nil
}

// The flood.

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
	header := parts[0]
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("the real token's claims: %w", err)
	}
	var rc struct {
		Issuer   string `json:"iss"`
		Expires  int64  `json:"exp"`
		IssuedAt int64  `json:"iat"`
	}
	if err := json.Unmarshal(raw, &rc); err != nil {
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
		c, _ := json.Marshal(struct {
			Issuer   string `json:"iss"`
			Expires  int64  `json:"exp"`
			IssuedAt int64  `json:"iat"`
			ID       string `json:"jti"`
		}{rc.Issuer, rc.Expires, rc.IssuedAt, randomID(r).String()})
		return b64(c)
	}
	forgedSig := func() string {
		sig := randBytes(64)
		sig[63] &= 0x0f // S < 2^252 < the group order: canonical
		return b64(sig)
	}
	toks := make([]floodToken, n)
	for i := range toks {
		if i%8 != 7 {
			toks[i] = floodToken{tok: header + "." + claims() + "." + forgedSig(), forged: true}
			continue
		}
		var tok string
		switch (i / 8) % 6 {
		case 0: // random base64url, no dots
			tok = b64(randBytes(32 + int(r.Uint64()%200)))
		case 1: // three random segments
			tok = b64(randBytes(30)) + "." + b64(randBytes(90)) + "." + b64(randBytes(64))
		case 2: // a well-formed token under a kid the server does not know
			kid := b64(randBytes(32))
			tok = b64([]byte(`{"alg":"EdDSA","kid":"`+kid+`","typ":"session+jwt"}`)) + "." + claims() + "." + forgedSig()
		case 3: // alg none, no signature
			tok = b64([]byte(`{"alg":"none","typ":"session+jwt"}`)) + "." + claims() + "."
		case 4: // a forged token with its signature cut short
			tok = header + "." + claims() + "." + forgedSig()[:40]
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
	pool []floodToken
	i    int
	stop *atomic.Bool
	last bool // whether the request in flight is forged

	forged, garbage uint64 // replies received
	inactive        uint64 // of which {"active":false}
}

func (s *floodSource) next(buf []byte) ([]byte, bool) {
	if s.stop.Load() {
		return buf, false
	}
	t := s.pool[s.i]
	s.i = (s.i + 1) % len(s.pool)
	s.last = t.forged
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

// Sampling.

// soakSample is one reading of the server's memory and goroutines.
type soakSample struct {
	At         time.Duration // since the idle sample
	Phase      string
	Label      string  // "" for a periodic sample
	RSS        float64 // VmRSS, MiB
	RSSAnon    float64 // of which anonymous (heap, stacks), MiB
	RSSFile    float64 // of which file-backed (the binary, Badger's mmapped files), MiB
	Goroutines int     // -1 when /debug/stats could not be read
	HeapAlloc  float64 // MiB
	HeapSys    float64 // MiB
	GCCycles   uint64
	Err        string
}

// sampler reads the server's VmRSS and GET /debug/stats.
type sampler struct {
	pid   int
	url   string
	hc    *http.Client
	start time.Time

	mu      sync.Mutex
	phase   string
	samples []soakSample
}

func (s *sampler) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// take probes and records a sample.
func (s *sampler) take(ctx context.Context, label string) soakSample {
	x := s.probe(ctx, label)
	s.record(x)
	return x
}

func (s *sampler) record(x soakSample) {
	s.mu.Lock()
	s.samples = append(s.samples, x)
	s.mu.Unlock()
}

// all returns the samples in time order.
func (s *sampler) all() []soakSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.samples)
	slices.SortStableFunc(out, func(a, b soakSample) int { return int(a.At - b.At) })
	return out
}

func (s *sampler) probe(ctx context.Context, label string) soakSample {
	s.mu.Lock()
	x := soakSample{At: time.Since(s.start), Phase: s.phase, Label: label, Goroutines: -1}
	s.mu.Unlock()
	var errs []string
	if _, cur, err := procMemory(s.pid); err != nil {
		errs = append(errs, err.Error())
	} else {
		x.RSS = cur
		x.RSSAnon, x.RSSFile = procRSSSplit(s.pid)
	}
	st, err := s.stats(ctx)
	if err != nil {
		errs = append(errs, err.Error())
	} else {
		x.Goroutines = st.Goroutines
		x.HeapAlloc = float64(st.HeapAlloc) / (1 << 20)
		x.HeapSys = float64(st.HeapSys) / (1 << 20)
		x.GCCycles = st.GCCycles
	}
	x.Err = strings.Join(errs, "; ")
	return x
}

// procRSSSplit returns a process's anonymous and file-backed resident
// memory in MiB (RssAnon and RssFile; 0 when unknown). Badger mmaps its
// write-ahead log and tables, so the two grow for different reasons.
func procRSSSplit(pid int) (anon, file float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(data)) {
		name, v, ok := strings.Cut(line, ":")
		if !ok || name != "RssAnon" && name != "RssFile" {
			continue
		}
		var kb float64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%g kB", &kb); err != nil {
			continue
		}
		if name == "RssAnon" {
			anon = kb / 1024
		} else {
			file = kb / 1024
		}
	}
	return anon, file
}

// serverStats is the reply of GET /debug/stats.
type serverStats struct {
	Goroutines int    `json:"goroutines"`
	HeapAlloc  uint64 `json:"heap_alloc_bytes"`
	HeapSys    uint64 `json:"heap_sys_bytes"`
	GCCycles   uint64 `json:"gc_cycles"`
}

func (s *sampler) stats(ctx context.Context) (serverStats, error) {
	var st serverStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return st, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /debug/stats: %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st); err != nil {
		return st, fmt.Errorf("GET /debug/stats: %w", err)
	}
	if st.Goroutines <= 0 {
		return st, errors.New("GET /debug/stats: no goroutine count")
	}
	return st, nil
}

// findSample returns the first sample with the label.
func findSample(samples []soakSample, label string) (soakSample, bool) {
	for _, x := range samples {
		if x.Label == label {
			return x, true
		}
	}
	return soakSample{Goroutines: -1}, false
}

// The report.

// soakReport is the outcome of a soak run.
type soakReport struct {
	cfg     soakConfig
	b       *bench
	phases  []soakPhase
	samples []soakSample

	idle, afterWarmup, end, settled soakSample
	settleTook                      time.Duration
	peakRSS                         float64 // VmHWM at the end, MiB
	stopErr                         error
	floodHeader                     string // the forged tokens' header, decoded

	counts                    [numKinds]uint64 // valid requests sent
	closedActive              uint64
	forged, garbage, inactive uint64 // flood replies
	errors, floodErrors       uint64 // errors includes floodErrors
	firstErr                  error
}

func (r *soakReport) phase(name string) *soakPhase {
	for i := range r.phases {
		if r.phases[i].name == name {
			return &r.phases[i]
		}
	}
	return nil
}

// storedAfterWarmup is how many revocations the load stored after the
// warm-up: every close of a live session stores one, kept for the token's
// remaining lifetime (an hour here), so the list only grows during a run.
func (r *soakReport) storedAfterWarmup() uint64 {
	var n uint64
	for _, p := range r.phases {
		if p.name != phaseWarmup {
			n += p.sent[kindClose]
		}
	}
	return n
}

// rssVerdict is the memory check.
type rssVerdict struct {
	known                bool
	growthMiB, growthPct float64
	limitMiB             float64
	ok                   bool
}

func (r *soakReport) rss() rssVerdict {
	v := checkRSS(r.afterWarmup.RSS, r.end.RSS, r.cfg.maxGrowthPct, r.cfg.maxGrowthMiB)
	if n := r.storedAfterWarmup(); v.known && n > 0 {
		// Data the server must keep is not a leak: every close adds an
		// entry to the revocation list that lives until its token's
		// expiry. Allow for it, at --rss-per-revocation bytes an entry.
		v.limitMiB += float64(n) * float64(r.cfg.perRevocation) / (1 << 20)
		v.ok = v.growthMiB <= v.limitMiB
	}
	return v
}

// checkRSS compares RSS at the end with RSS after the warm-up: the growth
// may be at most the larger of pct percent and mib MiB.
func checkRSS(afterWarmup, end, pct, mib float64) rssVerdict {
	if afterWarmup <= 0 || end <= 0 {
		return rssVerdict{}
	}
	v := rssVerdict{known: true, growthMiB: end - afterWarmup}
	v.growthPct = 100 * v.growthMiB / afterWarmup
	v.limitMiB = max(afterWarmup*pct/100, mib)
	v.ok = v.growthMiB <= v.limitMiB
	return v
}

// checkGoroutines reports whether end is within slack of idle (-1 is
// unknown: not).
func checkGoroutines(idle, end, slack int) bool {
	return idle >= 0 && end >= 0 && abs(end-idle) <= slack
}

// fairnessVerdict compares the valid requests during the flood with the
// baseline.
type fairnessVerdict struct {
	known                  bool
	p50Ratio, p99Ratio     float64 // all valid requests, flood / baseline
	verifyP99Ratio         float64 // verifications of live sessions
	rpsRatio               float64
	starved                bool
	factor                 float64
	baseP99, floodP99      time.Duration
	baseVerify, floodVerif time.Duration
}

func (r *soakReport) fairness() fairnessVerdict {
	base, fl := r.phase(phaseBaseline), r.phase(phaseFlood)
	if base == nil || fl == nil || base.valid.Hist.n == 0 || fl.valid.Hist.n == 0 {
		return fairnessVerdict{}
	}
	ratio := func(a, b time.Duration) float64 { return ratioOrZero(float64(a), float64(b)) }
	f := fairnessVerdict{
		known:      true,
		factor:     r.cfg.starveFactor,
		baseP99:    base.valid.Hist.quantile(0.99),
		floodP99:   fl.valid.Hist.quantile(0.99),
		baseVerify: base.kinds[kindVerify].quantile(0.99),
		floodVerif: fl.kinds[kindVerify].quantile(0.99),
		rpsRatio:   ratioOrZero(fl.valid.rps(), base.valid.rps()),
	}
	f.p50Ratio = ratio(fl.valid.Hist.quantile(0.5), base.valid.Hist.quantile(0.5))
	f.p99Ratio = ratio(f.floodP99, f.baseP99)
	f.verifyP99Ratio = ratio(f.floodVerif, f.baseVerify)
	f.starved = f.p99Ratio > f.factor || f.verifyP99Ratio > f.factor || f.rpsRatio < 1/f.factor
	return f
}

func (f fairnessVerdict) summary() string {
	return fmt.Sprintf("valid p99 ×%.1f, verify p99 ×%.1f, valid throughput ×%.2f of baseline; starved beyond ×%g or below ×%.2g",
		f.p99Ratio, f.verifyP99Ratio, f.rpsRatio, f.factor, 1/f.factor)
}

// failures returns why the run failed, or nothing.
func (r *soakReport) failures() []string {
	var fs []string
	if r.errors > 0 {
		fs = append(fs, fmt.Sprintf("%d requests failed (first: %v)", r.errors, r.firstErr))
	}
	if r.stopErr != nil {
		fs = append(fs, fmt.Sprintf("the server did not stop cleanly: %v", r.stopErr))
	}
	if !checkGoroutines(r.idle.Goroutines, r.settled.Goroutines, r.cfg.goroutineSlack) {
		fs = append(fs, fmt.Sprintf("goroutines %d %.1fs after the load stopped, idle %d ± %d",
			r.settled.Goroutines, r.settleTook.Seconds(), r.idle.Goroutines, r.cfg.goroutineSlack))
	}
	switch v := r.rss(); {
	case !v.known:
		fs = append(fs, "RSS after the warm-up or at the end unknown")
	case !v.ok:
		fs = append(fs, fmt.Sprintf("RSS grew %.1f MiB (%.1f%%) after the warm-up, more than %.1f MiB", v.growthMiB, v.growthPct, v.limitMiB))
	}
	return fs
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

func (r *soakReport) writeText(w io.Writer) error {
	c, b := r.cfg, r.b
	rep := report{bench: b}
	fmt.Fprintf(w, "sessiond-bench soak: %s of mixed open / verify / close load on %d connections, %d live sessions each\n", c.duration, c.conns, c.sessions)
	var ph []string
	for _, p := range r.phases {
		s := fmt.Sprintf("%s %s", p.name, p.length.Round(time.Millisecond))
		if p.flood != nil {
			s += fmt.Sprintf(" (plus %d connections of forged tokens)", c.floodConns)
		}
		ph = append(ph, s)
	}
	fmt.Fprintf(w, "phases: %s; samples every %s\n", strings.Join(ph, ", "), c.sample)
	fmt.Fprintf(w, "%s; %s, %d CPUs, %s, %s\n\n", rep.pinning(), b.machineCPU, len(b.allCPUs), b.machineKernel, b.goVers)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tvalid_rps\tp50_ms\tp99_ms\tverify_p50\tverify_p99\tclosed_p99\topen_p99\tclose_p99\tflood_rps\tserver_cpu\tclient_cpu\terrors\t")
	for _, p := range r.phases {
		floodRPS, errs := "-", p.valid.Errors
		if p.flood != nil {
			floodRPS = fmt.Sprintf("%.0f", p.flood.rps())
			errs += p.flood.Errors
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%.2f\t%.2f\t%d\t\n", p.name, p.valid.rps(),
			ms(p.valid.Hist.quantile(0.5)), ms(p.valid.Hist.quantile(0.99)),
			ms(p.kinds[kindVerify].quantile(0.5)), ms(p.kinds[kindVerify].quantile(0.99)),
			ms(p.kinds[kindVerifyClosed].quantile(0.99)), ms(p.kinds[kindOpen].quantile(0.99)), ms(p.kinds[kindClose].quantile(0.99)),
			floodRPS, p.valid.ServerCPU, p.valid.ClientCPU, errs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "  latencies in ms over each phase but its first %s; p50_ms, p99_ms: every valid request; verify_*: verifications\n", phaseSettle(r.phases[len(r.phases)-1].length))
	fmt.Fprintln(w, "  of live sessions; closed_p99: of closed sessions; server_cpu, client_cpu: cores busy in the window")

	var total uint64
	for _, n := range r.counts {
		total += n
	}
	fmt.Fprintf(w, "\nrequests    %d valid: %d verify of live sessions, %d verify of closed sessions, %d open, %d close\n",
		total, r.counts[kindVerify], r.counts[kindVerifyClosed], r.counts[kindOpen], r.counts[kindClose])
	fmt.Fprintf(w, "errors      %d (must be 0): %s; closed sessions reported active: %d\n", r.errors, verdict(r.errors == 0), r.closedActive)
	served := r.forged + r.garbage
	fmt.Fprintf(w, "flood       %d forged tokens (header %s, the server's; random claims and signature, with a canonical S:\n", r.forged, r.floodHeader)
	fmt.Fprintf(w, "            a full Ed25519 verification each)")
	fmt.Fprintf(w, " and %d garbage tokens on %d connections; %d of %d answered {\"active\":false}, %d errors: %s\n",
		r.garbage, c.floodConns, r.inactive, served, r.floodErrors, verdict(served > 0 && r.inactive == served && r.floodErrors == 0))
	if f := r.fairness(); f.known {
		v := "ok"
		if f.starved {
			v = "STARVED"
		}
		fmt.Fprintf(w, "fairness    valid p99 %.3f ms during the flood vs %.3f ms before it (×%.1f), verify p99 %.3f vs %.3f ms (×%.1f),\n",
			ms(f.floodP99), ms(f.baseP99), f.p99Ratio, ms(f.floodVerif), ms(f.baseVerify), f.verifyP99Ratio)
		fmt.Fprintf(w, "            valid p50 ×%.1f, valid throughput %.0f%% of baseline: %s (starved: a p99 over ×%g, or throughput under %.0f%%; reported, not an exit status)\n",
			f.p50Ratio, 100*f.rpsRatio, v, f.factor, 100/f.factor)
	}
	if v := r.rss(); v.known {
		fmt.Fprintf(w, "memory      RSS idle %.1f MiB, after warm-up %.1f MiB, at the end %.1f MiB: growth %+.1f MiB (%+.1f%%), allowed %.1f MiB\n",
			r.idle.RSS, r.afterWarmup.RSS, r.end.RSS, v.growthMiB, v.growthPct, v.limitMiB)
		fmt.Fprintf(w, "            (the larger of %g%% and %g MiB, plus %d bytes per revocation stored since): %s; peak RSS (VmHWM) %.1f MiB\n", c.maxGrowthPct, c.maxGrowthMiB, c.perRevocation, verdict(v.ok), r.peakRSS)
		fmt.Fprintf(w, "            of which anonymous %.1f → %.1f MiB, file-backed (Badger's mmapped log and tables, the binary) %.1f → %.1f MiB;\n",
			r.afterWarmup.RSSAnon, r.end.RSSAnon, r.afterWarmup.RSSFile, r.end.RSSFile)
		fmt.Fprintf(w, "            Go heap in use %.1f → %.1f MiB, obtained from the OS %.1f → %.1f MiB\n",
			r.afterWarmup.HeapAlloc, r.end.HeapAlloc, r.afterWarmup.HeapSys, r.end.HeapSys)
		if n := r.storedAfterWarmup(); n > 0 {
			fmt.Fprintf(w, "            the revocation list grew by %d entries after the warm-up (one per close, kept 1 h): %.0f bytes of RSS growth per entry\n",
				n, v.growthMiB*(1<<20)/float64(n))
		} else if !c.closes {
			fmt.Fprintln(w, "            control run (--closes=false): no session was closed, the revocation list stayed empty")
		}
	} else {
		fmt.Fprintln(w, "memory      RSS after the warm-up or at the end unknown: FAIL")
	}
	floodPeak := -1
	for _, x := range r.samples {
		if x.Phase == phaseFlood {
			floodPeak = max(floodPeak, x.Goroutines)
		}
	}
	fmt.Fprintf(w, "goroutines  idle %d, after warm-up %d, peak during the flood %d, after the load %d (%.1fs after it stopped; allowed idle ± %d): %s\n",
		r.idle.Goroutines, r.afterWarmup.Goroutines, floodPeak, r.settled.Goroutines, r.settleTook.Seconds(), c.goroutineSlack,
		verdict(checkGoroutines(r.idle.Goroutines, r.settled.Goroutines, c.goroutineSlack)))
	if r.stopErr != nil {
		fmt.Fprintf(w, "stop        the server did not stop cleanly on SIGTERM: %v\n", r.stopErr)
	}

	fmt.Fprintf(w, "\nsamples (t: seconds since the idle sample)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t\tphase\trss_mib\tanon_mib\tfile_mib\tgoroutines\theap_alloc_mib\theap_sys_mib\tgc_cycles\t\t")
	for _, x := range r.samples {
		fmt.Fprintf(tw, "%.1f\t%s\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%.1f\t%d\t%s\t\n", x.At.Seconds(), x.Phase, x.RSS, x.RSSAnon, x.RSSFile,
			x.Goroutines, x.HeapAlloc, x.HeapSys, x.GCCycles, x.Label)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(b.notes) > 0 {
		fmt.Fprintln(w, "\nnotes")
		for _, n := range b.notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	if fs := r.failures(); len(fs) > 0 {
		fmt.Fprintf(w, "\nFAIL: %s\n", strings.Join(fs, "; "))
	} else {
		fmt.Fprintln(w, "\nPASS")
	}
	fmt.Fprintf(w, "total time %.0fs\n", time.Since(b.started).Seconds())
	return nil
}

// JSON output.
type (
	jsonSoak struct {
		Pass         bool               `json:"pass"`
		Failures     []string           `json:"failures"`
		Errors       uint64             `json:"errors"`
		FirstError   string             `json:"first_error,omitempty"`
		ClosedActive uint64             `json:"closed_reported_active"`
		Requests     map[string]uint64  `json:"requests"`
		Phases       []jsonSoakPhase    `json:"phases"`
		Flood        jsonFlood          `json:"flood"`
		Fairness     *jsonFairness      `json:"fairness"`
		RSS          jsonSoakRSS        `json:"rss"`
		Goroutines   jsonSoakGoroutines `json:"goroutines"`
		Samples      []jsonSoakSample   `json:"samples"`
		Config       jsonSoakConfig     `json:"config"`
		Notes        []string           `json:"notes"`
	}
	jsonSoakPhase struct {
		Name      string                 `json:"name"`
		Seconds   float64                `json:"seconds"`
		Window    float64                `json:"window_s"`
		RPS       float64                `json:"valid_rps"`
		P50       float64                `json:"p50_ms"`
		P99       float64                `json:"p99_ms"`
		Kinds     map[string]jsonLatency `json:"by_kind"`
		Errors    uint64                 `json:"errors"`
		ServerCPU float64                `json:"server_cpu"`
		ClientCPU float64                `json:"client_cpu"`
		OtherCPU  float64                `json:"other_cpu"`
		FloodRPS  *float64               `json:"flood_rps,omitempty"`
		FloodErrs *uint64                `json:"flood_errors,omitempty"`
	}
	jsonLatency struct {
		N   uint64  `json:"n"`
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	}
	jsonFlood struct {
		Conns    int    `json:"conns"`
		Forged   uint64 `json:"forged"`
		Garbage  uint64 `json:"garbage"`
		Served   uint64 `json:"served"`
		Inactive uint64 `json:"inactive"`
		Errors   uint64 `json:"errors"`
		AllFalse bool   `json:"all_inactive"`
		Header   string `json:"header"`
	}
	jsonFairness struct {
		BaselineP99    float64 `json:"baseline_p99_ms"`
		FloodP99       float64 `json:"flood_p99_ms"`
		P99Ratio       float64 `json:"p99_ratio"`
		P50Ratio       float64 `json:"p50_ratio"`
		BaselineVerify float64 `json:"baseline_verify_p99_ms"`
		FloodVerify    float64 `json:"flood_verify_p99_ms"`
		VerifyP99Ratio float64 `json:"verify_p99_ratio"`
		RPSRatio       float64 `json:"rps_ratio"`
		Factor         float64 `json:"starve_factor"`
		Starved        bool    `json:"starved"`
	}
	jsonSoakRSS struct {
		Idle        float64 `json:"idle_mib"`
		AfterWarmup float64 `json:"after_warmup_mib"`
		End         float64 `json:"end_mib"`
		Peak        float64 `json:"peak_mib"`
		GrowthMiB   float64 `json:"growth_mib"`
		GrowthPct   float64 `json:"growth_pct"`
		LimitMiB    float64 `json:"limit_mib"`
		Pass        bool    `json:"pass"`
		// Revocations stored after the warm-up; they never expire during a run.
		StoredAfterWarmup uint64 `json:"revocations_stored_after_warmup"`
	}
	jsonSoakGoroutines struct {
		Idle        int     `json:"idle"`
		AfterWarmup int     `json:"after_warmup"`
		FloodPeak   int     `json:"flood_peak"`
		End         int     `json:"end"`
		SettleS     float64 `json:"settle_s"`
		Slack       int     `json:"slack"`
		Pass        bool    `json:"pass"`
	}
	jsonSoakSample struct {
		T          float64 `json:"t_s"`
		Phase      string  `json:"phase"`
		Label      string  `json:"label,omitempty"`
		RSS        float64 `json:"rss_mib"`
		RSSAnon    float64 `json:"rss_anon_mib"`
		RSSFile    float64 `json:"rss_file_mib"`
		Goroutines int     `json:"goroutines"`
		HeapAlloc  float64 `json:"heap_alloc_mib"`
		HeapSys    float64 `json:"heap_sys_mib"`
		GCCycles   uint64  `json:"gc_cycles"`
		Err        string  `json:"error,omitempty"`
	}
	jsonSoakConfig struct {
		Duration       float64 `json:"duration_s"`
		Warmup         float64 `json:"warmup_s"`
		Conns          int     `json:"conns"`
		FloodConns     int     `json:"flood_conns"`
		Sessions       int     `json:"sessions"`
		Closes         bool    `json:"closes"`
		Sample         float64 `json:"sample_s"`
		MaxGrowthPct   float64 `json:"max_rss_growth_pct"`
		MaxGrowthMiB   float64 `json:"max_rss_growth_mib"`
		GoroutineSlack int     `json:"goroutine_slack"`
		Pinning        string  `json:"pinning"`
		CPU            string  `json:"cpu"`
		CPUs           int     `json:"cpus"`
		Kernel         string  `json:"kernel"`
		Go             string  `json:"go"`
		TotalTime      float64 `json:"total_s"`
	}
)

func (r *soakReport) writeJSON(w io.Writer) error {
	c, b := r.cfg, r.b
	fails := r.failures()
	out := jsonSoak{
		Pass:         len(fails) == 0,
		Failures:     append([]string{}, fails...),
		Errors:       r.errors,
		ClosedActive: r.closedActive,
		Requests:     map[string]uint64{},
		Notes:        append([]string{}, b.notes...),
		Config: jsonSoakConfig{
			Duration: c.duration.Seconds(), Warmup: c.warmup.Seconds(), Conns: c.conns, FloodConns: c.floodConns,
			Sessions: c.sessions, Closes: c.closes, Sample: c.sample.Seconds(), MaxGrowthPct: c.maxGrowthPct, MaxGrowthMiB: c.maxGrowthMiB,
			GoroutineSlack: c.goroutineSlack, Pinning: (&report{bench: b}).pinning(), CPU: b.machineCPU,
			CPUs: len(b.allCPUs), Kernel: b.machineKernel, Go: b.goVers, TotalTime: round3(time.Since(b.started).Seconds()),
		},
	}
	if r.firstErr != nil {
		out.FirstError = r.firstErr.Error()
	}
	for k := range numKinds {
		out.Requests[k.String()] = r.counts[k]
	}
	for _, p := range r.phases {
		jp := jsonSoakPhase{
			Name: p.name, Seconds: round3(p.length.Seconds()), Window: round3(p.window.Seconds()),
			RPS: round3(p.valid.rps()), P50: round3(ms(p.valid.Hist.quantile(0.5))), P99: round3(ms(p.valid.Hist.quantile(0.99))),
			Kinds: map[string]jsonLatency{}, Errors: p.valid.Errors,
			ServerCPU: round3(p.valid.ServerCPU), ClientCPU: round3(p.valid.ClientCPU), OtherCPU: round3(p.valid.OtherCPU),
		}
		for k := range numKinds {
			h := &p.kinds[k]
			jp.Kinds[k.String()] = jsonLatency{N: h.n, P50: round3(ms(h.quantile(0.5))), P99: round3(ms(h.quantile(0.99)))}
		}
		if p.flood != nil {
			rps, errs := round3(p.flood.rps()), p.flood.Errors
			jp.FloodRPS, jp.FloodErrs = &rps, &errs
		}
		out.Phases = append(out.Phases, jp)
	}
	served := r.forged + r.garbage
	out.Flood = jsonFlood{
		Conns: c.floodConns, Forged: r.forged, Garbage: r.garbage, Served: served, Inactive: r.inactive,
		Errors: r.floodErrors, AllFalse: served > 0 && r.inactive == served && r.floodErrors == 0,
		Header: r.floodHeader,
	}
	if f := r.fairness(); f.known {
		out.Fairness = &jsonFairness{
			BaselineP99: round3(ms(f.baseP99)), FloodP99: round3(ms(f.floodP99)), P99Ratio: round3(f.p99Ratio),
			P50Ratio: round3(f.p50Ratio), BaselineVerify: round3(ms(f.baseVerify)), FloodVerify: round3(ms(f.floodVerif)),
			VerifyP99Ratio: round3(f.verifyP99Ratio), RPSRatio: round3(f.rpsRatio), Factor: f.factor, Starved: f.starved,
		}
	}
	v := r.rss()
	out.RSS = jsonSoakRSS{
		Idle: round3(r.idle.RSS), AfterWarmup: round3(r.afterWarmup.RSS), End: round3(r.end.RSS), Peak: round3(r.peakRSS),
		GrowthMiB: round3(v.growthMiB), GrowthPct: round3(v.growthPct), LimitMiB: round3(v.limitMiB), Pass: v.ok,
		StoredAfterWarmup: r.storedAfterWarmup(),
	}
	floodPeak := -1
	for _, x := range r.samples {
		if x.Phase == phaseFlood {
			floodPeak = max(floodPeak, x.Goroutines)
		}
		out.Samples = append(out.Samples, jsonSoakSample{
			T: round3(x.At.Seconds()), Phase: x.Phase, Label: x.Label, RSS: round3(x.RSS),
			RSSAnon: round3(x.RSSAnon), RSSFile: round3(x.RSSFile), Goroutines: x.Goroutines,
			HeapAlloc: round3(x.HeapAlloc), HeapSys: round3(x.HeapSys), GCCycles: x.GCCycles, Err: x.Err,
		})
	}
	out.Goroutines = jsonSoakGoroutines{
		Idle: r.idle.Goroutines, AfterWarmup: r.afterWarmup.Goroutines, FloodPeak: floodPeak, End: r.settled.Goroutines,
		SettleS: round3(r.settleTook.Seconds()), Slack: c.goroutineSlack,
		Pass: checkGoroutines(r.idle.Goroutines, r.settled.Goroutines, c.goroutineSlack),
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
