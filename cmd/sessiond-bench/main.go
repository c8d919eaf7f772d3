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
	"math"
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
	"soak":        {"conns": "32", "duration": "2m", "flood-conns": "32"},
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
	fs.BoolVar(&c.quick, "quick", false, "short times and --preload 100000; explicit flags still win")
	fs.BoolVar(&c.json, "json", false, "print the report as one JSON object instead of a summary")
	fs.StringVar(&c.benchFile, "bench-file", "", "write the limits' go test -bench output (benchstat's input) to this file")
	fs.IntVar(&c.pool, "pool", 1000, "live tokens verify_hot and its variants verify in turn")
	fs.IntVar(&c.preload, "preload", 1_000_000, "revocations verify_hot_1m writes through close_session while its server runs, a fifth of it for feed_abuse; a tenth of it is the subjects verify_hot_sub cuts off with close_all_sessions (--quick: 100000)")
	fs.DurationVar(&c.benchTime, "bench-time", 2*time.Second, "-test.benchtime of the in-process limits (--quick: 250ms)")
	fs.IntVar(&c.floodConns, "flood-conns", 128, "connections of flood_fair's flooder, sending forged tokens; soak: sending forged and garbage tokens during the flood (32)")
	fs.BoolVar(&c.closes, "closes", true, "soak: close sessions; false: a control run whose revocation list stays empty")
	fs.StringVar(&c.sessiond, "sessiond", "", "sessiond binary to measure (default: go build ./cmd/sessiond); data goes under $TMPDIR, which must not be a tmpfs")
	known := []string{"limits"}
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
	if err := b.buildSessiond(ctx); err != nil {
		return nil, err
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

// buildSessiond builds the sessiond under test, on all CPUs, unless it was
// built or given (--sessiond).
func (b *bench) buildSessiond(ctx context.Context) error {
	if b.sessiond != "" {
		return nil
	}
	b.progress("building sessiond")
	b.sessiond = b.tmp + "/sessiond"
	if err := b.onAllCPUs(func() error {
		return goBuild(ctx, b.stderr, "build", "-o", b.sessiond, "github.com/sessiond/sessiond/cmd/sessiond")
	}); err != nil {
		b.sessiond = ""
		return err
	}
	return nil
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

// This file is the report, one shape for both schedules: the workloads (or
// the soak's phases), the in-process limits, the checks against
// targets.json, and the soak's samples; written as a summary or as JSON.

//go:embed targets.json
var targetsJSON []byte

// target is one entry of targets.json. A target with Of is checked by
// benchChecks against a figure of the run, "A" or the ratio "A/B" (see
// report.figure); the others by the code that measures them.
type target struct {
	Name  string  `json:"name"`
	Of    string  `json:"of"`
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
	ServerCPU float64 `json:"server_cpu"`
	ClientCPU float64 `json:"client_cpu"`
	OtherCPU  float64 `json:"other_cpu"`
	RPSPerCPU float64 `json:"rps_per_server_cpu"`
	AttackRPS float64 `json:"attack_rps,omitempty"` // the soak's flood, flood_fair's flooder
	// Under attack: the same load alone on the same server, before.
	Baseline       float64            `json:"baseline_rps,omitempty"`
	BaselinePerCPU float64            `json:"baseline_rps_per_server_cpu,omitempty"`
	BaselineP99    float64            `json:"baseline_p99_ms,omitempty"`
	ByKind         map[string]latency `json:"by_kind,omitempty"`
	Note           string             `json:"note,omitempty"`
	elapsed        time.Duration      // the measured window
	lat            lats               // latency of the replies counted in Requests
	exhausted      bool               // a source ran out; the window ended there
	firstErr       error
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

	targetList        []target // in the file's order
	targets           map[string]target
	perCPU            map[string]float64 // the limits derived from rps_per_server_cpu
	order, checkOrder []string
	serverCPUsSeen    string
}

func newReport(schedule string) *report {
	var file struct{ Targets []target }
	if err := json.Unmarshal(targetsJSON, &file); err != nil {
		panic("targets.json: " + err.Error()) // built in; TestTargets reads it
	}
	r := &report{Schedule: schedule, Workloads: map[string]*result{}, Limits: map[string]float64{}, Ratios: map[string]check{},
		Notes: []string{}, targetList: file.Targets, targets: map[string]target{}, perCPU: map[string]float64{}}
	for _, t := range file.Targets {
		r.targets[t.Name] = t
	}
	return r
}

func (r *report) add(name string, w *result) { r.order = append(r.order, name); r.Workloads[name] = w }

// check records value against the target of that name.
func (r *report) check(name string, value, perCPU float64, about string) {
	t, ok := r.targets[name]
	if !ok {
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

// figure returns the figure ref names, and the same per server CPU-second
// where there is one: a limit, a workload's rps, a field of a workload
// (NAME.p99_ms, NAME.rss_mib, NAME.baseline and NAME.baseline_p99_ms: its
// rps and p99 alone before an attack; NAME.KIND.p99_ms: of the soak's requests of a kind) or
// idle.rss_mib. ok is false when the run did not measure it.
func (r *report) figure(ref string) (v, perCPU float64, ok bool) {
	if v, ok = r.Limits[ref]; ok {
		return v, r.perCPU[ref], true
	}
	name, field, _ := strings.Cut(ref, ".")
	if name == "idle" && r.Idle != nil && field == "rss_mib" {
		return r.Idle.RSS, 0, true
	}
	w := r.Workloads[name]
	if w == nil {
		return 0, 0, false
	} else if kind, f, ok := strings.Cut(field, "."); ok {
		l, ok := w.ByKind[kind]
		return l.P99, 0, ok && f == "p99_ms"
	}
	v, ok = map[string]float64{"": w.RPS, "p99_ms": w.P99, "rss_mib": w.RSS, "baseline": w.Baseline, "baseline_p99_ms": w.BaselineP99}[field]
	if strings.HasPrefix(field, "baseline") && v == 0 {
		return 0, 0, false // a workload without one, or a limit not measured
	}
	return v, map[string]float64{"": w.RPSPerCPU, "baseline": w.BaselinePerCPU}[field], ok
}

// deriveLimits adds cold_limit and open_limit, the rates of an http_floor
// request plus one Ed25519 verification or signature.
func (r *report) deriveLimits() {
	if floor := r.Workloads["http_floor"]; floor != nil && r.Limits["ed25519_signs_per_s"] > 0 {
		for name, op := range map[string]string{"cold_limit": "ed25519_verifies_per_s", "open_limit": "ed25519_signs_per_s"} {
			r.Limits[name], r.perCPU[name] = harmonic(floor.RPS, r.Limits[op]), harmonic(floor.RPSPerCPU, r.Limits[op])
		}
	}
}

// checkTargets checks every target with an "of" whose figures this run
// measured.
func (r *report) checkTargets() {
	for _, t := range r.targetList {
		num, den, isRatio := strings.Cut(t.Of, "/")
		a, pa, ok := r.figure(num)
		b, pb, okb := 1.0, 0.0, true
		if isRatio {
			b, pb, okb = r.figure(den)
		}
		if t.Of != "" && ok && okb {
			r.check(t.Name, map[bool]float64{true: ratio(a, b), false: a}[isRatio], ratio(pa, pb), "")
		}
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

// writeText writes the summary: the configuration, a line per workload,
// the limits, a line per check, the notes; the JSON report has every figure.
func (r *report) writeText(w io.Writer) error {
	fmt.Fprintf(w, "sessiond-bench %s %v\nidle %+v\n", r.Schedule, r.Config, r.Idle)
	for _, name := range r.order {
		x := r.Workloads[name]
		fmt.Fprintf(w, "%-18s %7.0f req/s  p50 %6.3f  p99 %6.3f ms  rss %5.1f MiB  errors %d  cpu server %.2f client %.2f other %.2f  %s\n",
			name, x.RPS, x.P50, x.P99, x.RSS, x.Errors, x.ServerCPU, x.ClientCPU, x.OtherCPU, x.Note)
	}
	fmt.Fprintf(w, "limits %v\nchecks (targets.json; per cpu: the same ratio of rps per server CPU-second):\n", r.Limits)
	for _, name := range r.checkOrder {
		x := r.Ratios[name]
		fmt.Fprintf(w, "  %s %-30s %.4g %s %s %g (per cpu %.3g, gate %t)  %s\n", map[bool]string{true: "pass", false: "FAIL"}[x.Pass], name, x.Value, x.Unit, x.Op, x.Target, x.PerCPU, x.Gate, x.About)
	}
	_, err := fmt.Fprintf(w, "notes: %q\n%s\n", r.Notes, map[bool]string{true: "PASS", false: "FAIL"}[r.Pass])
	return err
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
