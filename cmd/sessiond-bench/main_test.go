package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the floor server: the benchmark
// re-executes itself (here, the test binary) with "serve-floor".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve-floor" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := serveFloor(ctx, os.Args[2:], os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve-floor:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRun runs the whole benchmark with tiny times and checks the JSON
// report's shape and that no request failed.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs sessiond")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{
		"--json", "--duration", "300ms", "--warmup", "100ms", "--conns", "4",
		"--pool", "50", "--preload", "2000", "--feed-preload", "2000", "--limit-time", "50ms", "--idle-wait", "100ms",
		"--close-chunk", "64", "--tmp-dir", t.TempDir(),
	}
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run() = %v\nstderr:\n%s\nstdout:\n%s", err, &stderr, &stdout)
	}
	t.Logf("stderr:\n%s", &stderr)

	var rep struct {
		Workloads map[string]struct {
			RPS      *float64 `json:"rps"`
			P50      *float64 `json:"p50_ms"`
			P99      *float64 `json:"p99_ms"`
			RSS      *float64 `json:"rss_mib"`
			Errors   *uint64  `json:"errors"`
			Requests uint64   `json:"requests"`
		} `json:"workloads"`
		Limits map[string]float64 `json:"limits"`
		Ratios map[string]struct {
			Value  *float64 `json:"value"`
			Op     string   `json:"op"`
			Target float64  `json:"target"`
			Pass   *bool    `json:"pass"`
		} `json:"ratios"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.Bytes())
	}

	for _, name := range workloadNames {
		t.Run(name, func(t *testing.T) {
			w, ok := rep.Workloads[name]
			if !ok {
				t.Fatalf("workloads[%q] missing", name)
			}
			if w.RPS == nil || w.P50 == nil || w.P99 == nil || w.RSS == nil || w.Errors == nil {
				t.Fatalf("workloads[%q] lacks rps, p50_ms, p99_ms, rss_mib or errors", name)
			}
			if *w.Errors != 0 {
				t.Errorf("errors = %d, want 0", *w.Errors)
			}
			if *w.RPS <= 0 || w.Requests == 0 {
				t.Errorf("rps = %v, requests = %d, want both > 0", *w.RPS, w.Requests)
			}
			if *w.P50 <= 0 || *w.P99 < *w.P50 {
				t.Errorf("p50_ms = %v, p99_ms = %v, want 0 < p50 <= p99", *w.P50, *w.P99)
			}
			if *w.RSS <= 0 {
				t.Errorf("rss_mib = %v, want > 0", *w.RSS)
			}
		})
	}
	if len(rep.Workloads) != len(workloadNames) {
		t.Errorf("%d workloads, want %d", len(rep.Workloads), len(workloadNames))
	}

	for _, name := range []string{
		"ed25519_signs_per_s", "ed25519_verifies_per_s", "ed25519_signs_per_s_all_cpus",
		"ed25519_verifies_per_s_all_cpus", "badger_durable_writes_per_s", "cold_limit", "open_limit",
		"token_verify_ns", "ed25519_verify_ns", "token_verify_repeated_ns",
	} {
		if v, ok := rep.Limits[name]; !ok || !(v > 0) {
			t.Errorf("limits[%q] = %v, %v; want a positive number", name, v, ok)
		}
	}

	for _, name := range []string{
		"verify_hot/http_floor", "verify_cold/cold_limit", "open/open_limit", "close/http_floor",
		"verify_hot_1m/verify_hot", "token_verify/ed25519_verify", "verify_repeated_ns",
		"verify_repeated_allocs", "verify_hot_p99_ms", "verify_hot_1m_rss_mib", "idle_rss_mib",
		"feed_abuse/alone", "feed_abuse_rss_mib", "announce_flood/alone", "announce_flood_rss_mib",
	} {
		r, ok := rep.Ratios[name]
		switch {
		case !ok:
			t.Errorf("ratios[%q] missing", name)
		case r.Value == nil || r.Pass == nil || (r.Op != ">=" && r.Op != "<=") || r.Target <= 0:
			t.Errorf("ratios[%q] = %+v, want value, op, target and pass", name, r)
		case math.IsNaN(*r.Value) || math.IsInf(*r.Value, 0):
			t.Errorf("ratios[%q].value = %v", name, *r.Value)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 10000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 5000 * time.Microsecond},
		{0.99, 9900 * time.Microsecond},
		{1, 10000 * time.Microsecond},
	} {
		got := h.quantile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 0.016 {
			t.Errorf("quantile(%v) = %v, want %v ± 1.6%%", tc.q, got, tc.want)
		}
	}
	for _, d := range []time.Duration{0, 1, 63, 64, 65, 1000, time.Second, math.MaxInt64} {
		i := histBucket(d)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histBucket(%d) = %d, out of range", d, i)
		}
		if mid := histMid(i); math.Abs(mid-float64(d)) > 0.016*float64(d)+1 {
			t.Errorf("histMid(histBucket(%d)) = %v, more than 1.6%% off", d, mid)
		}
	}
}
