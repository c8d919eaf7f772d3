package main

// This file is the report: the table, the limits, issue 5's targets, as
// text or as JSON.

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"
)

// report is the outcome of a run.
type report struct {
	bench             *bench
	limits            *limits
	idlePeak, idleCur float64
	workloads         map[string]workloadResult
}

func (r *report) rps(name string) (float64, bool) {
	w, ok := r.workloads[name]
	return w.rps(), ok && w.rps() > 0
}

// rpsPerCPU is rps per CPU-second of the server, or 0.
func (r *report) rpsPerCPU(name string) float64 {
	w := r.workloads[name]
	return w.rpsPerCPU()
}

// harmonic returns 1/(1/a + 1/b): the rate of doing both one after the other.
func harmonic(a, b float64) float64 { return 1 / (1/a + 1/b) }

// coldLimit is the issue's cold_limit, or without http_floor the raw
// Ed25519 verify rate, or 0 when neither is known.
func (r *report) coldLimit() float64 {
	if r.limits == nil {
		return 0
	}
	if floor, ok := r.rps("http_floor"); ok {
		return harmonic(floor, r.limits.VerifyPerS)
	}
	return r.limits.VerifyPerS
}

// target is one line of issue 5's target table.
type target struct {
	name   string
	value  float64
	op     string // ">=" or "<="
	target float64
	unit   string
	about  string
	// perCPU is value computed from requests per CPU-second of the
	// server instead of per second (0: not applicable).
	perCPU float64
}

// ratioOrZero returns a/b, or 0 when either is unknown.
func ratioOrZero(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}

func (t target) pass() bool {
	if t.op == ">=" {
		return t.value >= t.target
	}
	return t.value <= t.target
}

// targets returns the targets whose inputs this run measured.
func (r *report) targets() []target {
	var ts []target
	ratio := func(name, num, den string, want float64, about string) {
		a, ok1 := r.rps(num)
		b, ok2 := r.rps(den)
		if ok1 && ok2 {
			perCPU := ratioOrZero(r.rpsPerCPU(num), r.rpsPerCPU(den))
			ts = append(ts, target{name, a / b, ">=", want, "", about, perCPU})
		}
	}
	ratio("verify_hot/http_floor", "verify_hot", "http_floor", 0.85, "")
	if floor, ok := r.rps("http_floor"); ok && r.limits != nil {
		floorCPU := r.rpsPerCPU("http_floor")
		limit := func(name, workload string, opsPerS float64, about string) {
			v, ok := r.rps(workload)
			if !ok {
				return
			}
			perCPU := 0.0
			if floorCPU > 0 {
				perCPU = ratioOrZero(r.rpsPerCPU(workload), harmonic(floorCPU, opsPerS))
			}
			ts = append(ts, target{name, v / harmonic(floor, opsPerS), ">=", 0.85, "", about, perCPU})
		}
		limit("verify_cold/cold_limit", "verify_cold", r.limits.VerifyPerS, "cold_limit = 1/(1/http_floor + 1/ed25519_verifies_per_s on the server's CPU)")
		limit("open/open_limit", "open", r.limits.SignPerS, "open_limit = 1/(1/http_floor + 1/ed25519_signs_per_s on the server's CPU)")
	}
	ratio("close/http_floor", "close", "http_floor", 0.40, "durable, tokens verified before")
	ratio("verify_hot_1m/verify_hot", "verify_hot_1m", "verify_hot", 0.95, "")
	if l := r.limits; l != nil {
		ts = append(ts,
			target{"token_verify/ed25519_verify", l.Ed25519VerifyNs / l.TokenVerifyNs, ">=", 0.90, "", "in-process rates, cache off", 0},
			target{"verify_repeated_ns", l.TokenRepeatedNs, "<=", 1000, "ns", "in-process, a token verified before", 0},
			target{"verify_repeated_allocs", l.TokenRepeatedAllocs, "<=", 2, "allocs", "", 0},
		)
	}
	if w, ok := r.workloads["verify_hot"]; ok {
		ts = append(ts, target{"verify_hot_p99_ms", ms(w.Hist.quantile(0.99)), "<=", 10, "ms", fmt.Sprintf("at %d connections", r.bench.cfg.conns), 0})
	}
	if w, ok := r.workloads["verify_hot_1m"]; ok {
		about := ""
		if r.bench.cfg.preload != 1_000_000 {
			about = fmt.Sprintf("only %d entries preloaded", r.bench.cfg.preload)
		}
		ts = append(ts, target{"verify_hot_1m_rss_mib", w.rssMiB, "<=", 256, "MiB", about, 0})
	}
	for _, name := range []string{"feed_abuse", "announce_flood"} {
		if w, ok := r.workloads[name]; ok {
			ts = append(ts,
				target{name + "/alone", ratioOrZero(w.rps(), w.baselineRPS), ">=", 0.5, "", "verify_hot under the attack over verify_hot alone, same server", 0},
				target{name + "_rss_mib", w.rssMiB, "<=", 256, "MiB", "peak", 0})
		}
	}
	if r.idlePeak > 0 {
		ts = append(ts, target{"idle_rss_mib", r.idlePeak, "<=", 64, "MiB", "", 0})
	}
	return ts
}

