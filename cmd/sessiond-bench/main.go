// Command sessiond-bench measures sessiond against its physical limits, as
// issue 5 asks: the HTTP round trip, the one Ed25519 operation a request
// cannot skip, and a durable Badger write.
//
//	go run ./cmd/sessiond-bench            # the full run, a few minutes
//	go run ./cmd/sessiond-bench --quick    # the same in under a minute
//	go run ./cmd/sessiond-bench --json     # one JSON object on stdout
//	go run ./cmd/sessiond-bench soak       # issue 4's soak run (soak.go)
//
// Run it from inside the module: it builds cmd/sessiond (or takes
// --sessiond). Progress goes to stderr, the report to stdout.
//
// # What it measures
//
// Each workload gets a server of its own, started fresh on an empty data
// directory (so that its peak RSS is its own) and pinned to one CPU
// (--server-cpu), while this process, the load generator, runs on another
// (--client-cpu). --conns keep-alive connections, one goroutine each, send
// one request after another for --warmup and then --duration; the report
// gives the replies per second in that window, their p50 and p99 latency, the
// server's peak RSS (VmHWM), and how busy the server's and the generator's
// CPUs were. Every reply is checked (HTTP 200 and the expected JSON-RPC
// result); errors are counted and must be 0.
//
//   - http_floor: a bare net/http handler on sessiond's http.Server settings
//     answering a fixed JSON-RPC reply (this binary's hidden serve-floor
//     command, pinned like sessiond).
//   - rpc_floor: the project's JSON-RPC layer (rpc.NewHandler) with a
//     session.verify_session_token that does nothing.
//   - verify_hot: verify over a pool of --pool live tokens, in turn.
//   - verify_cold: every request a token the server has never verified.
//   - open: open_session.
//   - close: close_session, durable, of tokens the server verified before.
//   - mixed: 90% verify, 5% open, 5% close, sessions living from open to
//     close.
//   - verify_hot_1m: verify_hot on a server whose revocation list holds
//     --preload entries (one million; 100,000 with --quick).
//   - feed_abuse, announce_flood: verify_hot alone and then under an attack
//     on the HTTP edge, on one server (attack.go): 4 connections fetching
//     revocation snapshots of --feed-preload entries, or 900 connections
//     announcing 1 MiB bodies they never send.
//   - idle: the peak RSS of a server that only started.
//
// In-process, before the workloads: Ed25519 sign and verify per second on
// the server's CPU and on all CPUs, token verification against raw Ed25519,
// a repeated verification, and Badger's durable writes per second from
// --conns goroutines on the server's CPU. The report ends with the ratios of
// issue 5 and whether each meets its target.
//
// The tokens the workloads use (except open's) are issued in-process with the
// key file of the workload's data directory before its server starts: they
// are byte for byte what open_session returns, and the server has verified
// none of them.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "sessiond-bench:", err)
		os.Exit(1)
	}
}

var (
	// errUsage reports a command line that was already explained.
	errUsage = errors.New("usage error")
	// errFailedRequests ends a run in which a request failed; the report
	// is printed first.
	errFailedRequests = errors.New("some requests failed")
)

// run is the whole program, testable in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "serve-floor" {
		return serveFloor(ctx, args[1:], stderr)
	}
	if len(args) > 0 && args[0] == "soak" {
		return soak(ctx, args[1:], stdout, stderr)
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return benchmark(ctx, cfg, stdout, stderr)
}

// The workloads, in the order they run.
var workloadNames = []string{
	"http_floor", "rpc_floor", "verify_hot", "verify_cold", "open", "close", "mixed", "verify_hot_1m",
	"feed_abuse", "announce_flood",
}

type config struct {
	conns      int
	duration   time.Duration
	warmup     time.Duration
	quick      bool
	json       bool
	jsonFile   string
	pool       int
	preload    int
	feedPre    int
	limitTime  time.Duration
	idleWait   time.Duration
	closeChunk int
	serverCPU  int
	clientCPU  int
	noPin      bool
	sessiond   string
	tmpDir     string
	only       map[string]bool
	verbose    bool
	cpuProfile string
}

