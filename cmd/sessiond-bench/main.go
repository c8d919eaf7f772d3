//go:build linux

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
// Run it from inside the module, on Linux: it builds cmd/sessiond (or takes
// --sessiond) and, for the in-process limits, this package's benchmarks
// (limits_test.go) with go test -c. Progress goes to stderr, the report to
// stdout. Each server runs pinned to one CPU (--server-cpu), the load
// generator on another (--client-cpu); --conns keep-alive connections, one
// goroutine each, send one request after another, and every reply is
// checked. The targets the report checks figures against are data, in
// targets.json; a missed target marked "gate" fails the run (exit status 1).
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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
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
	"http_floor", "rpc_floor", "verify_hot", "verify_cold", "open", "close", "mixed", "verify_hot_1m",
	"feed_abuse", "announce_flood",
}

type config struct {
	schedule                                                         string // "bench" or "soak"
	conns, floodConns, sessions, pool, preload, serverCPU, clientCPU int
	duration, warmup, benchTime                                      time.Duration
	quick, json, closes, noPin, verbose                              bool
	jsonFile, benchFile, sessiond, tmpDir                            string
	only                                                             map[string]bool
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
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./cmd/sessiond-bench [soak] [flags]\n\nSee go doc ./cmd/sessiond-bench and docs/benchmarks.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.IntVar(&c.conns, "conns", 64, "keep-alive connections of the (valid) load, one goroutine each; also the Badger limit's concurrency (soak: 32)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per workload (--quick: 2s); soak: the whole load, warm-up included (2m; --quick: 30s)")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before measuring, and the idle server's wait (--quick: 500ms); soak: before the baseline (a quarter of --duration)")
	fs.BoolVar(&c.quick, "quick", false, "short times and a 100,000-entry preload; explicit flags still win")
	fs.BoolVar(&c.json, "json", false, `print one JSON object {"workloads", "limits", "ratios", …} instead of tables`)
	fs.StringVar(&c.jsonFile, "json-file", "", "also write the JSON object to this file")
	fs.StringVar(&c.benchFile, "bench-file", "", "write the limits' go test -bench output (benchstat's input) to this file")
	fs.IntVar(&c.pool, "pool", 1000, "live tokens verify_hot and verify_hot_1m verify in turn (mixed splits them between connections)")
	fs.IntVar(&c.preload, "preload", 1_000_000, "revocation entries written before verify_hot_1m, a fifth of it before feed_abuse (--quick: 100000)")
	fs.DurationVar(&c.benchTime, "bench-time", 2*time.Second, "-test.benchtime of the in-process limits (--quick: 250ms)")
	fs.IntVar(&c.floodConns, "flood-conns", 32, "soak: further connections sending forged and garbage tokens during the flood phase")
	fs.IntVar(&c.sessions, "sessions", 8, "soak: live sessions each valid connection keeps open and verifies in turn")
	fs.BoolVar(&c.closes, "closes", true, "soak: close sessions; false: a control run that drops its oldest session unclosed, so that the revocation list stays empty")
	fs.IntVar(&c.serverCPU, "server-cpu", 0, "CPU the servers are pinned to (and the single-core limits measured on)")
	fs.IntVar(&c.clientCPU, "client-cpu", 1, "CPU the load generator is pinned to")
	fs.BoolVar(&c.noPin, "no-pin", false, "do not pin anything to CPUs")
	fs.StringVar(&c.sessiond, "sessiond", "", "sessiond binary to measure (default: go build ./cmd/sessiond)")
	fs.StringVar(&c.tmpDir, "tmp-dir", "", "where the data directories go (default: $TMPDIR); fsync must cost there what it costs in production, so not a tmpfs")
	only := fs.String("only", "", "comma-separated subset of: limits, idle, "+strings.Join(workloadNames, ", "))
	fs.BoolVar(&c.verbose, "v", false, "echo the servers' logs to stderr")
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
	known := append([]string{"limits", "idle"}, workloadNames...)
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
	case c.conns < 1 || c.floodConns < 1 || c.pool < 1 || c.sessions < 2 || c.preload < 0:
		return c, usageErr(stderr, "--conns, --flood-conns and --pool must be at least 1, --sessions at least 2, --preload not negative")
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
	b := &bench{cfg: cfg, stderr: stderr, started: time.Now(), sessiond: cfg.sessiond, rep: newReport(cfg.schedule)}
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
	if runtime.GOMAXPROCS(procs); !b.pinned {
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
	echo := map[bool]io.Writer{true: b.stderr}[b.cfg.verbose]
	srv, err := startServer(ctx, name, addr, argv, b.serverCPUs, echo)
	if err == nil && b.rep.serverCPUsSeen == "" {
		b.rep.serverCPUsSeen = procField(srv.pid, "Cpus_allowed_list")
	}
	return srv, err
}

// load runs sources against srv for --warmup and --duration.
func (b *bench) load(srv *server, sources []source) loadResult {
	return runLoad(srv.addr, sources, b.cfg.warmup, b.cfg.duration, srv.pid, b.loadCPUs())
}

// The report, one shape for both schedules: the workloads (or the soak's
// phases), the in-process limits, the checks against the targets of
// targets.json, and the soak's samples; written as tables or as JSON.

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

// result is one workload's (or soak phase's) line of the report.
type result struct {
	RPS       float64            `json:"rps"`
	P50       float64            `json:"p50_ms"`
	P99       float64            `json:"p99_ms"`
	RSS       float64            `json:"rss_mib"` // peak (VmHWM); the soak's phases: VmRSS at their end
	Errors    uint64             `json:"errors"`
	Requests  uint64             `json:"requests"`
	Seconds   float64            `json:"seconds"`
	ServerCPU float64            `json:"server_cpu"`
	ClientCPU float64            `json:"client_cpu"`
	OtherCPU  float64            `json:"other_cpu"`
	RPSPerCPU float64            `json:"rps_per_server_cpu"`
	AttackRPS float64            `json:"attack_rps,omitempty"` // the soak's flood
	ByKind    map[string]latency `json:"by_kind,omitempty"`
	Note      string             `json:"note,omitempty"`
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

func newResult(l *loadResult, rss float64, note string) *result {
	return &result{RPS: l.rps(), P50: l.Lat.quantile(0.5), P99: l.Lat.quantile(0.99), RSS: rss, Errors: l.Errors,
		Requests: l.Requests, Seconds: l.Elapsed.Seconds(), ServerCPU: l.ServerCPU, ClientCPU: l.ClientCPU,
		OtherCPU: l.OtherCPU, RPSPerCPU: ratio(l.rps(), l.ServerCPU), Note: note, firstErr: l.FirstErr}
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

	targets                       map[string]target
	order, limitOrder, checkOrder []string
	limitAbout                    map[string]string
	serverCPUsSeen                string
}

func newReport(schedule string) *report {
	var file struct{ Targets map[string]target }
	if err := json.Unmarshal(targetsJSON, &file); err != nil {
		panic("targets.json: " + err.Error()) // built in; TestRSSAllowed reads it
	}
	return &report{Schedule: schedule, Workloads: map[string]*result{}, Limits: map[string]float64{}, Ratios: map[string]check{},
		Notes: []string{}, limitAbout: map[string]string{}, targets: file.Targets}
}

func (r *report) add(name string, w *result) { r.order = append(r.order, name); r.Workloads[name] = w }

func (r *report) limit(name string, v float64, about string) {
	r.limitOrder = append(r.limitOrder, name)
	r.Limits[name], r.limitAbout[name] = v, about
}

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
		for _, x := range [][4]string{{"verify_cold/cold_limit", "verify_cold", "cold_limit", "ed25519_verifies_per_s"}, {"open/open_limit", "open", "open_limit", "ed25519_signs_per_s"}} {
			r.limit(x[2], harmonic(floor.RPS, l[x[3]]), "1/(1/http_floor + 1/"+x[3]+")")
			if w[x[1]] != nil {
				r.check(x[0], ratio(w[x[1]].RPS, l[x[2]]), ratio(w[x[1]].RPSPerCPU, harmonic(floor.RPSPerCPU, l[x[3]])), "")
			}
		}
	}
	ratioCheck("close/http_floor", "close", "http_floor")
	ratioCheck("verify_hot_1m/verify_hot", "verify_hot_1m", "verify_hot")
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
	c := b.cfg
	r.Pass = true
	var failed []string
	for _, name := range r.checkOrder {
		if x := r.Ratios[name]; x.Gate && !x.Pass {
			r.Pass, failed = false, append(failed, name)
		}
	}
	pinning := "not pinned"
	if b.pinned {
		pinning = fmt.Sprintf("servers on CPU %d (checked: Cpus_allowed_list %s), load generator on CPU %d, by sched_setaffinity", c.serverCPU, r.serverCPUsSeen, c.clientCPU)
	}
	cpu, kernel := machine()
	r.Config = map[string]any{"conns": c.conns, "duration_s": c.duration.Seconds(), "warmup_s": c.warmup.Seconds(), "quick": c.quick,
		"pool": c.pool, "preload": c.preload, "pinning": pinning, "cpu": cpu, "cpus": len(b.allCPUs), "kernel": kernel,
		"go": runtime.Version(), "total_s": math.Round(time.Since(b.started).Seconds())}
	if c.schedule == "soak" {
		r.Config["flood_conns"], r.Config["sessions"], r.Config["closes"], r.Config["sample_s"] = c.floodConns, c.sessions, c.closes, soakSample(c).Seconds()
	}
	var err error
	if c.jsonFile != "" {
		var f *os.File
		if f, err = os.Create(c.jsonFile); err == nil {
			err = errors.Join(r.encode(f), f.Close())
		}
	}
	if err == nil && c.json {
		err = r.encode(stdout)
	} else if err == nil {
		err = r.writeText(stdout, pinning)
	}
	if err == nil && !r.Pass {
		err = fmt.Errorf("%w: %s", errFailed, strings.Join(failed, ", "))
	}
	return err
}

