//go:build linux

package main

// This file is the benchmark's schedule: the in-process limits
// (limits_test.go, run by go test -bench), an idle server, and the
// workloads, each on a fresh server and data directory (so that its peak RSS
// is its own), its tokens issued in-process beforehand with that directory's
// key file: byte for byte what open_session returns, none verified yet.

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/session"
)

func (b *bench) benchmark(ctx context.Context) error {
	if b.cfg.want("limits") {
		if err := b.measureLimits(ctx); err != nil {
			return fmt.Errorf("limits: %w", err)
		}
	}
	for _, name := range append([]string{"idle"}, workloadNames...) {
		if !b.cfg.want(name) {
			continue
		} else if err := ctx.Err(); err != nil {
			return err
		}
		w, err := b.runWorkload(ctx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		} else if w == nil {
			continue // idle
		}
		b.rep.add(name, w)
		b.progress("%-13s %7.0f req/s (%.0f per server CPU-second)  p50 %.3f ms  p99 %.3f ms  peak RSS %.1f MiB  errors %d  CPU: server %.2f, client %.2f, other %.2f",
			name, w.RPS, w.RPSPerCPU, w.P50, w.P99, w.RSS, w.Errors, w.ServerCPU, w.ClientCPU, w.OtherCPU)
		if w.OtherCPU > 0.1 {
			b.note("%s: other processes took %.2f of the two CPUs' time during the window: its figures are noisy", name, w.OtherCPU)
		}
		if w.ClientCPU > 0.9 && w.ServerCPU > 0 && w.ServerCPU < 0.9 {
			b.note("%s: the load generator's CPU was %.0f%% busy and the server's only %.0f%%: the generator may be the bottleneck", name, 100*w.ClientCPU, 100*w.ServerCPU)
		}
	}
	b.rep.benchChecks(b.cfg)
	return nil
}

