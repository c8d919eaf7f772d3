package main

// This file measures in process what the server's figures are compared
// with, by running this package's benchmarks (limits_test.go) the way
// `go test -bench` does, on the server's CPU: Ed25519 signatures, token
// verification against raw Ed25519, a repeated verification, an issue, and
// Badger's durable writes; then the Ed25519 rates on all CPUs. The output is
// go test's own, for benchstat (--bench-file).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// benchLine is one result line of go test -bench: name, count, and pairs
// of value and unit.
var benchLine = regexp.MustCompile(`(?m)^Benchmark(\w+)(?:-\d+)?\s+\d+((?:\s+[\d.]+ \S+)+)$`)

func (b *bench) measureLimits(ctx context.Context) error {
	bin := filepath.Join(b.tmp, "limits.test")
	b.progress("limits: go test -c ./cmd/sessiond-bench")
	if err := b.onAllCPUs(func() error {
		return goBuild(ctx, b.stderr, "test", "-c", "-o", bin, "github.com/sessiond/sessiond/cmd/sessiond-bench")
	}); err != nil {
		return err
	}
	var out bytes.Buffer
	runs := []struct {
		cpus    []int
		procs   int
		pattern string
	}{
		{b.serverCPUs, 1, "^Benchmark(Ed25519Sign|Ed25519Verify|TokenVerify|TokenVerifyRepeated|TokenIssue|BadgerRevoke)$"},
		{b.allCPUs, len(b.allCPUs), "^BenchmarkEd25519(Sign|Verify)Parallel$"},
	}
	for _, r := range runs {
		b.progress("limits: %s on CPUs %v, -test.cpu %d", r.pattern, r.cpus, r.procs)
		cmd := exec.CommandContext(ctx, bin, "-test.run", "^$", "-test.bench", r.pattern, "-test.benchmem",
			"-test.benchtime", b.cfg.benchTime.String(), "-test.cpu", strconv.Itoa(r.procs), "-bench.conns", strconv.Itoa(b.cfg.conns))
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Env = append(os.Environ(), "TMPDIR="+b.tmp)
		done := make(chan error, 1)
		if !b.pinned {
			r.cpus = nil
		}
		if err := startPinned(cmd, r.cpus, func() { done <- cmd.Wait() }); err != nil {
			return err
		}
		if err := <-done; err != nil {
			return fmt.Errorf("%s: %w\n%s", r.pattern, err, &out)
		}
	}
	if b.cfg.benchFile != "" {
		if err := os.WriteFile(b.cfg.benchFile, out.Bytes(), 0o644); err != nil {
			return err
		}
	}
	ns, allocs := parseBench(out.String())
	core := "go test -bench, -test.cpu 1, on the server's CPU, per CPU-second"
	all := fmt.Sprintf("the same, RunParallel on all %d CPUs", len(b.allCPUs))
	for _, l := range []struct {
		name, bench, about string
		v                  float64
	}{
		{"ed25519_signs_per_s", "Ed25519Sign", core, 1e9 / ns["Ed25519Sign"]},
		{"ed25519_verifies_per_s", "Ed25519Verify", core, 1e9 / ns["Ed25519Verify"]},
		{"ed25519_signs_per_s_all_cpus", "Ed25519SignParallel", all, 1e9 / ns["Ed25519SignParallel"]},
		{"ed25519_verifies_per_s_all_cpus", "Ed25519VerifyParallel", all, 1e9 / ns["Ed25519VerifyParallel"]},
		{"badger_durable_writes_per_s", "BadgerRevoke", fmt.Sprintf("revocation.Badger.Revoke from %d goroutines, fresh store, server's CPU", b.cfg.conns), 1e9 / ns["BadgerRevoke"]},
		{"ed25519_verify_ns", "Ed25519Verify", core, ns["Ed25519Verify"]},
		{"token_verify_ns", "TokenVerify", "token.Verifier.Verify, cache off, no revocation check; " + core, ns["TokenVerify"]},
		{"token_verify_repeated_ns", "TokenVerifyRepeated", "the same token again, cache on", ns["TokenVerifyRepeated"]},
		{"token_verify_repeated_allocs", "TokenVerifyRepeated", "", allocs["TokenVerifyRepeated"]},
		{"token_issue_ns", "TokenIssue", core, ns["TokenIssue"]},
		{"token_issue_allocs", "TokenIssue", "", allocs["TokenIssue"]},
	} {
		if _, ok := ns[l.bench]; !ok {
			return fmt.Errorf("no result for Benchmark%s in:\n%s", l.bench, &out)
		}
		b.rep.limit(l.name, l.v, l.about)
	}
	return nil
}

// parseBench returns the ns/op and allocs/op of go test -bench output, by
// benchmark; the CPU time per op (cpu-ns/op) where a benchmark reports it.
func parseBench(out string) (ns, allocs map[string]float64) {
	ns, allocs = map[string]float64{}, map[string]float64{}
	for _, m := range benchLine.FindAllStringSubmatch(out, -1) {
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseFloat(f[i], 64)
			switch _, seen := ns[m[1]]; {
			case f[i+1] == "cpu-ns/op", f[i+1] == "ns/op" && !seen:
				ns[m[1]] = v
			case f[i+1] == "allocs/op":
				allocs[m[1]] = v
			}
		}
	}
	return ns, allocs
}