func (r *report) encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *report) writeText(w io.Writer, pinning string) error {
	c := r.Config
	fmt.Fprintf(w, "sessiond-bench %s: %d connections, %s %gs, warm-up %gs\n%s; %s, %d CPUs, %s, %s\n\n",
		r.Schedule, c["conns"], map[string]string{"bench": "measured per workload", "soak": "in all"}[r.Schedule], c["duration_s"], c["warmup_s"], pinning, c["cpu"], c["cpus"], c["kernel"], c["go"])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\trps\tp50_ms\tp99_ms\trss_mib\terrors\tserver_cpu\tclient_cpu\tother_cpu\trps_per_cpu\tattack_rps\t")
	if r.Idle != nil {
		fmt.Fprintf(tw, "idle\t\t\t\t%.1f\t\t\t\t\t\t\t\n", r.Idle.RSS)
	}
	for _, name := range r.order {
		x := r.Workloads[name]
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%.1f\t%d\t%.2f\t%.2f\t%.2f\t%.0f\t%s\t\n", name, x.RPS, x.P50, x.P99, x.RSS, x.Errors,
			x.ServerCPU, x.ClientCPU, x.OtherCPU, x.RPSPerCPU, map[bool]string{true: formatNum(x.AttackRPS), false: "-"}[x.AttackRPS > 0])
	}
	tw.Flush()
	for _, name := range r.order {
		if x := r.Workloads[name]; x.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", name, x.Note)
		}
	}
	fmt.Fprintln(w, "  rss_mib: peak RSS (soak: VmRSS at the phase's end); *_cpu: cores busy in the window (other: noise); rps_per_cpu: rps / server_cpu.")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(r.limitOrder) > 0 {
		fmt.Fprintln(tw, "\nlimits")
	}
	for _, name := range r.limitOrder {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, formatNum(r.Limits[name]), r.limitAbout[name])
	}
	fmt.Fprintln(tw, "\nchecks (targets.json; per_cpu: the same ratio of rps_per_cpu; gate: a miss fails the run)\n  check\tvalue\twant\t\tper_cpu\t")
	for _, name := range r.checkOrder {
		x := r.Ratios[name]
		verdict := map[bool]string{true: "pass", false: "FAIL"}[x.Pass] + map[bool]string{true: " gate"}[x.Gate]
		fmt.Fprintf(tw, "  %s\t%s %s\t%s %s\t%s\t%s\t%s\n", name, formatNum(x.Value), x.Unit, x.Op, formatNum(x.Target), verdict,
			map[bool]string{true: formatNum(x.PerCPU)}[x.PerCPU > 0], x.About)
	}
	tw.Flush()
	if len(r.Samples) > 0 {
		fmt.Fprintln(w, "\nsamples (t: seconds since the idle sample)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "t\tphase\trss_mib\tanon_mib\tfile_mib\tgoroutines\theap_alloc_mib\theap_sys_mib\tgc_cycles\t\t")
		for _, x := range r.Samples {
			fmt.Fprintf(tw, "%.1f\t%s\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%.1f\t%d\t%s\t\n", x.T, x.Phase, x.RSS, x.RSSAnon, x.RSSFile,
				x.Goroutines, x.HeapAlloc, x.HeapSys, x.GCCycles, x.Label)
		}
		tw.Flush()
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\nnotes\n  - %s\n", strings.Join(r.Notes, "\n  - "))
	}
	_, err := fmt.Fprintf(w, "\n%s\ntotal time %.0fs\n", map[bool]string{true: "PASS", false: "FAIL"}[r.Pass], c["total_s"])
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