const usage = `Usage: go run ./cmd/sessiond-bench [flags]

Measures sessiond's throughput, latency and memory per workload against the
limits of this machine, and the ratios of issue 5 with their targets. See the
package documentation (go doc ./cmd/sessiond-bench) for what each workload is.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("sessiond-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.IntVar(&c.conns, "conns", 64, "keep-alive connections (and goroutines) of the load generator; also the Badger limit's concurrency")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per workload (--quick: 2s)")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up per workload before measuring (--quick: 500ms)")
	fs.BoolVar(&c.quick, "quick", false, "short times and a 100,000-entry preload, so that the whole run takes under a minute; explicit flags still win")
	fs.BoolVar(&c.json, "json", false, `print one JSON object {"workloads", "limits", "ratios", …} instead of tables`)
	fs.StringVar(&c.jsonFile, "json-file", "", "also write the JSON object to this file")
	fs.IntVar(&c.pool, "pool", 1000, "live tokens verify_hot and verify_hot_1m verify in turn (mixed splits them between connections)")
	fs.IntVar(&c.preload, "preload", 1_000_000, "revocation entries written before verify_hot_1m (--quick: 100000)")
	fs.IntVar(&c.feedPre, "feed-preload", 200_000, "revocation entries written before feed_abuse (--quick: 50000)")
	fs.DurationVar(&c.limitTime, "limit-time", 2*time.Second, "time per in-process limit measurement (--quick: 250ms)")
	fs.DurationVar(&c.idleWait, "idle-wait", 2*time.Second, "how long the idle server runs before its RSS is read (--quick: 500ms)")
	fs.IntVar(&c.closeChunk, "close-chunk", token.DefaultCacheSize/4, "tokens verified, then closed, per round of the close workload (see the report's note)")
	fs.IntVar(&c.serverCPU, "server-cpu", 0, "CPU the servers are pinned to (and the single-core limits measured on)")
	fs.IntVar(&c.clientCPU, "client-cpu", 1, "CPU the load generator is pinned to")
	fs.BoolVar(&c.noPin, "no-pin", false, "do not pin anything to CPUs")
	fs.StringVar(&c.sessiond, "sessiond", "", "sessiond binary to measure (default: go build ./cmd/sessiond)")
	fs.StringVar(&c.tmpDir, "tmp-dir", "", "where the data directories go (default: $TMPDIR); fsync must cost there what it costs in production, so not a tmpfs")
	only := fs.String("only", "", "comma-separated subset of: limits, idle, "+strings.Join(workloadNames, ", "))
	fs.BoolVar(&c.verbose, "v", false, "echo the servers' logs to stderr")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of this process, the load generator (with --only, of the chosen workloads), to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessiond-bench: unexpected argument %q\n", fs.Arg(0))
		return c, errUsage
	}
	if c.quick {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		for name, v := range map[string]string{
			"duration": "2s", "warmup": "500ms", "preload": "100000", "feed-preload": "50000", "limit-time": "250ms", "idle-wait": "500ms",
		} {
			if !given[name] {
				fs.Set(name, v)
			}
		}
	}
	c.only = map[string]bool{}
	if *only != "" {
		known := append([]string{"limits", "idle"}, workloadNames...)
		for name := range strings.SplitSeq(*only, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(known, name) {
				fmt.Fprintf(stderr, "sessiond-bench: --only: unknown name %q (known: %s)\n", name, strings.Join(known, ", "))
				return c, errUsage
			}
			c.only[name] = true
		}
	}
	var bad string
	switch {
	case c.conns < 1:
		bad = "--conns must be at least 1"
	case c.duration <= 0 || c.warmup < 0 || c.limitTime <= 0 || c.idleWait < 0:
		bad = "--duration and --limit-time must be positive, --warmup and --idle-wait not negative"
	case c.pool < 1 || c.preload < 0 || c.feedPre < 0:
		bad = "--pool must be at least 1, --preload and --feed-preload not negative"
	case c.closeChunk < c.conns:
		bad = "--close-chunk must be at least --conns"
	}
	if bad != "" {
		fmt.Fprintln(stderr, "sessiond-bench:", bad)
		return c, errUsage
	}
	return c, nil
}

// want reports whether the named part is to run.
func (c *config) want(name string) bool { return len(c.only) == 0 || c.only[name] }

// bench is one run of the benchmark.
type bench struct {
	cfg      config
	stderr   io.Writer
	tmp      string // removed at the end
	sessiond string // the binary under test
	self     string // this executable, for the floor servers

	pinned                            bool
	serverCPUs, clientCPUs, allCPUs   []int // serverCPUs and clientCPUs are nil when not pinned
	serverCPUsSeen                    string
	notes                             []string
	started                           time.Time
	machineCPU, machineKernel, goVers string
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.stderr, "sessiond-bench: %6.1fs  %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, msg)
	b.progress("NOTE: %s", msg)
}

// choosePinning decides whether the server and this process get a CPU
// each (benchmark and soak alike), and records the choice in b.
func (b *bench) choosePinning(stderr io.Writer) error {
	var err error
	if b.allCPUs, err = allowedCPUs(); err != nil {
		return err
	}
	cfg := b.cfg
	switch {
	case cfg.noPin:
	case !pinSupported:
		b.note("CPU pinning needs Linux; server and load generator share the CPUs")
	case len(b.allCPUs) < 2:
		b.note("only %d CPU available; server and load generator share it", len(b.allCPUs))
	case !slices.Contains(b.allCPUs, cfg.serverCPU) || !slices.Contains(b.allCPUs, cfg.clientCPU) || cfg.serverCPU == cfg.clientCPU:
		fmt.Fprintf(stderr, "sessiond-bench: --server-cpu %d and --client-cpu %d must be two different CPUs of %v\n", cfg.serverCPU, cfg.clientCPU, b.allCPUs)
		return errUsage
	default:
		b.pinned = true
		b.serverCPUs, b.clientCPUs = []int{cfg.serverCPU}, []int{cfg.clientCPU}
	}
	return nil
}

// place moves this process to cpus (when pinning) with procs Ps.
func (b *bench) place(cpus []int, procs int) error {
	runtime.GOMAXPROCS(procs)
	if !b.pinned {
		return nil
	}
	return pinProcess(cpus)
}

// workloadResult is one workload's line of the report.
type workloadResult struct {
	name string
	loadResult
	rssMiB float64 // the server's peak RSS
	// readyRSSMiB is the server's peak RSS before the load began, once it
	// had started (and settled), which took ready.
	readyRSSMiB float64
	ready       time.Duration
	note        string
	// baselineRPS is, for the workloads under attack, verify_hot's rate on
	// the same server before the attack.
	baselineRPS float64
}

func benchmark(ctx context.Context, cfg config, stdout, stderr io.Writer) (err error) {
	b := &bench{cfg: cfg, stderr: stderr, started: time.Now()}
	b.machineCPU, b.machineKernel, b.goVers = machine()

	if b.tmp, err = os.MkdirTemp(cfg.tmpDir, "sessiond-bench-"); err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(b.tmp); err == nil {
			err = rerr
		}
	}()
	if isTmpfs(b.tmp) {
		b.note("%s is a tmpfs, where fsync costs nothing: close, mixed and the Badger limit are not what they are on disk (use --tmp-dir)", b.tmp)
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	b.sessiond = cfg.sessiond
	if b.sessiond == "" {
		b.progress("building sessiond")
		if b.sessiond, err = buildSessiond(ctx, b.tmp, stderr); err != nil {
			return err
		}
	}

	// Pin after building, or the compiler would run on one CPU.
	if err := b.choosePinning(stderr); err != nil {
		return err
	}
	if err := b.place(b.clientCPUs, 1); err != nil {
		return err
	}
	defer b.place(b.allCPUs, runtime.NumCPU()) // for run's callers in this process

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
	}

	rep := report{bench: b, workloads: map[string]workloadResult{}}
	if cfg.want("limits") {
		l, err := b.measureLimits(ctx)
		if err != nil {
			return fmt.Errorf("limits: %w", err)
		}
		rep.limits = &l
	}
	if cfg.want("idle") {
		if rep.idlePeak, rep.idleCur, err = b.runIdle(ctx); err != nil {
			return fmt.Errorf("idle: %w", err)
		}
	}

	var floorPool []string
	for _, name := range workloadNames {
		if !cfg.want(name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var w workloadResult
		switch name {
		case "http_floor", "rpc_floor":
			if floorPool == nil {
				if floorPool, err = b.issuePool(filepath.Join(b.tmp, "floor-keys"), cfg.pool); err != nil {
					return err
				}
			}
			w, err = b.runFloor(ctx, name, floorPool)
		case "verify_hot":
			w, err = b.runVerifyHot(ctx, name, 0)
		case "verify_hot_1m":
			w, err = b.runVerifyHot(ctx, name, cfg.preload)
		case "verify_cold":
			w, err = b.runVerifyCold(ctx, rep.coldLimit())
		case "open":
			w, err = b.runOpen(ctx)
		case "close":
			w, err = b.runClose(ctx)
		case "mixed":
			w, err = b.runMixed(ctx)
		case "feed_abuse":
			w, err = b.runUnderAttack(ctx, name, cfg.feedPre, feedAbuse(4))
		case "announce_flood":
			w, err = b.runUnderAttack(ctx, name, 0, announceFlood(900))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		w.name = name
		rep.workloads[name] = w
		b.progress("%-13s %7.0f req/s (%.0f per server CPU-second)  p50 %.3f ms  p99 %.3f ms  peak RSS %.1f MiB  errors %d  CPU: server %.2f, client %.2f, other %.2f",
			name, w.rps(), w.rpsPerCPU(), ms(w.Hist.quantile(0.5)), ms(w.Hist.quantile(0.99)), w.rssMiB, w.Errors, w.ServerCPU, w.ClientCPU, w.OtherCPU)
		if w.Errors > 0 {
			b.note("%s: %d requests failed; the first: %v", name, w.Errors, w.FirstErr)
		}
		if w.OtherCPU > 0.1 {
			b.note("%s: other processes took %.2f of the two CPUs' time during the window: its figures are noisy", name, w.OtherCPU)
		}
		if w.ClientCPU > 0.9 && w.ServerCPU > 0 && w.ServerCPU < 0.9 {
			b.note("%s: the load generator's CPU was %.0f%% busy and the server's only %.0f%%: the generator may be the bottleneck", name, 100*w.ClientCPU, 100*w.ServerCPU)
		}
	}
	b.progress("done")

	if cfg.json {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeText(stdout)
	}
	if err != nil {
		return err
	}
	if cfg.jsonFile != "" {
		var buf bytes.Buffer
		if err := rep.writeJSON(&buf); err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonFile, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	for _, w := range rep.workloads {
		if w.Errors > 0 {
			return errFailedRequests
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// machine describes the CPU, the kernel and the Go version.
func machine() (cpu, kernel, goVersion string) {
	cpu = "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel = runtime.GOOS
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel += " " + strings.TrimSpace(string(data))
	}
	return cpu, kernel, runtime.Version()
}

// issuePool creates a data directory's key file in dir and issues n tokens
// with it, on this process's CPU.
func (b *bench) issuePool(dir string, n int) ([]string, error) {
	iss, _, err := newIssuer(dir)
	if err != nil {
		return nil, err
	}
	return issueTokens(iss, n)
}

// onAllCPUs runs fn with this process spread over every CPU: for
// preparation while no server runs.
func (b *bench) onAllCPUs(fn func() error) error {
	if err := b.place(b.allCPUs, len(b.allCPUs)); err != nil {
		return err
	}
	ferr := fn()
	if err := b.place(b.clientCPUs, 1); err != nil {
		return err
	}
	return ferr
}

// startSessiond starts sessiond on dataDir and waits for it to settle.
func (b *bench) startSessiond(ctx context.Context, name, dataDir string) (*server, error) {
	argv := []string{b.sessiond, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir}
	srv, err := b.start(ctx, name, argv)
	if err != nil {
		return nil, err
	}
	if took, ok := srv.settle(ctx, time.Minute); !ok {
		b.note("%s: the server was still busy %.0fs after starting; measuring anyway", name, took.Seconds())
	} else if took > time.Second {
		b.progress("%s: the server settled %.1fs after starting", name, took.Seconds())
	}
	srv.ready = time.Since(srv.started)
	srv.readyRSS, _, _ = procMemory(srv.pid)
	return srv, nil
}

func (b *bench) start(ctx context.Context, name string, argv []string) (*server, error) {
	var verbose io.Writer
	if b.cfg.verbose {
		verbose = b.stderr
	}
	srv, err := startServer(ctx, name, argv, b.serverCPUs, verbose)
	if err != nil {
		return nil, err
	}
	srv.ready = time.Since(srv.started)
	srv.readyRSS, _, _ = procMemory(srv.pid)
	if b.serverCPUsSeen == "" {
		b.serverCPUsSeen = procCPUsAllowed(srv.pid)
	}
	return srv, nil
}

// finish reads the server's peak RSS, stops it and completes w.
func (b *bench) finish(srv *server, w workloadResult) (workloadResult, error) {
	if err := srv.alive(); err != nil {
		return w, err
	}
	peak, _, err := procMemory(srv.pid)
	if err != nil {
		srv.kill()
		return w, err
	}
	w.rssMiB = peak
	w.readyRSSMiB, w.ready = srv.readyRSS, srv.ready
	if err := srv.stop(); err != nil {
		return w, err
	}
	if errors.Is(w.FirstErr, errServerGone) {
		return w, w.FirstErr
	}
	return w, nil
}

func (b *bench) load(srv *server, sources []source) loadResult {
	return runLoad(srv.addr, sources, b.cfg.warmup, b.cfg.duration, srv.pid, b.loadCPUs())
}

// loadCPUs returns the CPUs the server and the load generator share
// between them (nil: all).
func (b *bench) loadCPUs() []int {
	if !b.pinned {
		return nil
	}
	return []int{b.cfg.serverCPU, b.cfg.clientCPU}
}

func (b *bench) runIdle(ctx context.Context) (peak, cur float64, err error) {
	b.progress("idle: a fresh sessiond for %s", b.cfg.idleWait)
	srv, err := b.startSessiond(ctx, "idle", filepath.Join(b.tmp, "idle"))
	if err != nil {
		return 0, 0, err
	}
	defer srv.kill()
	resp, err := http.Get("http://" + srv.addr + "/healthz")
	if err != nil {
		return 0, 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	select {
	case <-time.After(b.cfg.idleWait):
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	if peak, cur, err = procMemory(srv.pid); err != nil {
		return 0, 0, err
	}
	return peak, cur, srv.stop()
}

func (b *bench) runFloor(ctx context.Context, name string, pool []string) (workloadResult, error) {
	kind := strings.TrimSuffix(name, "_floor")
	b.progress("%s: %s's serve-floor --kind %s", name, filepath.Base(b.self), kind)
	srv, err := b.start(ctx, name, []string{b.self, "serve-floor", "--kind", kind, "--listen", "127.0.0.1:0"})
	if err != nil {
		return workloadResult{}, err
	}
	defer srv.kill()
	r := b.load(srv, newCycleSources(pool, b.cfg.conns))
	return b.finish(srv, workloadResult{loadResult: r})
}

// runVerifyHot is verify_hot, and with preload > 0 verify_hot_1m.
func (b *bench) runVerifyHot(ctx context.Context, name string, preload int) (workloadResult, error) {
	dir := filepath.Join(b.tmp, name)
	pool, err := b.issuePool(dir, b.cfg.pool)
	if err != nil {
		return workloadResult{}, err
	}
	var note string
	if preload > 0 {
		b.progress("%s: writing %d revocations into a fresh store (all CPUs)", name, preload)
		var took time.Duration
		err := b.onAllCPUs(func() (err error) {
			took, err = preloadRevocations(ctx, filepath.Join(dir, "revocations"), preload)
			return err
		})
		if err != nil {
			return workloadResult{}, fmt.Errorf("preload: %w", err)
		}
		note = fmt.Sprintf("after %d revocations written with revocation.Badger.Revoke from 2048 goroutines on all CPUs in %.1fs (%.0f/s)",
			preload, took.Seconds(), float64(preload)/took.Seconds())
		if preload != 1_000_000 {
			note = fmt.Sprintf("NOT one million: %s", note)
		}
		b.progress("%s: %s", name, note)
	}
	b.progress("%s: %d tokens in turn", name, len(pool))
	srv, err := b.startSessiond(ctx, name, dir)
	if err != nil {
		return workloadResult{}, err
	}
	defer srv.kill()
	r := b.load(srv, newCycleSources(pool, b.cfg.conns))
	w, err := b.finish(srv, workloadResult{loadResult: r, note: note})
	if preload > 0 {
		w.note += fmt.Sprintf("; the server took %.1fs to start and settle, and its peak RSS was %.1f MiB before the load began",
			w.ready.Seconds(), w.readyRSSMiB)
	}
	return w, err
}

// runVerifyCold issues enough tokens for the whole run at 1.2 times the
// expected rate (the cold limit; the raw Ed25519 rate without http_floor),
// so that every request verifies a token the server has not seen.
func (b *bench) runVerifyCold(ctx context.Context, expected float64) (workloadResult, error) {
	const maxTokens = 2_000_000
	if expected <= 0 {
		expected = 50_000
	}
	n := int(math.Ceil(expected*(b.cfg.warmup+b.cfg.duration).Seconds()*1.2)) + b.cfg.conns
	n = min(n, maxTokens)
	dir := filepath.Join(b.tmp, "verify_cold")
	b.progress("verify_cold: issuing %d tokens (all CPUs)", n)
	var toks []string
	err := b.onAllCPUs(func() (err error) {
		toks, err = b.issuePool(dir, n)
		return err
	})
	if err != nil {
		return workloadResult{}, err
	}
	srv, err := b.startSessiond(ctx, "verify_cold", dir)
	if err != nil {
		return workloadResult{}, err
	}
	defer srv.kill()
	r := b.load(srv, newListSources(toks, b.cfg.conns, verifyBody, expectActive))
	w := workloadResult{loadResult: r, note: fmt.Sprintf("%d tokens issued, %d used", n, min(n, int(r.Requests)))}
	if r.Exhausted {
		w.note = fmt.Sprintf("the %d tokens ran out after %.1fs of the %s window; measured over that", n, r.Elapsed.Seconds(), b.cfg.duration)
		b.note("verify_cold: %s", w.note)
	}
	return b.finish(srv, w)
}

func (b *bench) runOpen(ctx context.Context) (workloadResult, error) {
	b.progress("open: open_session, expires_in %d", openLifetime)
	srv, err := b.startSessiond(ctx, "open", filepath.Join(b.tmp, "open"))
	if err != nil {
		return workloadResult{}, err
	}
	defer srv.kill()
	srcs := make([]source, b.cfg.conns)
	for i := range srcs {
		srcs[i] = openSource{}
	}
	return b.finish(srv, workloadResult{loadResult: b.load(srv, srcs)})
}

// closePrimePasses is how many times each token of a close round is verified
// before the round, see runClose.
const closePrimePasses = 4

// runClose measures close_session of tokens the server verified before. The
// verifier's cache holds token.DefaultCacheSize tokens, far fewer than a
// run closes, so the workload runs in rounds: issue --close-chunk tokens,
// verify each (unmeasured), close them all (measured, until the round's
// tokens run out), and again until --warmup and then --duration of closing
// are done. Closed tokens stay in the cache until evicted, and each new
// entry evicts a random one, at times one of the round's own; every further
// verification pass puts back what the previous one lost (a verification of
// a cached token is cheap), so that after closePrimePasses passes about 0.1%
// of a round's closes miss the cache, with the default chunk of a quarter of
// the cache.
//
// Each round's window ends when its first connection finds no token left,
// so the replies then in flight (at most --conns per round) are not counted.
func (b *bench) runClose(ctx context.Context) (workloadResult, error) {
	dir := filepath.Join(b.tmp, "close")
	iss, _, err := newIssuer(dir)
	if err != nil {
		return workloadResult{}, err
	}
	b.progress("close: rounds of %d tokens, each verified %d times, then closed", b.cfg.closeChunk, closePrimePasses)
	srv, err := b.startSessiond(ctx, "close", dir)
	if err != nil {
		return workloadResult{}, err
	}
	defer srv.kill()
	total := loadResult{Hist: new(histogram)}
	var warmed, primeTime time.Duration
	rounds := 0
	for total.Elapsed < b.cfg.duration {
		if err := ctx.Err(); err != nil {
			return workloadResult{}, err
		}
		toks, err := issueTokens(iss, b.cfg.closeChunk)
		if err != nil {
			return workloadResult{}, err
		}
		primeStart := time.Now()
		for range closePrimePasses {
			r := runLoad(srv.addr, newListSources(toks, b.cfg.conns, verifyBody, expectActive), 0, time.Hour, 0, nil)
			total.Errors += r.Errors
			total.FirstErr = pickErr(total.FirstErr, r.FirstErr)
			if errors.Is(r.FirstErr, errServerGone) {
				return b.finish(srv, workloadResult{loadResult: total})
			}
		}
		primeTime += time.Since(primeStart)
		r := runLoad(srv.addr, newListSources(toks, b.cfg.conns, closeBody, expectTrue), 0, time.Hour, srv.pid, b.loadCPUs())
		r.Exhausted = false // how every round ends
		if warmed < b.cfg.warmup {
			warmed += r.Elapsed
			total.Errors += r.Errors
			total.FirstErr = pickErr(total.FirstErr, r.FirstErr)
		} else {
			total.add(r)
			rounds++
		}
		if errors.Is(r.FirstErr, errServerGone) {
			break
		}
	}
	note := fmt.Sprintf("%d measured rounds of %d tokens, each verified %d times before the round (%.1fs of verifying in all, not measured)",
		rounds, b.cfg.closeChunk, closePrimePasses, primeTime.Seconds())
	return b.finish(srv, workloadResult{loadResult: total, note: note})
}

func (b *bench) runMixed(ctx context.Context) (workloadResult, error) {
	dir := filepath.Join(b.tmp, "mixed")
	pool, err := b.issuePool(dir, max(b.cfg.pool, 2*b.cfg.conns))
	if err != nil {
		return workloadResult{}, err
	}
	b.progress("mixed: 18 verify, 1 open, 1 close in every 20 requests")
	srv, err := b.startSessiond(ctx, "mixed", dir)
	if err != nil {
		return workloadResult{}, err
	}
	defer srv.kill()
	r := b.load(srv, newMixedSources(pool, b.cfg.conns))
	note := "in every 20 requests of a connection: 18 verify, 1 open, 1 close of its oldest session, which the last open's token replaces (so 1 in 20 verifies a token for the first time)"
	return b.finish(srv, workloadResult{loadResult: r, note: note})
}
