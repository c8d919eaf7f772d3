package main

// This file is the report, one shape for both schedules: the workloads (or
// the soak's phases), the in-process limits, the checks against the targets
// of targets.json, and the soak's samples; written as tables or as JSON.

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

//go:embed targets.json
var defaultTargets []byte

// target is one entry of the targets file.
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
	return &result{RPS: l.rps(), P50: l.Hist.quantile(0.5), P99: l.Hist.quantile(0.99), RSS: rss, Errors: l.Errors,
		Requests: l.Requests, Seconds: l.Elapsed.Seconds(), ServerCPU: l.ServerCPU, ClientCPU: l.ClientCPU,
		OtherCPU: l.OtherCPU, RPSPerCPU: l.rpsPerCPU(), Note: note, firstErr: l.FirstErr}
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
	idleRSS                       float64
	serverCPUsSeen                string
}

func newReport(cfg config) (*report, error) {
	data, name := defaultTargets, "targets.json"
	if cfg.targets != "" {
		var err error
		if data, err = os.ReadFile(cfg.targets); err != nil {
			return nil, err
		}
		name = cfg.targets
	}
	r := &report{Schedule: cfg.schedule, Workloads: map[string]*result{}, Limits: map[string]float64{}, Ratios: map[string]check{},
		Notes: []string{}, limitAbout: map[string]string{}}
	var file struct{ Targets map[string]target }
	err := json.Unmarshal(data, &file)
	if r.targets = file.Targets; err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

func (r *report) add(name string, w *result) { r.order = append(r.order, name); r.Workloads[name] = w }

func (r *report) limit(name string, v float64, about string) {
	r.limitOrder = append(r.limitOrder, name)
	r.Limits[name], r.limitAbout[name] = v, about
}

// check records value against the target of that name.
func (r *report) check(name string, value, perCPU float64, about string) {
	r.checkAgainst(name, r.targets[name], value, perCPU, about)
}

func (r *report) checkAgainst(name string, t target, value, perCPU float64, about string) {
	if t.Op == "" {
		r.Notes = append(r.Notes, fmt.Sprintf("no target for %s in the targets file", name))
	}
	c := check{Value: value, Op: t.Op, Target: t.Want, Gate: t.Gate, PerCPU: perCPU, Unit: t.Unit, About: strings.TrimPrefix(t.About+"; "+about, "; ")}
	c.About = strings.TrimSuffix(c.About, "; ")
	c.Pass = t.Op == "" || t.Op == ">=" && value >= t.Want || t.Op == "<=" && value <= t.Want
	r.checkOrder = append(r.checkOrder, name)
	r.Ratios[name] = c
}

func firstErr(err error) string {
	if err == nil {
		return ""
	}
	return "the first: " + err.Error()
}

// harmonic returns 1/(1/a + 1/b): the rate of doing both one after the other.
func harmonic(a, b float64) float64 { return ratio(1, 1/a+1/b) }

// coldLimit is the cold limit, or without http_floor the raw Ed25519 verify
// rate, or 0 when neither is known.
func (r *report) coldLimit() float64 {
	if floor := r.Workloads["http_floor"]; floor != nil && r.Limits["ed25519_verifies_per_s"] > 0 {
		return harmonic(floor.RPS, r.Limits["ed25519_verifies_per_s"])
	}
	return r.Limits["ed25519_verifies_per_s"]
}

// benchChecks adds the benchmark's derived limits and its checks, those
// whose inputs this run measured.
func (r *report) benchChecks(b *bench) {
	w, l := r.Workloads, r.Limits
	var errs uint64
	var first error
	for _, name := range r.order {
		errs += w[name].Errors
		first = pickErr(first, w[name].firstErr)
	}
	r.check("errors", float64(errs), 0, firstErr(first))
	ratioCheck := func(name, num, den string) {
		if w[num] != nil && w[den] != nil {
			r.check(name, ratio(w[num].RPS, w[den].RPS), ratio(w[num].RPSPerCPU, w[den].RPSPerCPU), "")
		}
	}
	ratioCheck("verify_hot/http_floor", "verify_hot", "http_floor")
	if floor := w["http_floor"]; floor != nil && l["ed25519_signs_per_s"] > 0 {
		for _, x := range []struct{ name, workload, limit, op string }{
			{"verify_cold/cold_limit", "verify_cold", "cold_limit", "ed25519_verifies_per_s"},
			{"open/open_limit", "open", "open_limit", "ed25519_signs_per_s"},
		} {
			r.limit(x.limit, harmonic(floor.RPS, l[x.op]), "1/(1/http_floor + 1/"+x.op+")")
			if w[x.workload] != nil {
				r.check(x.name, ratio(w[x.workload].RPS, l[x.limit]), ratio(w[x.workload].RPSPerCPU, harmonic(floor.RPSPerCPU, l[x.op])), "")
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
		r.check("verify_hot_p99_ms", w["verify_hot"].P99, 0, fmt.Sprintf("at %d connections", b.cfg.conns))
	}
	if w["verify_hot_1m"] != nil {
		r.check("verify_hot_1m_rss_mib", w["verify_hot_1m"].RSS, 0, map[bool]string{true: fmt.Sprintf("only %d entries preloaded", b.cfg.preload)}[b.cfg.preload != 1_000_000])
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
		r.Config["flood_conns"], r.Config["sessions"], r.Config["closes"], r.Config["sample_s"] = c.floodConns, c.sessions, c.closes, c.sample.Seconds()
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
			x.ServerCPU, x.ClientCPU, x.OtherCPU, x.RPSPerCPU, map[bool]string{true: strconv.FormatFloat(x.AttackRPS, 'f', 0, 64), false: "-"}[x.AttackRPS > 0])
	}
	tw.Flush()
	for _, name := range r.order {
		if x := r.Workloads[name]; x.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", name, x.Note)
		}
	}
	fmt.Fprintln(w, "  rss_mib: peak RSS (soak: VmRSS at the phase's end); server_cpu, client_cpu: cores busy in the window;")
	fmt.Fprintln(w, "  other_cpu: what everything else took of their two CPUs (noise); rps_per_cpu: rps / server_cpu.")
	if len(r.limitOrder) > 0 {
		fmt.Fprintln(w, "\nlimits")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, name := range r.limitOrder {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, formatNum(r.Limits[name]), r.limitAbout[name])
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nchecks (targets.json; per_cpu: the same ratio of rps_per_cpu; gate: a miss fails the run)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  check\tvalue\twant\t\tper_cpu\t")
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
	switch {
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// machine describes the CPU and the kernel.
func machine() (cpu, kernel string) {
	cpu, kernel = "unknown CPU", runtime.GOOS
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel += " " + strings.TrimSpace(string(data))
	}
	return cpu, kernel
}