// runWorkload prepares the named workload's data directory, starts its
// server (sessiond, or serve-floor), loads it and returns its figures once
// the server stopped cleanly. idle only waits --warmup and sets the
// report's idle. verify_hot_sub is verify_hot of tokens with a subject,
// none of them cut off, after a tenth of --preload other subjects were. verify_cold gets tokens for the whole run at 1.2 times the
// cold limit, each verified once; feed_abuse and announce_flood run
// verify_hot alone, then under the attack.
func (b *bench) runWorkload(ctx context.Context, name string) (*result, error) {
	cfg, dir := b.cfg, filepath.Join(b.tmp, name)
	n, preload := cfg.pool, map[string]int{"verify_hot_1m": cfg.preload, "feed_abuse": cfg.preload / 5, "verify_hot_sub": cfg.preload / 10}[name]
	cut := name == "verify_hot_sub"
	what := map[bool]string{false: "revocations", true: "subject cutoffs"}[cut]
	switch name {
	case "mixed":
		n = max(cfg.pool, 2*cfg.conns)
	case "verify_cold":
		expected := b.rep.Limits["ed25519_verifies_per_s"]
		if floor := b.rep.Workloads["http_floor"]; floor != nil && expected > 0 {
			expected = harmonic(floor.RPS, expected)
		}
		n = min(int(math.Ceil(max(expected, 50_000)*(cfg.warmup+cfg.duration).Seconds()*1.2))+cfg.conns, 2_000_000)
	case "open", "close", "idle":
		n = 0
	}
	if n+preload > cfg.pool {
		b.progress("%s: issuing %d tokens and writing %d %s into a fresh store (all CPUs)", name, n, preload, what)
	}
	var iss *issue.Issuer
	var toks []string
	var took time.Duration
	err := b.onAllCPUs(func() (err error) {
		if iss, _, err = newIssuer(dir); err == nil {
			toks, err = issueTokens(iss, n, cut)
		}
		if start := time.Now(); err == nil && preload > 0 {
			err = preloadRevocations(ctx, filepath.Join(dir, "revocations"), preload, cut)
			took = time.Since(start)
		}
		return err
	})
	start, srv := time.Now(), (*server)(nil)
	if kind, floor := strings.CutSuffix(name, "_floor"); err == nil && floor {
		self := ""
		if self, err = os.Executable(); err == nil {
			srv, err = b.start(ctx, name, self, "serve-floor", kind)
		}
	} else if err == nil {
		srv, err = b.startSessiond(ctx, name, dir)
	}
	if err != nil {
		return nil, err
	}
	defer srv.kill()
	note := ""
	if preload > 0 {
		note = fmt.Sprintf("after %d %s written with revocation.Badger.%s from 2048 goroutines on all CPUs in %.1fs (%.0f/s)",
			preload, what, map[bool]string{false: "Revoke", true: "CutOff"}[cut], took.Seconds(), float64(preload)/took.Seconds())
	}
	if cut {
		note = map[bool]string{true: "NOT 100,000: "}[preload != 100_000] + note + fmt.Sprintf("; %d tokens of as many other subjects, not cut off", n)
		if preload != 100_000 {
			b.note("verify_hot_sub: %d subjects cut off, not the issue's 100,000 (a tenth of --preload; --quick: 10,000)", preload)
		}
	}
	if name == "verify_hot_1m" {
		note = map[bool]string{true: "NOT one million: "}[preload != 1_000_000] + note + fmt.Sprintf("; the server took %.1fs to start and settle, and its peak RSS was %.1f MiB before the load began",
			time.Since(start).Seconds(), procMiB(srv.pid, "VmHWM"))
	}
	var r result
	var baseline float64
	switch name {
	case "idle":
		select {
		case <-time.After(cfg.warmup):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		b.rep.Idle = &idle{RSS: procMiB(srv.pid, "VmHWM"), CurRSS: procMiB(srv.pid, "VmRSS")}
		return nil, srv.stop()
	case "open":
		r = b.load(srv, repeat(cfg.conns, func(int) source { return openSource }))
	case "close":
		r, note, err = b.closeRounds(ctx, srv, iss)
	case "mixed":
		r = b.load(srv, newMixedSources(toks, cfg.conns))
		note = "in every 20 requests of a connection: 18 verify, 1 open, 1 close of its oldest session, which the last open's token replaces"
	case "verify_cold":
		r = b.load(srv, newListSources(toks, cfg.conns, verifyBody, expectActive))
		note = fmt.Sprintf("%d tokens issued, %d used", n, min(n, int(r.Requests)))
		if r.exhausted {
			note = fmt.Sprintf("the %d tokens ran out after %.1fs of the %s window; measured over that", n, r.elapsed.Seconds(), cfg.duration)
			b.note("verify_cold: %s", note)
		}
	case "feed_abuse", "announce_flood":
		b.progress("%s: baseline, verify_hot alone", name)
		base := b.load(srv, newCycleSources(toks, cfg.conns))
		baseRSS := procMiB(srv.pid, "VmRSS")
		actx, stop := context.WithCancel(ctx)
		b.progress("%s: verify_hot under attack", name)
		summary := make(chan string, 1)
		go func() {
			summary <- map[string]attack{"feed_abuse": feedAbuse, "announce_flood": announceFlood}[name](actx, srv.addr)
		}()
		r = b.load(srv, newCycleSources(toks, cfg.conns))
		stop()
		r.addErrors(base)
		baseline = base.rps()
		note = fmt.Sprintf("%d revocations; verify_hot alone on the same server %.0f req/s (RSS %.1f MiB), under attack %.0f req/s: %.0f%% of it; the attack: %s",
			preload, baseline, baseRSS, r.rps(), 100*ratio(r.rps(), baseline), <-summary)
	default:
		r = b.load(srv, newCycleSources(toks, cfg.conns))
	}
	if err == nil {
		err = srv.alive()
	}
	if err == nil && errors.Is(r.firstErr, errServerGone) {
		err = r.firstErr
	}
	if err != nil {
		return nil, err
	}
	r.baseline = baseline
	return r.finish(procMiB(srv.pid, "VmHWM"), note), srv.stop()
}

// closeChunk is a quarter of the verifier's cache.
const closeChunk, closePrimePasses = 4096, 4

// closeRounds measures close_session of tokens verified before, in rounds
// (the cache holds far fewer tokens than a run closes): issue closeChunk
// tokens, verify each closePrimePasses times unmeasured (each pass puts back
// what random eviction took: about 0.1% of closes miss the cache), close
// them all, until --warmup and then --duration of closing are done.
func (b *bench) closeRounds(ctx context.Context, srv *server, iss *issue.Issuer) (total result, note string, err error) {
	chunk := max(closeChunk, b.cfg.conns)
	var warmed, primeTime time.Duration
	rounds := 0
	for total.elapsed < b.cfg.duration && !errors.Is(total.firstErr, errServerGone) && err == nil {
		var toks []string
		if err = ctx.Err(); err == nil {
			toks, err = issueTokens(iss, chunk, false)
		}
		primeStart := time.Now()
		for range closePrimePasses {
			total.addErrors(runLoad(srv.addr, newListSources(toks, b.cfg.conns, verifyBody, expectActive), 0, time.Hour, 0, nil))
		}
		primeTime += time.Since(primeStart)
		r := runLoad(srv.addr, newListSources(toks, b.cfg.conns, closeBody, expectTrue), 0, time.Hour, srv.pid, b.loadCPUs())
		if warmed < b.cfg.warmup {
			warmed += r.elapsed
			total.addErrors(r)
		} else {
			total.add(r)
			rounds++
		}
	}
	return total, fmt.Sprintf("%d measured rounds of %d tokens, each verified %d times before the round (%.1fs of verifying in all, not measured)",
		rounds, chunk, closePrimePasses, primeTime.Seconds()), err
}

// attack runs against addr until ctx ends, then says what it did.
type attack func(ctx context.Context, addr string) (summary string)

// feedAbuse is feed_abuse's attack: 4 connections fetching
// GET /revocations?since=1 (a snapshot each time, or 429) in a loop.
func feedAbuse(ctx context.Context, addr string) string {
	const conns = 4
	var ok, limited, other, bytes atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/revocations?since=1", nil)
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						other.Add(1)
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				bytes.Add(n)
				cmp.Or(map[int]*atomic.Int64{http.StatusOK: &ok, http.StatusTooManyRequests: &limited}[resp.StatusCode], &other).Add(1)
			}
		})
	}
	wg.Wait()
	return fmt.Sprintf("%d connections fetching ?since=1: %d snapshots, %d answered 429, %d other, %.1f MB received",
		conns, ok.Load(), limited.Load(), other.Load(), float64(bytes.Load())/1e6)
}

