//go:build linux

// Command sessiond-bench measures sessiond against its physical limits (the
// HTTP round trip, the one Ed25519 operation a request cannot skip, a durable
// Badger write) and soaks it under a long mixed load with a forged-token
// flood. Both are schedules of phases over one workload runner (runner.go):
//
//	go run ./cmd/sessiond-bench [--quick] [--json] [--only verify_hot,close]
//	go run ./cmd/sessiond-bench soak [--duration 2m]
//
// Run it from inside the module, on Linux: it builds cmd/sessiond (or takes
// --sessiond) and this package's benchmarks (limits_test.go, the in-process
// limits). Each server runs pinned to the first CPU this process may use, the
// load generator to the second. Progress goes to stderr, the report (a short
// summary, or one JSON object with --json) to stdout. The targets the report
// checks are data, in targets.json; a missed "gate" target exits 1.
// docs/benchmarks.md says what each workload and check is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); errors.Is(err, errUsage) {
		os.Exit(2)
	} else if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "sessiond-bench:", err)
		os.Exit(1)
	}
}

var (
	errUsage  = errors.New("usage error") // already explained on stderr
	errFailed = errors.New("failed")      // a gating target missed; the report is printed first
)

type config struct {
	schedule                         string // "bench" or "soak"
	conns, floodConns, pool, preload int
	duration, warmup, benchTime      time.Duration
	quick, json, closes              bool
	benchFile, sessiond              string
	only                             map[string]bool
}

// want reports whether the named part of the benchmark is to run.
func (c *config) want(name string) bool { return len(c.only) == 0 || c.only[name] }

