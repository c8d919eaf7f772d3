//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the floor server: the benchmark
// re-executes itself (here, the test binary) with "serve-floor".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve-floor" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := serveFloor(ctx, os.Args[2:])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve-floor:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRun runs the two floor workloads for a moment (the test binary
// serves as the floor server) and checks the JSON report's shape.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	t.Setenv("TMPDIR", t.TempDir())
	args := []string{"--json", "--only", "http_floor,rpc_floor", "--duration", "200ms", "--warmup", "100ms", "--conns", "2", "--pool", "20"}
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run() = %v\nstderr:\n%s\nstdout:\n%s", err, &stderr, &stdout)
	}
	var rep struct {
		Pass      bool
		Workloads map[string]struct {
			RPS    *float64 `json:"rps"`
			P50    *float64 `json:"p50_ms"`
			P99    *float64 `json:"p99_ms"`
			RSS    *float64 `json:"rss_mib"`
			Errors *uint64  `json:"errors"`
		}
		Ratios map[string]struct {
			Value  *float64
			Op     string
			Target *float64
			Pass   *bool
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, &stdout)
	}
	for _, name := range []string{"http_floor", "rpc_floor"} {
		w, ok := rep.Workloads[name]
		switch {
		case !ok || w.RPS == nil || w.P50 == nil || w.P99 == nil || w.RSS == nil || w.Errors == nil:
			t.Errorf("workloads[%q] = %+v, want rps, p50_ms, p99_ms, rss_mib and errors", name, w)
		case *w.Errors != 0 || *w.RPS <= 0 || *w.P50 <= 0 || *w.P99 < *w.P50 || *w.RSS <= 0:
			t.Errorf("workloads[%q]: rps %v, p50 %v, p99 %v, rss %v, errors %d; want positive figures, p50 <= p99, no errors", name, *w.RPS, *w.P50, *w.P99, *w.RSS, *w.Errors)
		}
	}
	if r, ok := rep.Ratios["errors"]; !ok || r.Value == nil || r.Target == nil || r.Pass == nil || r.Op != "<=" || !*r.Pass {
		t.Errorf("ratios[errors] = %+v, want a passing check", r)
	}
	if !rep.Pass {
		t.Errorf("pass = false, want true")
	}
}

func TestQuantile(t *testing.T) {
	var l lats
	for i := 10000; i >= 1; i-- {
		l = append(l, time.Duration(i)*time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 5}, {0.99, 9.9}, {1, 10}, {0.00001, 0.001}} {
		if got := l.quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v ms, want %v ms", tc.q, got, tc.want)
		}
	}
	if got := lats(nil).quantile(0.5); got != 0 {
		t.Errorf("quantile of none = %v, want 0", got)
	}
}

// TestTargets checks targets.json: every target has an op, a unique name,
// and an "of" that names figures the tool measures (a typo there would
// silently drop the check from every report).
func TestTargets(t *testing.T) {
	known := map[string]bool{}
	for _, w := range workloads {
		known[w.name] = true
	}
	for _, p := range soakSchedule(4, 1) {
		known[p.name] = true
	}
	for _, l := range limits {
		known[l[0]] = true
	}
	known["cold_limit"], known["open_limit"] = true, true
	r, seen := newReport("bench"), map[string]bool{}
	for _, tg := range r.targetList {
		if seen[tg.Name] || tg.Op != ">=" && tg.Op != "<=" {
			t.Errorf("target %q: repeated, or op %q; want a unique name and >= or <=", tg.Name, tg.Op)
		}
		seen[tg.Name] = true
		for ref := range strings.SplitSeq(tg.Of, "/") {
			name, field, _ := strings.Cut(ref, ".")
			if tg.Of != "" && (!known[name] || !slices.Contains([]string{"", "p99_ms", "rss_mib", "baseline", "baseline_p99_ms", "verify.p99_ms"}, field)) {
				t.Errorf("target %q: of %q names %q, which the tool does not measure", tg.Name, tg.Of, ref)
			}
		}
	}
}