// limitList returns the limits as named values, in report order.
func (r *report) limitList() []struct {
	name  string
	value float64
	about string
} {
	type entry = struct {
		name  string
		value float64
		about string
	}
	var es []entry
	if l := r.limits; l != nil {
		core := "on the server's CPU, one goroutine, per CPU-second"
		es = append(es,
			entry{"ed25519_signs_per_s", l.SignPerS, core},
			entry{"ed25519_verifies_per_s", l.VerifyPerS, core},
			entry{"ed25519_signs_per_s_all_cpus", l.SignPerSAll, fmt.Sprintf("%d CPUs", l.CPUsAll)},
			entry{"ed25519_verifies_per_s_all_cpus", l.VerifyPerSAll, fmt.Sprintf("%d CPUs", l.CPUsAll)},
			entry{"badger_durable_writes_per_s", l.BadgerWritesPerS, fmt.Sprintf("revocation.Badger.Revoke from %d goroutines, fresh store, server's CPU", r.bench.cfg.conns)},
			entry{"ed25519_verify_ns", l.Ed25519VerifyNs, core},
			entry{"token_verify_ns", l.TokenVerifyNs, "token.Verifier.Verify, cache off, no revocation check, " + core},
			entry{"token_verify_repeated_ns", l.TokenRepeatedNs, "the same token again, cache on"},
			entry{"token_verify_repeated_allocs", l.TokenRepeatedAllocs, ""},
			entry{"token_issue_ns", l.TokenIssueNs, core},
			entry{"token_issue_allocs", l.TokenIssueAllocs, ""},
		)
		if floor, ok := r.rps("http_floor"); ok {
			es = append(es,
				entry{"cold_limit", harmonic(floor, l.VerifyPerS), "1/(1/http_floor + 1/ed25519_verifies_per_s)"},
				entry{"open_limit", harmonic(floor, l.SignPerS), "1/(1/http_floor + 1/ed25519_signs_per_s)"},
			)
		}
	}
	return es
}

func (r *report) pinning() string {
	b := r.bench
	if !b.pinned {
		return "not pinned"
	}
	return fmt.Sprintf("servers on CPU %d (checked: Cpus_allowed_list %s), load generator on CPU %d, by sched_setaffinity", b.cfg.serverCPU, b.serverCPUsSeen, b.cfg.clientCPU)
}