// scheduleDefaults are the defaults that differ from the flags' own, by
// schedule and --quick; flags given on the command line win.
var scheduleDefaults = map[string]map[string]string{
	"soak":        {"conns": "32", "duration": "2m"},
	"bench quick": {"duration": "2s", "warmup": "500ms", "preload": "100000", "bench-time": "250ms"},
	"soak quick":  {"duration": "30s"},
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := config{schedule: "bench"}
	if len(args) > 0 && args[0] == "soak" {
		c.schedule, args = "soak", args[1:]
	}
	fs := flag.NewFlagSet("sessiond-bench "+c.schedule, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.conns, "conns", 64, "keep-alive connections of the load, one goroutine each; also BenchmarkBadgerRevoke's goroutines (soak: 32)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per workload (--quick: 2s); soak: the whole run (2m; --quick: 30s)")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up per workload, and the idle server's wait (--quick: 500ms); soak: before the baseline (a quarter of --duration)")
	fs.BoolVar(&c.quick, "quick", false, "short times and a 100,000-entry preload; explicit flags still win")
	fs.BoolVar(&c.json, "json", false, "print the report as one JSON object instead of a summary")
	fs.StringVar(&c.benchFile, "bench-file", "", "write the limits' go test -bench output (benchstat's input) to this file")
	fs.IntVar(&c.pool, "pool", 1000, "live tokens verify_hot and its variants verify in turn")
	fs.IntVar(&c.preload, "preload", 1_000_000, "revocations verify_hot_1m writes through close_session while its server runs, a fifth of it before feed_abuse's starts; a tenth of it is the subjects cut off before verify_hot_sub (--quick: 100000)")
	fs.DurationVar(&c.benchTime, "bench-time", 2*time.Second, "-test.benchtime of the in-process limits (--quick: 250ms)")
	fs.IntVar(&c.floodConns, "flood-conns", 32, "soak: connections sending forged and garbage tokens during the flood")
	fs.BoolVar(&c.closes, "closes", true, "soak: close sessions; false: a control run whose revocation list stays empty")
	fs.StringVar(&c.sessiond, "sessiond", "", "sessiond binary to measure (default: go build ./cmd/sessiond); data goes under $TMPDIR, which must not be a tmpfs")
	known := []string{"limits", "idle"}
	for _, w := range workloads {
		known = append(known, w.name)
	}
	only := fs.String("only", "", "comma-separated subset of: "+strings.Join(known, ", "))
	if err := fs.Parse(args); err != nil {
		return c, map[bool]error{true: err, false: errUsage}[errors.Is(err, flag.ErrHelp)]
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
	for name := range strings.SplitSeq(*only, ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(known, name) {
			return c, usageErr(stderr, "--only: unknown name %q (known: %s)", name, strings.Join(known, ", "))
		} else if name != "" {
			c.only[name] = true
		}
	}
	switch {
	case fs.NArg() > 0:
		return c, usageErr(stderr, "unexpected argument %q", fs.Arg(0))
	case c.conns < 1 || c.floodConns < 1 || c.pool < 1 || c.preload < 0:
		return c, usageErr(stderr, "--conns, --flood-conns and --pool must be at least 1, --preload not negative")
	case c.duration <= 0 || c.warmup < 0 || c.benchTime <= 0:
		return c, usageErr(stderr, "--duration and --bench-time must be positive, --warmup not negative")
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
	serverCPUs, clientCPUs, allCPUs []int  // serverCPUs and clientCPUs are nil when not pinned
	rep                             *report
	started                         time.Time
}

// run is the whole program, testable in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	if len(args) > 0 && args[0] == "serve-floor" {
		return serveFloor(ctx, args[1:])
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, stderr: stderr, started: time.Now(), sessiond: cfg.sessiond, rep: newReport(cfg.schedule)}
	if b.tmp, err = os.MkdirTemp("", "sessiond-bench-"); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(b.tmp)) }()
	if isTmpfs(b.tmp) {
		b.note("%s is a tmpfs, where fsync costs nothing: closes and Badger writes cost less than on disk (set TMPDIR)", b.tmp)
	}
	if b.allCPUs, err = allowedCPUs(); err != nil {
		return err
	}
	if len(b.allCPUs) < 2 {
		b.note("only %d CPU available; server and load generator share it", len(b.allCPUs))
	} else {
		b.serverCPUs, b.clientCPUs = b.allCPUs[:1], b.allCPUs[1:2]
	}
	defer b.place(b.allCPUs, runtime.NumCPU()) // for run's callers in this process
	if err := b.place(b.clientCPUs, 1); err != nil {
		return err
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

// place moves this process to cpus (nil: leave it) with procs Ps.
func (b *bench) place(cpus []int, procs int) error {
	if runtime.GOMAXPROCS(procs); cpus == nil || b.clientCPUs == nil {
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

// loadCPUs returns the CPUs the server and the load generator share (nil: all).
func (b *bench) loadCPUs() []int {
	if b.clientCPUs == nil {
		return nil
	}
	return append(slices.Clone(b.serverCPUs), b.clientCPUs...)
}

// startSessiond starts sessiond serve on dataDir with the extra flags
// (building it first, on all CPUs, when this is the first) and waits for it
// to settle.
func (b *bench) startSessiond(ctx context.Context, name, dataDir string, flags ...string) (*server, error) {
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
	argv := append([]string{b.sessiond, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir}, flags...)
	srv, err := b.start(ctx, name, argv...)
	if err != nil {
		return nil, err
	}
	if took, ok := srv.settle(ctx, time.Minute); !ok {
		b.note("%s: the server was still busy %.0fs after starting; measuring anyway", name, took.Seconds())
	}
	return srv, nil
}

func (b *bench) start(ctx context.Context, name string, argv ...string) (*server, error) {
	srv, err := startServer(ctx, name, filepath.Join(b.tmp, name+".addr"), argv, b.serverCPUs)
	if err == nil && b.rep.serverCPUsSeen == "" {
		b.rep.serverCPUsSeen = procField(srv.pid, "Cpus_allowed_list")
	}
	return srv, err
}

// load runs sources against srv for --warmup and --duration.
func (b *bench) load(srv *server, sources []source) result {
	return runLoad(srv.addr, sources, b.cfg.warmup, b.cfg.duration, srv.pid, b.loadCPUs())
}
