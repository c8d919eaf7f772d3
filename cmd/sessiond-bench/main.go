// Command sessiond-bench measures sessiond against its physical limits (the
// HTTP round trip, the one Ed25519 operation a request cannot skip, a durable
// Badger write) and soaks it under a long mixed load with a forged-token
// flood. Both are schedules of phases over one workload runner (runner.go):
//
//	go run ./cmd/sessiond-bench                 # the benchmark, a few minutes
//	go run ./cmd/sessiond-bench --quick         # the same in about a minute
//	go run ./cmd/sessiond-bench --json          # one JSON object on stdout
//	go run ./cmd/sessiond-bench soak            # the soak run, 2 minutes
//
// Run it from inside the module: it builds cmd/sessiond (or takes
// --sessiond) and, for the in-process limits, this package's benchmarks
// (limits_test.go) with go test -c. Progress goes to stderr, the report to
// stdout. Each server runs pinned to one CPU (--server-cpu), the load
// generator on another (--client-cpu); --conns keep-alive connections, one
// goroutine each, send one request after another, and every reply is
// checked. The targets the report checks figures against are data, in
// targets.json (or --targets); a missed target marked "gate" fails the run
// (exit status 1). docs/benchmarks.md says what each workload and check is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
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
	// errFailed ends a run that missed a gating target; the report is
	// printed first.
	errFailed = errors.New("failed")
)

// The benchmark's workloads, in the order they run.
var workloadNames = []string{
	"http_floor", "rpc_floor", "verify_hot", "verify_cold", "open", "close", "mixed", "verify_hot_1m",
	"feed_abuse", "announce_flood",
}

type config struct {
	schedule                                                   string // "bench" or "soak"
	conns, floodConns, sessions, pool, preload, feedPre        int
	closeChunk, serverCPU, clientCPU                           int
	duration, warmup, benchTime, idleWait, sample, settle      time.Duration
	quick, json, closes, noPin, verbose                        bool
	jsonFile, benchFile, targets, sessiond, tmpDir, cpuProfile string
	only                                                       map[string]bool
}

// want reports whether the named part of the benchmark is to run.
func (c *config) want(name string) bool { return len(c.only) == 0 || c.only[name] }