func (r *report) writeText(w io.Writer) error {
	b := r.bench
	c := b.cfg
	fmt.Fprintf(w, "sessiond-bench: %d connections, %s measured after %s warm-up per workload\n", c.conns, c.duration, c.warmup)
	fmt.Fprintf(w, "%s; %s, %d CPUs, %s, %s\n\n", r.pinning(), b.machineCPU, len(b.allCPUs), b.machineKernel, b.goVers)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\trps\tp50_ms\tp99_ms\tpeak_rss_mib\terrors\tserver_cpu\tclient_cpu\tother_cpu\trps_per_cpu\t")
	for _, name := range workloadNames {
		x, ok := r.workloads[name]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%.1f\t%d\t%.2f\t%.2f\t%.2f\t%.0f\t\n", name, x.rps(),
			ms(x.Hist.quantile(0.5)), ms(x.Hist.quantile(0.99)), x.rssMiB, x.Errors, x.ServerCPU, x.ClientCPU, x.OtherCPU, x.rpsPerCPU())
	}
	if r.idlePeak > 0 {
		fmt.Fprintf(tw, "idle\t\t\t\t%.1f\t\t\t\t\t\t\n", r.idlePeak)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, name := range workloadNames {
		if x, ok := r.workloads[name]; ok && x.note != "" {
			fmt.Fprintf(w, "  %s: %s\n", name, x.note)
		}
	}
	fmt.Fprintln(w, "  server_cpu, client_cpu: CPU time of the server and of the load generator in the window, in cores;")
	fmt.Fprintln(w, "  other_cpu: what everything else took of their two CPUs (noise; should be near 0);")
	fmt.Fprintln(w, "  rps_per_cpu: rps / server_cpu, what the server does per CPU-second (steadier than rps when other_cpu > 0).")

	if ls := r.limitList(); len(ls) > 0 {
		fmt.Fprintln(w, "\nlimits")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, l := range ls {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.name, formatNum(l.value), l.about)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if ts := r.targets(); len(ts) > 0 {
		fmt.Fprintln(w, "\ntargets (issue 5); per_cpu: the same ratio of rps_per_cpu")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  target\tvalue\twant\t\tper_cpu\t")
		for _, t := range ts {
			verdict := "FAIL"
			if t.pass() {
				verdict = "pass"
			}
			perCPU := ""
			if t.perCPU > 0 {
				perCPU = formatNum(t.perCPU)
			}
			fmt.Fprintf(tw, "  %s\t%s %s\t%s %s\t%s\t%s\t%s\n", t.name, formatNum(t.value), t.unit, t.op, formatNum(t.target), verdict, perCPU, t.about)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(b.notes) > 0 {
		fmt.Fprintln(w, "\nnotes")
		for _, n := range b.notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	fmt.Fprintf(w, "\ntotal time %.0fs\n", time.Since(b.started).Seconds())
	return nil
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

// JSON output.
type (
	jsonReport struct {
		Workloads map[string]jsonWorkload `json:"workloads"`
		Limits    map[string]float64      `json:"limits"`
		Ratios    map[string]jsonTarget   `json:"ratios"`
		Idle      *jsonIdle               `json:"idle,omitempty"`
		Config    jsonConfig              `json:"config"`
		Notes     []string                `json:"notes"`
	}
	jsonWorkload struct {
		RPS       float64 `json:"rps"`
		P50       float64 `json:"p50_ms"`
		P99       float64 `json:"p99_ms"`
		RSS       float64 `json:"rss_mib"`
		Errors    uint64  `json:"errors"`
		Requests  uint64  `json:"requests"`
		Seconds   float64 `json:"seconds"`
		ServerCPU float64 `json:"server_cpu"`
		ClientCPU float64 `json:"client_cpu"`
		OtherCPU  float64 `json:"other_cpu"`
		RPSPerCPU float64 `json:"rps_per_server_cpu"`
		ReadyRSS  float64 `json:"rss_before_load_mib"`
		Ready     float64 `json:"start_s"`
		Note      string  `json:"note,omitempty"`
	}
	jsonTarget struct {
		Value  float64 `json:"value"`
		Op     string  `json:"op"`
		Target float64 `json:"target"`
		Pass   bool    `json:"pass"`
		PerCPU float64 `json:"value_per_cpu,omitempty"`
		Unit   string  `json:"unit,omitempty"`
		About  string  `json:"about,omitempty"`
	}
	jsonIdle struct {
		RSS    float64 `json:"rss_mib"`
		CurRSS float64 `json:"current_rss_mib"`
	}
	jsonConfig struct {
		Conns     int     `json:"conns"`
		Duration  float64 `json:"duration_s"`
		Warmup    float64 `json:"warmup_s"`
		Quick     bool    `json:"quick"`
		Pool      int     `json:"pool"`
		Preload   int     `json:"preload"`
		Pinning   string  `json:"pinning"`
		CPU       string  `json:"cpu"`
		CPUs      int     `json:"cpus"`
		Kernel    string  `json:"kernel"`
		Go        string  `json:"go"`
		TotalTime float64 `json:"total_s"`
	}
)

// round3 keeps JSON readable: three decimals are more than the measurements
// hold. A value that is not finite, which encoding/json refuses, becomes 0.
func round3(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1000) / 1000
}

func (r *report) writeJSON(w io.Writer) error {
	b := r.bench
	out := jsonReport{
		Workloads: map[string]jsonWorkload{},
		Limits:    map[string]float64{},
		Ratios:    map[string]jsonTarget{},
		Notes:     append([]string{}, b.notes...),
		Config: jsonConfig{
			Conns: b.cfg.conns, Duration: b.cfg.duration.Seconds(), Warmup: b.cfg.warmup.Seconds(),
			Quick: b.cfg.quick, Pool: b.cfg.pool, Preload: b.cfg.preload, Pinning: r.pinning(),
			CPU: b.machineCPU, CPUs: len(b.allCPUs), Kernel: b.machineKernel, Go: b.goVers,
			TotalTime: round3(time.Since(b.started).Seconds()),
		},
	}
	for name, x := range r.workloads {
		out.Workloads[name] = jsonWorkload{
			RPS: round3(x.rps()), P50: round3(ms(x.Hist.quantile(0.5))), P99: round3(ms(x.Hist.quantile(0.99))),
			RSS: round3(x.rssMiB), Errors: x.Errors, Requests: x.Requests, Seconds: round3(x.Elapsed.Seconds()),
			ServerCPU: round3(x.ServerCPU), ClientCPU: round3(x.ClientCPU), OtherCPU: round3(x.OtherCPU),
			RPSPerCPU: round3(x.rpsPerCPU()), ReadyRSS: round3(x.readyRSSMiB), Ready: round3(x.ready.Seconds()),
			Note: x.note,
		}
	}
	for _, l := range r.limitList() {
		out.Limits[l.name] = round3(l.value)
	}
	for _, t := range r.targets() {
		out.Ratios[t.name] = jsonTarget{Value: round3(t.value), Op: t.op, Target: t.target, Pass: t.pass(), PerCPU: round3(t.perCPU), Unit: t.unit, About: t.about}
	}
	if r.idlePeak > 0 {
		out.Idle = &jsonIdle{RSS: round3(r.idlePeak), CurRSS: round3(r.idleCur)}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
