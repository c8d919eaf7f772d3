//go:build linux

package main

// This file is the report, one shape for both schedules: the workloads (or
// the soak's phases), the in-process limits, the checks against
// targets.json, and the soak's samples; written as a summary or as JSON.

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

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
// (NAME.p99_ms, NAME.rss_mib, NAME.baseline: its rps alone before an
// attack; NAME.KIND.p99_ms: of the soak's requests of a kind) or
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
	v, ok = map[string]float64{"": w.RPS, "p99_ms": w.P99, "rss_mib": w.RSS, "baseline": w.baseline}[field]
	return v, map[bool]float64{true: w.RPSPerCPU}[field == ""], ok
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