// announceFlood is announce_flood's attack: 900 connections that each
// announce a 1 MiB body, send 100-odd bytes of it and then nothing.
func announceFlood(ctx context.Context, addr string) string {
	const conns = 900
	head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, 1<<20)
	body := verifyPrefix + strings.Repeat("x", 30)
	failed := 0
	for range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			defer c.Close()
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, err = io.WriteString(c, head+body)
		}
		if err != nil {
			failed++
		}
	}
	<-ctx.Done()
	return fmt.Sprintf("%d connections announcing 1 MiB and sending %d bytes (%d failed to connect or send)", conns, len(body), failed)
}

// tokenLifetime is the lifetime of the benchmark's own tokens: longer than any run.
const tokenLifetime = 24 * time.Hour

// newIssuer creates dataDir (0700) with its key file under serve's default
// policy and returns an issuer with that key: its tokens are what
// open_session of a server on dataDir returns.
func newIssuer(dataDir string) (*issue.Issuer, *keys.Keyring, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, err
	}
	policy := keys.Policy{MaxTokenLifetime: session.DefaultMaxExpiresIn, PropagationDelay: 5 * time.Minute}
	ring, err := keys.OpenKeyring(filepath.Join(dataDir, "keys.json"), policy, keys.KeyringOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("create signing key: %w", err)
	}
	return issue.New(ring), ring, nil
}

// issueTokens issues n tokens on GOMAXPROCS goroutines; with subjects,
// token i has the subject user<i>@example.com.
func issueTokens(iss *issue.Issuer, n int, subjects bool) ([]string, error) {
	toks, workers := make([]string, n), runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += workers {
				toks[i], _, errs[w] = iss.IssueFor(map[bool]string{true: fmt.Sprintf("user%d@example.com", i)}[subjects], tokenLifetime)
			}
		})
	}
	wg.Wait()
	return toks, errors.Join(errs...)
}

// randomID returns a random version 4 UUID from r (cheaper than uuid.New's
// crypto/rand, which would dominate a write benchmark).
func randomID(r *rand.ChaCha8) (id uuid.UUID) {
	r.Read(id[:])
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
	return id
}