// scheduleDefaults are the defaults that differ from the flags' own, by
// schedule and --quick; flags given on the command line win.
var scheduleDefaults = map[string]map[string]string{
	"soak":        {"conns": "32", "duration": "2m"},
	"bench quick": {"duration": "2s", "warmup": "500ms", "preload": "100000", "feed-preload": "50000", "bench-time": "250ms", "idle-wait": "500ms"},
	"soak quick":  {"duration": "30s"},
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := config{schedule: "bench"}
	if len(args) > 0 && args[0] == "soak" {
		c.schedule, args = "soak", args[1:]
	}
	fs := flag.NewFlagSet("sessiond-bench "+c.schedule, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./cmd/sessiond-bench [soak] [flags]\n\nSee go doc ./cmd/sessiond-bench and docs/benchmarks.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&c.conns, "conns", 64, "keep-alive connections of the (valid) load, one goroutine each; also the Badger limit's concurrency (soak: 32)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per workload (--quick: 2s); soak: the whole load, warm-up included (2m; --quick: 30s)")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before measuring (--quick: 500ms); soak: before the baseline (a quarter of --duration)")
	fs.BoolVar(&c.quick, "quick", false, "short times and a 100,000-entry preload; explicit flags still win")
	fs.BoolVar(&c.json, "json", false, `print one JSON object {"workloads", "limits", "ratios", …} instead of tables`)
	fs.StringVar(&c.jsonFile, "json-file", "", "also write the JSON object to this file")
	fs.StringVar(&c.benchFile, "bench-file", "", "write the limits' go test -bench output (benchstat's input) to this file")
	fs.StringVar(&c.targets, "targets", "", "targets file (default: the targets.json built in)")
	fs.IntVar(&c.pool, "pool", 1000, "live tokens verify_hot and verify_hot_1m verify in turn (mixed splits them between connections)")
	fs.IntVar(&c.preload, "preload", 1_000_000, "revocation entries written before verify_hot_1m (--quick: 100000)")
	fs.IntVar(&c.feedPre, "feed-preload", 200_000, "revocation entries written before feed_abuse (--quick: 50000)")
	fs.DurationVar(&c.benchTime, "bench-time", 2*time.Second, "-test.benchtime of the in-process limits (--quick: 250ms)")
	fs.DurationVar(&c.idleWait, "idle-wait", 2*time.Second, "how long the idle server runs before its RSS is read (--quick: 500ms)")
	fs.IntVar(&c.closeChunk, "close-chunk", 4096, "tokens verified, then closed, per round of the close workload (a quarter of the verifier's cache)")
	fs.IntVar(&c.floodConns, "flood-conns", 32, "soak: further connections sending forged and garbage tokens during the flood phase")
	fs.IntVar(&c.sessions, "sessions", 8, "soak: live sessions each valid connection keeps open and verifies in turn")
	fs.BoolVar(&c.closes, "closes", true, "soak: close sessions; false: a control run that drops its oldest session unclosed, so that the revocation list stays empty")
	fs.DurationVar(&c.sample, "sample", 5*time.Second, "soak: how often the server's RSS and /debug/stats are sampled")
	fs.DurationVar(&c.settle, "settle", 10*time.Second, "soak: how long to wait after the load for the goroutines to return to the idle count")
	fs.IntVar(&c.serverCPU, "server-cpu", 0, "CPU the servers are pinned to (and the single-core limits measured on)")
	fs.IntVar(&c.clientCPU, "client-cpu", 1, "CPU the load generator is pinned to")
	fs.BoolVar(&c.noPin, "no-pin", false, "do not pin anything to CPUs")
	fs.StringVar(&c.sessiond, "sessiond", "", "sessiond binary to measure (default: go build ./cmd/sessiond)")
	fs.StringVar(&c.tmpDir, "tmp-dir", "", "where the data directories go (default: $TMPDIR); fsync must cost there what it costs in production, so not a tmpfs")
	only := fs.String("only", "", "comma-separated subset of: limits, idle, "+strings.Join(workloadNames, ", "))
	fs.BoolVar(&c.verbose, "v", false, "echo the servers' logs to stderr")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, errUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, key := range []string{c.schedule, c.schedule + map[bool]string{true: " quick"}[c.quick]} {
		for name, v := range scheduleDefaults[key] {
			if !given[name] {
				fs.Set(name, v)
			}
		}
	}
	if c.schedule == "soak" && !given["warmup"] {
		c.warmup = c.duration / 4
	}
	c.only = map[string]bool{}
	known := append([]string{"limits", "idle"}, workloadNames...)
	for name := range strings.SplitSeq(*only, ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(known, name) {
			return c, usageErr(stderr, "--only: unknown name %q (known: %s)", name, strings.Join(known, ", "))
		}
		c.only[name] = name != ""
	}
	delete(c.only, "")
	switch {
	case fs.NArg() > 0:
		return c, usageErr(stderr, "unexpected argument %q", fs.Arg(0))
	case c.conns < 1 || c.floodConns < 1 || c.pool < 1 || c.sessions < 2:
		return c, usageErr(stderr, "--conns, --flood-conns and --pool must be at least 1, --sessions at least 2")
	case c.duration <= 0 || c.warmup < 0 || c.benchTime <= 0 || c.idleWait < 0 || c.sample <= 0 || c.settle < 0:
		return c, usageErr(stderr, "--duration, --bench-time and --sample must be positive, --warmup, --idle-wait and --settle not negative")
	case c.preload < 0 || c.feedPre < 0 || c.closeChunk < c.conns:
		return c, usageErr(stderr, "--preload and --feed-preload must not be negative, --close-chunk at least --conns")
	case c.schedule == "soak" && (c.duration-c.warmup)/3 < 500*time.Millisecond:
		return c, usageErr(stderr, "--duration minus --warmup must leave at least 500ms for each of baseline, flood and recovery")
	}
	return c, nil
}

func usageErr(stderr io.Writer, format string, args ...any) error {
	fmt.Fprintf(stderr, "sessiond-bench: "+format+"\n", args...)
	return errUsage
}

// bench is one run, of either schedule.
type bench struct {
	cfg                             config
	stderr                          io.Writer
	tmp                             string // removed at the end
	sessiond                        string // the binary under test, built when first needed
	pinned                          bool
	serverCPUs, clientCPUs, allCPUs []int // serverCPUs and clientCPUs are nil when not pinned
	rep                             *report
	started                         time.Time
}

