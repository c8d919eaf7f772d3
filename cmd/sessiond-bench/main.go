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
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
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

// The benchmark's workloads, in the order they run.
var workloadNames = []string{
	"http_floor", "rpc_floor", "verify_hot", "verify_hot_sub", "verify_cold", "open", "close", "mixed", "verify_hot_1m",
	"feed_abuse", "announce_flood",
}

type config struct {
	schedule                         string // "bench" or "soak"
	conns, floodConns, pool, preload int
	duration, warmup, benchTime      time.Duration
	quick, json, closes, verbose     bool
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
	fs.IntVar(&c.preload, "preload", 1_000_000, "revocations written before verify_hot_1m, a fifth of it before feed_abuse; a tenth of it is the subjects cut off before verify_hot_sub (--quick: 100000)")
	fs.DurationVar(&c.benchTime, "bench-time", 2*time.Second, "-test.benchtime of the in-process limits (--quick: 250ms)")
	fs.IntVar(&c.floodConns, "flood-conns", 32, "soak: connections sending forged and garbage tokens during the flood")
	fs.BoolVar(&c.closes, "closes", true, "soak: close sessions; false: a control run whose revocation list stays empty")
	fs.StringVar(&c.sessiond, "sessiond", "", "sessiond binary to measure (default: go build ./cmd/sessiond); data goes under $TMPDIR, which must not be a tmpfs")
	fs.BoolVar(&c.verbose, "v", false, "echo the servers' logs to stderr")
	known := append([]string{"limits", "idle"}, workloadNames...)
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
	srv, err := b.start(ctx, name, b.sessiond, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", dataDir)
	if err != nil {
		return nil, err
	}
	if took, ok := srv.settle(ctx, time.Minute); !ok {
		b.note("%s: the server was still busy %.0fs after starting; measuring anyway", name, took.Seconds())
	}
	return srv, nil
}

func (b *bench) start(ctx context.Context, name string, argv ...string) (*server, error) {
	echo := map[bool]io.Writer{true: b.stderr}[b.cfg.verbose]
	srv, err := startServer(ctx, name, filepath.Join(b.tmp, name+".addr"), argv, b.serverCPUs, echo)
	if err == nil && b.rep.serverCPUsSeen == "" {
		b.rep.serverCPUsSeen = procField(srv.pid, "Cpus_allowed_list")
	}
	return srv, err
}

// load runs sources against srv for --warmup and --duration.
func (b *bench) load(srv *server, sources []source) result {
	return runLoad(srv.addr, sources, b.cfg.warmup, b.cfg.duration, srv.pid, b.loadCPUs())
}

// The report, one shape for both schedules: the workloads (or the soak's
// phases), the in-process limits, the checks against targets.json, and the
// soak's samples; written as a summary or as JSON.

//go:embed targets.json
var targetsJSON []byte

// target is one entry of targets.json.
type target struct {
	Op    string  `json:"op"` // ">=" or "<="
	Want  float64 `json:"want"`
	Gate  bool    `json:"gate"` // a miss fails the run
	Unit  string  `json:"unit"`
	About string  `json:"about"`
	// rss_growth_mib only: the growth allowed in percent of RSS after the
	// warm-up when that is more than Want, and per revocation stored.
	Pct                float64 `json:"pct"`
	BytesPerRevocation float64 `json:"bytes_per_revocation"`
}

// result is what a run of the runner measured, and once finished one
// workload's (or soak phase's) line of the report.
type result struct {
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	RSS      float64 `json:"rss_mib"`  // peak (VmHWM); the soak's phases: VmRSS at their end
	Errors   uint64  `json:"errors"`   // failed requests, warm-up included
	Requests uint64  `json:"requests"` // replies in the measured window
	Seconds  float64 `json:"seconds"`  // the measured window
	// Cores busy in the window: the server, this process, and the rest of
	// the machine on the CPUs the two run on (noise).
	ServerCPU float64            `json:"server_cpu"`
	ClientCPU float64            `json:"client_cpu"`
	OtherCPU  float64            `json:"other_cpu"`
	RPSPerCPU float64            `json:"rps_per_server_cpu"`
	AttackRPS float64            `json:"attack_rps,omitempty"` // the soak's flood
	ByKind    map[string]latency `json:"by_kind,omitempty"`
	Note      string             `json:"note,omitempty"`
	elapsed   time.Duration      // the measured window
	lat       lats               // latency of the replies counted in Requests
	exhausted bool               // a source ran out; the window ended there
	firstErr  error
	baseline  float64 // under attack: verify_hot alone on the same server
}

// idle is the peak and current RSS of a server that only started.
type idle struct {
	RSS    float64 `json:"rss_mib"`
	CurRSS float64 `json:"current_rss_mib"`
}

type latency struct {
	N   uint64  `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// check is a figure against its target.
type check struct {
	Value  float64 `json:"value"`
	Op     string  `json:"op"`
	Target float64 `json:"target"`
	Pass   bool    `json:"pass"`
	Gate   bool    `json:"gate,omitempty"`
	PerCPU float64 `json:"value_per_cpu,omitempty"` // the same ratio of rps_per_server_cpu
	Unit   string  `json:"unit,omitempty"`
	About  string  `json:"about,omitempty"`
}

type report struct {
	Schedule  string             `json:"schedule"`
	Pass      bool               `json:"pass"` // no gating check failed
	Workloads map[string]*result `json:"workloads"`
	Limits    map[string]float64 `json:"limits"`
	Ratios    map[string]check   `json:"ratios"`
	Idle      *idle              `json:"idle,omitempty"`
	Samples   []sample           `json:"samples,omitempty"`
	Config    map[string]any     `json:"config"`
	Notes     []string           `json:"notes"`

	targets           map[string]target
	order, checkOrder []string
	serverCPUsSeen    string
}

func newReport(schedule string) *report {
	var file struct{ Targets map[string]target }
	if err := json.Unmarshal(targetsJSON, &file); err != nil {
		panic("targets.json: " + err.Error()) // built in; TestRSSAllowed reads it
	}
	return &report{Schedule: schedule, Workloads: map[string]*result{}, Limits: map[string]float64{}, Ratios: map[string]check{},
		Notes: []string{}, targets: file.Targets}
}

func (r *report) add(name string, w *result) { r.order = append(r.order, name); r.Workloads[name] = w }

// check records value against the target of that name.
func (r *report) check(name string, value, perCPU float64, about string) {
	t := r.targets[name]
	if t.Op == "" {
		r.Notes = append(r.Notes, fmt.Sprintf("no target for %s in targets.json", name))
	}
	about = strings.TrimSuffix(strings.TrimPrefix(t.About+"; "+about, "; "), "; ")
	pass := t.Op == "" || t.Op == ">=" && value >= t.Want || t.Op == "<=" && value <= t.Want
	r.checkOrder = append(r.checkOrder, name)
	r.Ratios[name] = check{Value: value, Op: t.Op, Target: t.Want, Pass: pass, Gate: t.Gate, PerCPU: perCPU, Unit: t.Unit, About: about}
}

// checkErrors checks that no request of any workload failed.
func (r *report) checkErrors(about string) {
	var errs uint64
	var first error
	for _, name := range r.order {
		errs += r.Workloads[name].Errors
		first = pickErr(first, r.Workloads[name].firstErr)
	}
	if first != nil {
		about = strings.TrimPrefix(about+"; the first: "+first.Error(), "; ")
	}
	r.check("errors", float64(errs), 0, about)
}

// harmonic returns 1/(1/a + 1/b): the rate of doing both one after the other.
func harmonic(a, b float64) float64 { return ratio(1, 1/a+1/b) }

// benchChecks adds the benchmark's derived limits and its checks, those
// whose inputs this run measured.
func (r *report) benchChecks(cfg config) {
	w, l := r.Workloads, r.Limits
	r.checkErrors("")
	ratioCheck := func(name, num, den string) {
		if w[num] != nil && w[den] != nil {
			r.check(name, ratio(w[num].RPS, w[den].RPS), ratio(w[num].RPSPerCPU, w[den].RPSPerCPU), "")
		}
	}
	ratioCheck("verify_hot/http_floor", "verify_hot", "http_floor")
	if floor := w["http_floor"]; floor != nil && l["ed25519_signs_per_s"] > 0 {
		for _, x := range [][4]string{{"verify_cold", "cold_limit", "ed25519_verifies_per_s"}, {"open", "open_limit", "ed25519_signs_per_s"}} {
			l[x[1]] = harmonic(floor.RPS, l[x[2]])
			if w[x[0]] != nil {
				r.check(x[0]+"/"+x[1], ratio(w[x[0]].RPS, l[x[1]]), ratio(w[x[0]].RPSPerCPU, harmonic(floor.RPSPerCPU, l[x[2]])), "")
			}
		}
	}
	ratioCheck("close/http_floor", "close", "http_floor")
	ratioCheck("verify_hot_1m/verify_hot", "verify_hot_1m", "verify_hot")
	ratioCheck("verify_hot_sub/verify_hot", "verify_hot_sub", "verify_hot")
	if l["token_verify_ns"] > 0 {
		r.check("token_verify/ed25519_verify", ratio(l["ed25519_verify_ns"], l["token_verify_ns"]), 0, "")
		r.check("verify_repeated_ns", l["token_verify_repeated_ns"], 0, "")
		r.check("verify_repeated_allocs", l["token_verify_repeated_allocs"], 0, "")
	}
	if w["verify_hot"] != nil {
		r.check("verify_hot_p99_ms", w["verify_hot"].P99, 0, fmt.Sprintf("at %d connections", cfg.conns))
	}
	if w["verify_hot_1m"] != nil {
		r.check("verify_hot_1m_rss_mib", w["verify_hot_1m"].RSS, 0, map[bool]string{true: fmt.Sprintf("only %d entries preloaded", cfg.preload)}[cfg.preload != 1_000_000])
	}
	for _, name := range []string{"feed_abuse", "announce_flood"} {
		if x := w[name]; x != nil {
			r.check(name+"/alone", ratio(x.RPS, x.baseline), 0, "")
			r.check(name+"_rss_mib", x.RSS, 0, "")
		}
	}
	if r.Idle != nil {
		r.check("idle_rss_mib", r.Idle.RSS, 0, fmt.Sprintf("current %.1f MiB", r.Idle.CurRSS))
	}
}

func (r *report) write(b *bench, stdout io.Writer) error {
	var failed []string
	for _, name := range r.checkOrder {
		if x := r.Ratios[name]; x.Gate && !x.Pass {
			failed = append(failed, name)
		}
	}
	r.Pass = len(failed) == 0
	pinning := "not pinned"
	if b.clientCPUs != nil {
		pinning = fmt.Sprintf("servers on CPU %d (Cpus_allowed_list %s), load generator on CPU %d", b.serverCPUs[0], r.serverCPUsSeen, b.clientCPUs[0])
	}
	c := b.cfg
	cpu, kernel := machine()
	r.Config = map[string]any{"conns": c.conns, "duration_s": c.duration.Seconds(), "warmup_s": c.warmup.Seconds(), "quick": c.quick,
		"pool": c.pool, "preload": c.preload, "pinning": pinning, "cpu": cpu, "cpus": len(b.allCPUs), "kernel": kernel,
		"go": runtime.Version(), "total_s": math.Round(time.Since(b.started).Seconds())}
	if c.schedule == "soak" {
		r.Config["flood_conns"], r.Config["sessions"], r.Config["closes"], r.Config["sample_s"] = c.floodConns, soakSessions, c.closes, soakSample(c).Seconds()
	}
	var err error
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	} else {
		err = r.writeText(stdout)
	}
	if err == nil && !r.Pass {
		err = fmt.Errorf("%w: %s", errFailed, strings.Join(failed, ", "))
	}
	return err
}

// writeText writes the summary: a line per workload, the limits, a line per
// check; the JSON report has every figure.
func (r *report) writeText(w io.Writer) error {
	c := r.Config
	fmt.Fprintf(w, "sessiond-bench %s: %d connections, %gs %s, warm-up %gs; %s; %s, %d CPUs, %s, %s\n", r.Schedule, c["conns"], c["duration_s"],
		map[string]string{"bench": "per workload", "soak": "in all"}[r.Schedule], c["warmup_s"], c["pinning"], c["cpu"], c["cpus"], c["kernel"], c["go"])
	if r.Idle != nil {
		fmt.Fprintf(w, "  %-14s rss %.1f MiB\n", "idle", r.Idle.RSS)
	}
	for _, name := range r.order {
		x := r.Workloads[name]
		fmt.Fprintf(w, "  %-14s %7.0f req/s  p50 %6.3f  p99 %6.3f ms  rss %5.1f MiB  errors %d  cpu server %.2f client %.2f other %.2f\n",
			name, x.RPS, x.P50, x.P99, x.RSS, x.Errors, x.ServerCPU, x.ClientCPU, x.OtherCPU)
		if x.Note != "" {
			fmt.Fprintf(w, "  %-14s %s\n", "", x.Note)
		}
	}
	if len(r.Limits) > 0 {
		fmt.Fprintln(w, "limits:")
	}
	for _, name := range slices.Sorted(maps.Keys(r.Limits)) {
		fmt.Fprintf(w, "  %-32s %s\n", name, formatNum(r.Limits[name]))
	}
	fmt.Fprintln(w, "checks (targets.json; per cpu: the same ratio of rps per server CPU-second):")
	for _, name := range r.checkOrder {
		x := r.Ratios[name]
		fmt.Fprintf(w, "  %s%-5s %-28s %s %s %s %s%s  %s\n", map[bool]string{true: "pass", false: "FAIL"}[x.Pass], map[bool]string{true: " gate"}[x.Gate],
			name, formatNum(x.Value), x.Unit, x.Op, formatNum(x.Target), map[bool]string{true: " (per cpu " + formatNum(x.PerCPU) + ")"}[x.PerCPU > 0], x.About)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	_, err := fmt.Fprintf(w, "%s in %.0fs\n", map[bool]string{true: "PASS", false: "FAIL"}[r.Pass], c["total_s"])
	return err
}

// formatNum prints rates without decimals and ratios with three.
func formatNum(v float64) string {
	prec := 3
	if a := math.Abs(v); a >= 100 {
		prec = 0
	} else if a >= 10 {
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// machine describes the CPU and the kernel.
func machine() (cpu, kernel string) {
	cpu, kernel = "unknown CPU", "linux"
	data, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			cpu = strings.TrimSpace(v)
			break
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel += " " + strings.TrimSpace(string(data))
	}
	return cpu, kernel
}