func newRand() *rand.ChaCha8 {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

// preloadRevocations revokes n random ids into the store in dir, or with
// cut cuts off n random subjects (<uuid>@example.com) as of now, from
// enough goroutines to fill every group commit.
func preloadRevocations(ctx context.Context, dir string, n int, cut bool) error {
	store, err := revocation.OpenBadger(dir, revocation.Options{})
	if err != nil {
		return err
	}
	now := time.Now()
	until := now.Add(tokenLifetime)
	var left atomic.Int64
	left.Store(int64(n))
	errs := make([]error, 2048)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for r := newRand(); left.Add(-1) >= 0 && errs[w] == nil; {
				if id := randomID(r); cut {
					errs[w] = store.CutOff(ctx, id.String()+"@example.com", now, until)
				} else {
					errs[w] = store.Revoke(ctx, id, until)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errors.Join(errs...), store.Close())
}

// benchLine is a line of go test -bench: name, count, values and units.
var benchLine = regexp.MustCompile(`(?m)^Benchmark(\w+)(?:-\d+)?\s+\d+((?:\s+[\d.]+ \S+)+)$`)

// measureLimits runs this package's benchmarks (a test binary): the
// single-core ones on the server's CPU, then the Ed25519 rates on all CPUs.
// --bench-file keeps go test's output, for benchstat.
func (b *bench) measureLimits(ctx context.Context) error {
	bin := filepath.Join(b.tmp, "limits.test")
	b.progress("limits: go test -c ./cmd/sessiond-bench")
	if err := b.onAllCPUs(func() error {
		return goBuild(ctx, b.stderr, "test", "-c", "-o", bin, "github.com/sessiond/sessiond/cmd/sessiond-bench")
	}); err != nil {
		return err
	}
	var out bytes.Buffer
	for i, pattern := range []string{"^Benchmark(Ed25519Sign|Ed25519Verify|TokenVerify|TokenVerifyRepeated|TokenIssue|BadgerRevoke)$", "^BenchmarkEd25519(Sign|Verify)Parallel$"} {
		cpus, procs := b.serverCPUs, 1
		if i == 1 {
			cpus, procs = map[bool][]int{true: b.allCPUs}[b.clientCPUs != nil], len(b.allCPUs)
		}
		b.progress("limits: %s on CPUs %v, -test.cpu %d", pattern, cpus, procs)
		cmd := exec.CommandContext(ctx, bin, "-test.run", "^$", "-test.bench", pattern, "-test.benchmem",
			"-test.benchtime", b.cfg.benchTime.String(), "-test.cpu", strconv.Itoa(procs), "-bench.conns", strconv.Itoa(b.cfg.conns))
		cmd.Stdout, cmd.Stderr, cmd.Env = &out, &out, append(os.Environ(), "TMPDIR="+b.tmp)
		done := make(chan error, 1)
		if err := startPinned(cmd, cpus, func() { done <- cmd.Wait() }); err != nil {
			return err
		} else if err := <-done; err != nil {
			return fmt.Errorf("%s: %w\n%s", pattern, err, &out)
		}
	}
	if b.cfg.benchFile != "" {
		if err := os.WriteFile(b.cfg.benchFile, out.Bytes(), 0o644); err != nil {
			return err
		}
	}
	ns, allocs := parseBench(out.String())
	for _, l := range []struct {
		name, bench string
		v           float64
	}{
		{"ed25519_signs_per_s", "Ed25519Sign", 1e9 / ns["Ed25519Sign"]},
		{"ed25519_verifies_per_s", "Ed25519Verify", 1e9 / ns["Ed25519Verify"]},
		{"ed25519_signs_per_s_all_cpus", "Ed25519SignParallel", 1e9 / ns["Ed25519SignParallel"]},
		{"ed25519_verifies_per_s_all_cpus", "Ed25519VerifyParallel", 1e9 / ns["Ed25519VerifyParallel"]},
		{"badger_durable_writes_per_s", "BadgerRevoke", 1e9 / ns["BadgerRevoke"]},
		{"ed25519_verify_ns", "Ed25519Verify", ns["Ed25519Verify"]},
		{"token_verify_ns", "TokenVerify", ns["TokenVerify"]},
		{"token_verify_repeated_ns", "TokenVerifyRepeated", ns["TokenVerifyRepeated"]},
		{"token_verify_repeated_allocs", "TokenVerifyRepeated", allocs["TokenVerifyRepeated"]},
		{"token_issue_ns", "TokenIssue", ns["TokenIssue"]},
		{"token_issue_allocs", "TokenIssue", allocs["TokenIssue"]},
	} {
		if _, ok := ns[l.bench]; !ok {
			return fmt.Errorf("no result for Benchmark%s in:\n%s", l.bench, &out)
		}
		b.rep.Limits[l.name] = l.v
	}
	return nil
}

// parseBench returns ns/op (cpu-ns/op where reported) and allocs/op by benchmark.
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