// run is the whole program, testable in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	if len(args) > 0 && args[0] == "serve-floor" {
		return serveFloor(ctx, args[1:], stderr)
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, stderr: stderr, started: time.Now(), sessiond: cfg.sessiond}
	if b.rep, err = newReport(cfg); err != nil {
		return err
	}
	if b.tmp, err = os.MkdirTemp(cfg.tmpDir, "sessiond-bench-"); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(b.tmp)) }()
	if isTmpfs(b.tmp) {
		b.note("%s is a tmpfs, where fsync costs nothing: closes and Badger writes cost less than on disk (use --tmp-dir)", b.tmp)
	}
	if b.allCPUs, err = allowedCPUs(); err != nil {
		return err
	}
	switch {
	case cfg.noPin:
	case !pinSupported:
		b.note("CPU pinning needs Linux; server and load generator share the CPUs")
	case len(b.allCPUs) < 2:
		b.note("only %d CPU available; server and load generator share it", len(b.allCPUs))
	case !slices.Contains(b.allCPUs, cfg.serverCPU) || !slices.Contains(b.allCPUs, cfg.clientCPU) || cfg.serverCPU == cfg.clientCPU:
		return usageErr(stderr, "--server-cpu %d and --client-cpu %d must be two different CPUs of %v", cfg.serverCPU, cfg.clientCPU, b.allCPUs)
	default:
		b.pinned, b.serverCPUs, b.clientCPUs = true, []int{cfg.serverCPU}, []int{cfg.clientCPU}
	}
	defer b.place(b.allCPUs, runtime.NumCPU()) // for run's callers in this process
	if err := b.place(b.clientCPUs, 1); err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.schedule == "soak" {
		err = b.soak(ctx)
	} else {
		err = b.benchmark(ctx)
	}
	if err != nil {
		return err
	}
	b.progress("done")
	return b.rep.write(b, stdout)
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.stderr, "sessiond-bench: %6.1fs  %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

func (b *bench) note(format string, args ...any) {
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf(format, args...))
	b.progress("NOTE: %s", b.rep.Notes[len(b.rep.Notes)-1])
}

// place moves this process to cpus (when pinning) with procs Ps.
func (b *bench) place(cpus []int, procs int) error {
	runtime.GOMAXPROCS(procs)
	if !b.pinned {
		return nil
	}
	return pinProcess(cpus)
}

// onAllCPUs runs fn with this process spread over every CPU, for
// preparation while no server runs, and then puts it back on its own.
func (b *bench) onAllCPUs(fn func() error) error {
	if err := b.place(b.allCPUs, len(b.allCPUs)); err != nil {
		return err
	}
	return errors.Join(fn(), b.place(b.clientCPUs, 1))
}

// loadCPUs returns the CPUs the server and the load generator share between
// them (nil: all).
func (b *bench) loadCPUs() []int {
	if !b.pinned {
		return nil
	}
	return []int{b.cfg.serverCPU, b.cfg.clientCPU}
}

// startSessiond starts sessiond on dataDir (building it first, on all
// CPUs, when this is the first) and waits for it to settle.
func (b *bench) startSessiond(ctx context.Context, name, dataDir string) (*server, error) {
	if b.sessiond == "" {
		b.progress("building sessiond")
		b.sessiond = b.tmp + "/sessiond"
		if err := b.onAllCPUs(func() error {
			return goBuild(ctx, b.stderr, "build", "-o", b.sessiond, "github.com/sessiond/sessiond/cmd/sessiond")
		}); err != nil {
			b.sessiond = ""
			return nil, err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	srv, err := b.start(ctx, name, addr, b.sessiond, "serve", "--listen", addr, "--admin-listen", admin, "--data-dir", dataDir)
	if err != nil {
		return nil, err
	}
	srv.admin = admin
	if took, ok := srv.settle(ctx, time.Minute); !ok {
		b.note("%s: the server was still busy %.0fs after starting; measuring anyway", name, took.Seconds())
	}
	return srv, nil
}

func (b *bench) start(ctx context.Context, name, addr string, argv ...string) (*server, error) {
	var echo io.Writer
	if b.cfg.verbose {
		echo = b.stderr
	}
	srv, err := startServer(ctx, name, addr, argv, b.serverCPUs, echo)
	if err == nil && b.rep.serverCPUsSeen == "" {
		b.rep.serverCPUsSeen = procStatus(srv.pid, "Cpus_allowed_list")["Cpus_allowed_list"]
	}
	return srv, err
}

// load runs sources against srv for --warmup and --duration.
func (b *bench) load(srv *server, sources []source) loadResult {
	return runLoad(srv.addr, sources, b.cfg.warmup, b.cfg.duration, srv.pid, b.loadCPUs())
}
