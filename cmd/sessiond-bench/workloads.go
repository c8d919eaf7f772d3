//go:build linux

package main

// This file is the benchmark's schedule: the in-process limits
// (limits_test.go, run by go test -bench), an idle server, and the table of
// workloads, each on a fresh server and data directory (so that its peak RSS
// is its own), its tokens issued in-process beforehand with that directory's
// key file: byte for byte what open_session returns, none verified yet.

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/session"
)

// workload is one entry of the benchmark's schedule.
type workload struct {
	name     string
	floor    string             // "http" or "rpc": this binary's floor server (serve-floor) instead of sessiond
	tokens   func(b *bench) int // how many tokens to issue beforehand; nil: --pool
	fill     int                // when > 0, 1/fill of --preload revocations written through the API before the load
	subjects bool               // tokens with subjects (user<i>@example.com); the fill cuts other subjects off instead
	valkey   bool               // the revocation list on a Valkey (or Redis) the benchmark starts, not Badger
	clients  map[string]string  // callers added with sessiond clients add NAME --allow PERMISSIONS (name → permissions); their secrets in job.secrets
	run      func(b *bench, j *job) (result, string, error)
}

// job is a workload being run: its server, its tokens and their issuer.
type job struct {
	name string
	dir  string // the server's data directory
	ctx  context.Context
	srv  *server
	toks []string
	iss  *issue.Issuer
	// secrets are the workload's clients' secrets by name; with clients,
	// every request needs one (withAuth).
	secrets map[string]string
}

// workloads are the benchmark's workloads, in the order they run. idle
// is a server that only started (the report's idle, not a workload).
// verify_hot_sub is verify_hot of tokens with a subject, none of them cut
// off, after a tenth of --preload other subjects were, in windows taken in
// turn with verify_hot of tokens without one on the same server (its
// baseline, againstPlain); mixed is 90% verify,
// 5% open, 5% close; verify_hot_1m is verify_hot after a million sessions
// were closed; feed_abuse and announce_flood run verify_hot alone, then
// under their attack; flood_fair runs it as the client "valid" alone, then
// while the client "flooder" floods forged tokens; the _valkey ones are
// their namesakes with the revocation list on Valkey, verify_hot_valkey and
// close_valkey measured in turn with a twin server on Badger (againstBadger,
// closeAgainstBadger).
var workloads = []workload{
	{name: "idle", tokens: none, run: waitIdle},
	{name: "http_floor", floor: "http", run: cycle},
	{name: "rpc_floor", floor: "rpc", run: cycle},
	{name: "verify_hot", run: againstFloor(cycleLoad, "")},
	{name: "verify_hot_sub", fill: 10, subjects: true, run: againstPlain},
	{name: "verify_cold", tokens: coldTokens, run: againstFloor(coldLoad, "ed25519_verifies_per_s")},
	{name: "open", tokens: none, run: againstFloor(openLoad, "ed25519_signs_per_s")},
	{name: "close", tokens: none, run: closeAgainstFloor},
	{name: "mixed", tokens: mixedTokens, run: mixed},
	{name: "verify_hot_1m", fill: 1, run: againstBadger},
	{name: "feed_abuse", fill: 5, run: underAttack(feedAbuse)},
	{name: "announce_flood", run: underAttack(announceFlood)},
	{name: "flood_fair", clients: map[string]string{"valid": "verify", "flooder": "verify"}, run: underAttack(forgedFlood)},
	{name: "verify_hot_valkey", valkey: true, run: againstBadger},
	{name: "verify_cold_valkey", valkey: true, tokens: coldTokens, run: verifyCold},
	{name: "close_valkey", valkey: true, tokens: none, run: closeAgainstBadger},
	{name: "mixed_valkey", valkey: true, tokens: mixedTokens, run: mixed},
}

// errNoLoad ends a workload that measures no load: idle.
var errNoLoad = errors.New("no load")

func waitIdle(b *bench, j *job) (result, string, error) {
	select {
	case <-time.After(b.cfg.warmup):
	case <-j.ctx.Done():
		return result{}, "", j.ctx.Err()
	}
	b.rep.Idle = &idle{RSS: procMiB(j.srv.pid, "VmHWM"), CurRSS: procMiB(j.srv.pid, "VmRSS")}
	return result{}, "", errNoLoad
}

func mixedTokens(b *bench) int { return max(b.cfg.pool, 2*b.cfg.conns) }

func none(*bench) int { return 0 }

// coldTokens is enough tokens for the whole run of verify_cold at 1.2
// times the cold limit, each verified once.
func coldTokens(b *bench) int {
	expected := b.rep.Limits["ed25519_verifies_per_s"]
	if floor := b.rep.Workloads["http_floor"]; floor != nil && expected > 0 {
		expected = harmonic(floor.RPS, expected)
	}
	return min(int(math.Ceil(max(expected, 50_000)*(b.cfg.warmup+b.cfg.duration).Seconds()*1.2))+b.cfg.conns, 2_000_000)
}

func cycle(b *bench, j *job) (result, string, error) {
	return b.load(j.srv, cycleLoad(b, j)), "", nil
}

// againstPlain is verify_hot of j's tokens (with a subject) against
// verify_hot of as many tokens without one on the same server, in slots
// of slotLength taken in turn over twice --duration (newSlotSources); the
// latter is the result's baseline. Two runs of one binary taken minutes,
// even seconds apart on this shared host differ by up to 40%; slots a
// tenth of a second apart see the same machine.
func againstPlain(b *bench, j *job) (result, string, error) {
	plain, err := issueTokens(j.iss, len(j.toks), false)
	if err != nil {
		return result{}, "", err
	}
	r, slots := b.inSlots(j.srv, nil, [2][]source{newCycleSources(j.toks, b.cfg.conns), newCycleSources(plain, b.cfg.conns)})
	return r, fmt.Sprintf("in %d slots of %s, taken in turn with as many of tokens without a subject on the same server: those %.0f req/s; these %.1f%% of it; CPU of both together",
		slots, slotLength, r.Baseline, 100*ratio(r.rps(), r.Baseline)), nil
}

// inSlots runs newSlotSources's load on srv, and on twin when not nil
// (srcs[1] at its address), over --warmup and twice --duration, in slots
// from the start, and returns the figures of the even slots after the
// warm-up, with the rate of the odd ones as the baseline, and how many
// slots each had. The latencies are the even slots'; errors those of both.
// The CPU figures are srv's over its own slots: with a twin (busy in the
// other slots) twice its share of the window, and the twin's CPU is taken
// out of other_cpu.
func (b *bench) inSlots(srv, twin *server, srcs [2][]source) (r result, slots int) {
	var addrs [2]string
	if twin != nil {
		addrs[1] = twin.addr
	}
	from := (int(b.cfg.warmup/slotLength) + 1) &^ 1 // even: a pair begins there
	start, twinCPU := time.Now(), procCPU(twin.pidOr0())
	all, counts := newSlotSources(srcs, addrs, start, from)
	r = runLoad(srv.addr, all, time.Duration(from)*slotLength, 2*b.cfg.duration, srv.pid, b.loadCPUs())
	window := 2 * b.cfg.duration
	if r.exhausted { // a list of tokens ran out: the window ended there
		window = r.elapsed
	}
	slots = int(window / slotLength / 2)
	var n [2]uint64
	for i := range 2 * slots {
		n[i%2] += counts[from+i].Load()
	}
	r.lat = r.lat[:0]
	for _, src := range all {
		r.lat = append(r.lat, src.(*slotSource).lat...)
	}
	if twin != nil {
		twinBusy := (procCPU(twin.pid) - twinCPU) / time.Since(start).Seconds()
		r.OtherCPU = max(0, r.OtherCPU-twinBusy)
		r.ServerCPU *= 2
	}
	r.Requests, r.elapsed = n[0], time.Duration(slots)*slotLength
	r.Baseline = float64(n[1]) / r.elapsed.Seconds()
	r.BaselinePerCPU = ratio(r.Baseline, r.ServerCPU)
	return r, slots
}

// againstBadger is verify_hot of j's server (its list on Valkey, or a
// million revocations in its Badger) against verify_hot of the same tokens
// on a twin server of the same keys with an empty list in Badger, started
// now (startTwin), in slots taken in turn (inSlots); the latter is the
// result's baseline.
func againstBadger(b *bench, j *job) (result, string, error) {
	badger, err := b.startTwin(j)
	if err != nil {
		return result{}, "", err
	}
	defer badger.kill()
	r, slots := b.inSlots(j.srv, badger, [2][]source{newCycleSources(j.toks, b.cfg.conns), newCycleSources(j.toks, b.cfg.conns)})
	if err := badger.alive(); err != nil {
		return result{}, "", err
	}
	return r, fmt.Sprintf("in %d slots of %s, taken in turn with as many of the same tokens on a twin server (the same keys, an empty list in Badger): that one %.0f req/s; this %.1f%% of it",
		slots, slotLength, r.Baseline, 100*ratio(r.rps(), r.Baseline)), badger.stop()
}

// startTwin starts a server with j's keys (a copy of its key file) and its
// list in Badger, on a data directory of its own.
func (b *bench) startTwin(j *job) (*server, error) {
	dir := j.dir + "_badger"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keyFile, err := os.ReadFile(filepath.Join(j.dir, "keys.json"))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "keys.json"), keyFile, 0o600)
	}
	if err != nil {
		return nil, err
	}
	return b.startSessiond(j.ctx, j.name+"_badger", dir)
}

// The loads of againstFloor: verify_hot's, verify_cold's (each token once)
// and open's.
func cycleLoad(b *bench, j *job) []source { return newCycleSources(j.toks, b.cfg.conns) }
func coldLoad(b *bench, j *job) []source {
	return newListSources(len(j.toks), b.cfg.conns, listed(j.toks, verifyBody), expectActive)
}
func openLoad(b *bench, _ *job) []source {
	return repeat(b.cfg.conns, func(int) source { return openSource })
}

// againstFloor measures load on j's server in slots taken in turn
// (inSlots) with http_floor's load on a floor server of its own (this
// binary's serve-floor http), started now. The result's baseline is the
// floor's rate, or with a limit (ed25519_verifies_per_s,
// ed25519_signs_per_s) cold_limit or open_limit computed from it: the rate
// of a floor request plus one Ed25519 operation. Measured minutes apart,
// sessiond and the floor each move by up to 40% on this shared host; a
// tenth of a second apart they see the same machine.
func againstFloor(load func(b *bench, j *job) []source, limit string) func(b *bench, j *job) (result, string, error) {
	return func(b *bench, j *job) (result, string, error) {
		floor, err := b.startFloor(j)
		if err != nil {
			return result{}, "", err
		}
		defer floor.kill()
		r, slots := b.inSlots(j.srv, floor, [2][]source{load(b, j), newCycleSources([]string{"floor.ignores.it"}, b.cfg.conns)})
		// The other server's leftover work (its GC, its backlog at a switch:
		// a cold verify's slot ends with 64 of them queued) runs in the
		// floor's slots and slows it, which would flatter the ratio: the
		// floor is the higher of the paired one and http_floor's own run.
		paired := r.Baseline
		floorRate, own := b.higherFloor(paired)
		r.Baseline = floorRate
		note := fmt.Sprintf("in %d slots of %s, taken in turn with as many of http_floor's load on a floor server of its own: that one %.0f req/s (http_floor's own run: %.0f; the floor is the higher); this %.1f%% of the floor", slots, slotLength, paired, own, 100*ratio(r.rps(), floorRate))
		if limit != "" {
			r.Baseline, r.BaselinePerCPU = 0, 0
			if l := b.rep.Limits[limit]; l > 0 {
				r.Baseline = harmonic(floorRate, l)
				note += fmt.Sprintf("; the baseline is that floor's rate with one %s (%.0f/s): %.0f/s", strings.TrimSuffix(limit, "_per_s"), l, r.Baseline)
			} else {
				note += "; no baseline: the limits were not measured (--only without limits)"
			}
		}
		if r.exhausted {
			b.note("%s: the %d tokens ran out after %.1fs; measured over that", j.name, len(j.toks), r.elapsed.Seconds())
		}
		return r, note, floor.stop()
	}
}

// startFloor starts a floor server of j's own: this binary's serve-floor
// http, on the servers' CPU.
func (b *bench) startFloor(j *job) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return b.start(j.ctx, j.name+"_floor", self, "serve-floor", "http")
}

// higherFloor returns the higher of a paired floor's rate and
// http_floor's own run (own, 0 when it did not run): the other server's
// leftover work runs in the paired floor's time and slows it, which would
// flatter a ratio over it.
func (b *bench) higherFloor(paired float64) (floor, own float64) {
	if w := b.rep.Workloads["http_floor"]; w != nil {
		own = w.RPS
	}
	return max(paired, own), own
}

func mixed(b *bench, j *job) (result, string, error) {
	return b.load(j.srv, newMixedSources(j.toks, b.cfg.conns)),
		"in every 20 requests of a connection: 18 verify, 1 open, 1 close of its oldest session, which the last open's token replaces", nil
}

func verifyCold(b *bench, j *job) (result, string, error) {
	r := b.load(j.srv, coldLoad(b, j))
	if r.exhausted {
		b.note("%s: the %d tokens ran out after %.1fs of the %s window; measured over that", j.name, len(j.toks), r.elapsed.Seconds(), b.cfg.duration)
	}
	return r, fmt.Sprintf("%d tokens issued, %d used", len(j.toks), min(len(j.toks), int(r.Requests))), nil
}

func (b *bench) benchmark(ctx context.Context) error {
	if b.cfg.want("limits") {
		if err := b.measureLimits(ctx); err != nil {
			return fmt.Errorf("limits: %w", err)
		}
	}
	for _, w := range workloads {
		if !b.cfg.want(w.name) {
			continue
		} else if err := ctx.Err(); err != nil {
			return err
		}
		r, err := b.runWorkload(ctx, w)
		if err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		} else if r == nil {
			continue
		}
		b.rep.add(w.name, r)
		b.progress("%-13s %7.0f req/s (%.0f per server CPU-second)  p50 %.3f ms  p99 %.3f ms  peak RSS %.1f MiB  errors %d  CPU: server %.2f, client %.2f, other %.2f",
			w.name, r.RPS, r.RPSPerCPU, r.P50, r.P99, r.RSS, r.Errors, r.ServerCPU, r.ClientCPU, r.OtherCPU)
		if r.OtherCPU > 0.1 {
			b.note("%s: other processes took %.2f of the two CPUs' time during the window: its figures are noisy", w.name, r.OtherCPU)
		}
		if r.ClientCPU > 0.9 && r.ServerCPU > 0 && r.ServerCPU < 0.9 {
			b.note("%s: the load generator's CPU was %.0f%% busy and the server's only %.0f%%: the generator may be the bottleneck", w.name, 100*r.ClientCPU, 100*r.ServerCPU)
		}
	}
	b.rep.checkErrors("")
	b.rep.deriveLimits()
	b.rep.checkTargets()
	return nil
}

// runWorkload prepares w's data directory (key file, tokens), starts its
// server (and Valkey), fills its store, loads it and returns its figures
// once the server stopped cleanly; nil when it cannot run here.
func (b *bench) runWorkload(ctx context.Context, w workload) (*result, error) {
	cfg, dir := b.cfg, filepath.Join(b.tmp, w.name)
	j := &job{name: w.name, dir: dir, ctx: ctx}
	n := cfg.pool
	if w.tokens != nil {
		n = w.tokens(b)
	}
	if n > cfg.pool {
		b.progress("%s: issuing %d tokens (all CPUs)", w.name, n)
	}
	var flags []string
	var vk *server
	if w.valkey {
		var err error
		if vk, err = b.startValkey(ctx, w.name); vk == nil || err != nil {
			return nil, err
		}
		defer vk.kill()
		flags = []string{"--revocation-store", "redis://" + vk.addr}
	}
	err := b.onAllCPUs(func() (err error) {
		if j.iss, _, err = newIssuer(dir); err == nil {
			j.toks, err = issueTokens(j.iss, n, w.subjects)
		}
		return err
	})
	if err == nil && len(w.clients) > 0 {
		j.secrets, err = b.addClients(ctx, dir, w.clients)
	}
	if self := ""; err == nil && w.floor != "" {
		if self, err = os.Executable(); err == nil {
			j.srv, err = b.start(ctx, w.name, self, "serve-floor", w.floor)
		}
	} else if err == nil {
		j.srv, err = b.startSessiond(ctx, w.name, dir, flags...)
	}
	if w.valkey && err != nil && strings.Contains(err.Error(), "exited before serving") { // a sessiond without the Valkey store, say
		b.note("%s: skipped: sessiond did not start with %s: %s", w.name, strings.Join(flags, " "), strings.Join(strings.Fields(err.Error()), " "))
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer j.srv.kill()
	r, note, more := result{}, "", ""
	if w.fill > 0 {
		note, err = b.fill(j, cfg.preload/w.fill, 1_000_000/w.fill, w.subjects)
	}
	if start := time.Now(); err == nil {
		r, more, err = w.run(b, j)
		if vk != nil {
			more += fmt.Sprintf("; %s, pinned with the server, used %.2f of a CPU over the workload, warm-up included (other_cpu counts it)", filepath.Base(vk.cmd.Path), procCPU(vk.pid)/time.Since(start).Seconds())
		}
	}
	if errors.Is(err, errNoLoad) {
		return nil, j.srv.stop()
	} else if err == nil {
		err = j.srv.alive()
	}
	if err == nil && errors.Is(r.firstErr, errServerGone) {
		err = r.firstErr
	}
	if err != nil {
		return nil, err
	}
	return r.finish(procMiB(j.srv.pid, "VmHWM"), strings.Trim(note+"; "+more, "; ")), j.srv.stop()
}

// addClients adds clients (name → permissions) to dataDir's clients file
// with sessiond clients add NAME --allow PERMISSIONS, through the binary
// under test, and returns their secrets (its stdout) by name.
func (b *bench) addClients(ctx context.Context, dataDir string, clients map[string]string) (map[string]string, error) {
	if err := b.buildSessiond(ctx); err != nil {
		return nil, err
	}
	secrets := map[string]string{}
	for name, allow := range clients {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, b.sessiond, "clients", "add", name, "--allow", allow, "--data-dir", dataDir)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("sessiond clients add %s: %w\n%s", name, err, &stderr)
		}
		if secrets[name] = strings.TrimSpace(stdout.String()); secrets[name] == "" || strings.ContainsAny(secrets[name], " \r\n") {
			return nil, fmt.Errorf("sessiond clients add %s printed %d bytes on stdout, want one secret", name, stdout.Len())
		}
	}
	return secrets, nil
}

// fillConns is how many connections fill a store through the API.
const fillConns = 256

// fill writes n revocations into j's store through the API while the
// server runs, from fillConns connections: close_session of tokens issued
// as it goes (a million kept would take 300 MB), or with subjects
// close_all_sessions of random subjects (<uuid>@example.com). Then it
// fetches the revocation feed's snapshot once, so that the server's peak
// RSS counts the feed served, and waits for the server to settle.
func (b *bench) fill(j *job, n, full int, subjects bool) (string, error) {
	what := map[bool]string{false: "sessions closed with close_session", true: "subjects cut off with close_all_sessions"}[subjects]
	b.progress("%s: %d %s on %d connections", j.name, n, what, fillConns)
	body := func(buf []byte, _ int) ([]byte, error) {
		if subjects {
			return fmt.Appendf(buf, `{"jsonrpc":"2.0","method":"session.close_all_sessions","params":{"subject":"%s@example.com"},"id":1}`, uuid.New()), nil
		}
		tok, _, err := j.iss.Issue(tokenLifetime)
		return closeBody(buf, tok), err
	}
	start := time.Now()
	r := runLoad(j.srv.addr, newListSources(n, fillConns, body, expectTrue), 0, 24*time.Hour, 0, nil)
	took := time.Since(start)
	if r.Errors > 0 {
		return "", fmt.Errorf("fill the store: %d of %d requests failed, the first: %w", r.Errors, n, r.firstErr)
	}
	size, status, err := fetch(j.ctx, http.DefaultClient, "http://"+j.srv.addr+"/revocations")
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET /revocations: HTTP %d", status)
	}
	settled, ok := j.srv.settle(j.ctx, time.Minute)
	note := fmt.Sprintf("after %d %s while the server ran, from %d connections in %.1fs (%.0f/s), and the feed's snapshot served once (%.1f MB); the server then settled for %.1fs%s, its peak RSS %.1f MiB before the load began",
		n, what, fillConns, took.Seconds(), float64(n)/took.Seconds(), float64(size)/1e6, settled.Seconds(), map[bool]string{false: " (still busy)"}[ok], procMiB(j.srv.pid, "VmHWM"))
	if n != full {
		b.note("%s: %d %s, not %d (%s of --preload; --quick: 100000)", j.name, n, what, full, map[int]string{1: "all", 5: "a fifth", 10: "a tenth"}[1_000_000/full])
		note = fmt.Sprintf("NOT %d: %s", full, note)
	}
	return note, err
}

// startValkey starts valkey-server (or redis-server) on a free loopback
// port in its own directory, with its AOF fsynced before every reply
// (appendonly yes, appendfsync always), pinned with the server; nil (and a
// note) when neither is installed.
func (b *bench) startValkey(ctx context.Context, name string) (*server, error) {
	bin, err := exec.LookPath("valkey-server")
	if err != nil {
		if bin, err = exec.LookPath("redis-server"); err != nil {
			b.note("%s: skipped: neither valkey-server nor redis-server is installed (Debian: apt-get install valkey-server)", name)
			return nil, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr, dir := ln.Addr().String(), filepath.Join(b.tmp, name+"-valkey")
	ln.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	s, err := spawn(name+" "+filepath.Base(bin), dir+".log", []string{bin, "--bind", "127.0.0.1", "--port", port, "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", ""}, b.serverCPUs)
	if err != nil {
		return nil, err
	}
	s.addr = addr
	return s, s.waitReady(ctx, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		reply := make([]byte, 7)
		if err == nil {
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Second))
			if _, err = io.WriteString(c, "PING\r\n"); err == nil {
				_, err = io.ReadFull(c, reply)
			}
		}
		return err == nil && string(reply) == "+PONG\r\n"
	})
}

// closeChunk is a quarter of the verifier's cache.
const closeChunk, closePrimePasses = 4096, 4

// closeAgainstFloor measures close_session of tokens verified before, in
// rounds (the cache holds far fewer tokens than a run closes): issue
// closeChunk tokens, verify each closePrimePasses times unmeasured (each
// pass puts back what random eviction took: about 0.1% of closes miss the
// cache), close them all, until --warmup and then --duration of closing
// are done. Right after each measured round, http_floor's load runs as
// long on a floor server of its own; the floor's rate, or http_floor's own
// run when that is higher (see againstFloor), is the baseline. A round
// takes about a quarter of a second.
func closeAgainstFloor(b *bench, j *job) (result, string, error) {
	floor, err := b.startFloor(j)
	if err != nil {
		return result{}, "", err
	}
	defer floor.kill()
	var fr result
	r, note, err := b.closeIn(j, func(d time.Duration) {
		fr.add(runLoad(floor.addr, newCycleSources([]string{"floor.ignores.it"}, b.cfg.conns), 0, d, floor.pid, b.loadCPUs()))
	}, j.srv)
	if err != nil {
		return result{}, "", err
	}
	paired := fr.rps()
	floorRate, own := b.higherFloor(paired)
	r[0].addErrors(fr)
	r[0].Baseline = floorRate
	r[0].BaselinePerCPU = ratio(paired, fr.ServerCPU)
	return r[0], fmt.Sprintf("%s; after each round, as long of http_floor's load on a floor server of its own: that one %.0f req/s (http_floor's own run: %.0f; the floor is the higher); this %.1f%% of the floor",
		note, paired, own, 100*ratio(r[0].rps(), r[0].Baseline)), floor.stop()
}

// closeAgainstBadger is the rounds of closeAgainstFloor on j's server (its list on Valkey) and
// on a server of the same keys with its list in Badger (startTwin), each
// round's closes on both, one right after the other (ABBA over the rounds),
// so that the two are measured seconds apart on the same machine and disk;
// the latter is the result's baseline. Both servers run on the servers'
// CPU; the CPU figures are the Valkey one's.
func closeAgainstBadger(b *bench, j *job) (result, string, error) {
	badger, err := b.startTwin(j)
	if err != nil {
		return result{}, "", err
	}
	defer badger.kill()
	r, note, err := b.closeIn(j, nil, j.srv, badger)
	if err == nil {
		err = badger.alive()
	}
	if err != nil {
		return result{}, "", err
	}
	base := r[1]
	r[0].addErrors(base)
	r[0].Baseline, r[0].BaselinePerCPU, r[0].BaselineP99 = base.rps(), ratio(base.rps(), base.ServerCPU), base.lat.quantile(0.99)
	return r[0], fmt.Sprintf("%s, on this server and, in turn, on a server of the same keys with its list in Badger: that one %.0f req/s (CPU %.2f), p99 %.3f ms; this %.1f%% of it",
		note, r[0].Baseline, base.ServerCPU, r[0].BaselineP99, 100*ratio(r[0].rps(), r[0].Baseline)), badger.stop()
}

// closeIn runs the rounds of closeAgainstFloor on each of srvs, in turn
// (ABBA over the rounds), until --warmup and then --duration of closing
// are done on the first; it returns each server's figures. after, when
// not nil, runs after each measured round of the first server, given how
// long that round took.
func (b *bench) closeIn(j *job, after func(time.Duration), srvs ...*server) (total []result, note string, err error) {
	chunk := max(closeChunk, b.cfg.conns)
	total = make([]result, len(srvs))
	var warmed, primeTime time.Duration
	rounds := 0
	for total[0].elapsed < b.cfg.duration && err == nil {
		order := make([]int, len(srvs))
		for i := range order {
			order[i] = i
		}
		if rounds%2 == 1 {
			slices.Reverse(order)
		}
		toks := make([][]string, len(srvs))
		for _, k := range order {
			if err = j.ctx.Err(); err == nil {
				toks[k], err = issueTokens(j.iss, chunk, false)
			}
			if err != nil {
				return total, "", err
			}
			primeStart := time.Now()
			for range closePrimePasses {
				total[k].addErrors(runLoad(srvs[k].addr, newListSources(len(toks[k]), b.cfg.conns, listed(toks[k], verifyBody), expectActive), 0, time.Hour, 0, nil))
			}
			primeTime += time.Since(primeStart)
		}
		measured := warmed >= b.cfg.warmup
		for _, k := range order {
			r := runLoad(srvs[k].addr, newListSources(len(toks[k]), b.cfg.conns, listed(toks[k], closeBody), expectTrue), 0, time.Hour, srvs[k].pid, b.loadCPUs())
			if k == 0 && !measured {
				warmed += r.elapsed
			}
			if measured {
				total[k].add(r)
				if k == 0 && after != nil {
					after(r.elapsed)
				}
			} else {
				total[k].addErrors(r)
			}
			if errors.Is(r.firstErr, errServerGone) {
				return total, "", r.firstErr
			}
		}
		if measured {
			rounds++
		}
	}
	return total, fmt.Sprintf("%d measured rounds of %d tokens, each verified %d times before the round (%.1fs of verifying in all, not measured)",
		rounds, chunk, closePrimePasses, primeTime.Seconds()), err
}

// attack runs against j's server until ctx ends, then says what it did;
// its requests that failed count among the workload's errors, and its rps
// (when it measures one) is the report's attack_rps.
type attack func(ctx context.Context, b *bench, j *job) (summary string, r result)

// underAttack measures verify_hot alone, then while a runs, on one server;
// the verify_hot is the client "valid"'s when the workload has clients.
func underAttack(a attack) func(b *bench, j *job) (result, string, error) {
	return func(b *bench, j *job) (result, string, error) {
		b.progress("%s: baseline, verify_hot alone", j.name)
		base := b.load(j.srv, withAuth(j.secrets["valid"], newCycleSources(j.toks, b.cfg.conns)))
		baseRSS := procMiB(j.srv.pid, "VmRSS")
		if base.OtherCPU > 0.1 {
			b.note("%s: other processes took %.2f of the two CPUs' time during the baseline: the ratios are noisy", j.name, base.OtherCPU)
		}
		actx, stop := context.WithCancel(j.ctx)
		b.progress("%s: verify_hot under attack", j.name)
		type outcome struct {
			summary string
			r       result
		}
		done := make(chan outcome, 1)
		go func() { s, r := a(actx, b, j); done <- outcome{s, r} }()
		r := b.load(j.srv, withAuth(j.secrets["valid"], newCycleSources(j.toks, b.cfg.conns)))
		stop()
		att := <-done
		r.addErrors(base)
		r.addErrors(att.r)
		r.Baseline, r.BaselinePerCPU, r.BaselineP99, r.AttackRPS = base.rps(), ratio(base.rps(), base.ServerCPU), base.lat.quantile(0.99), att.r.rps()
		return r, fmt.Sprintf("verify_hot alone on the same server %.0f req/s, p99 %.3f ms (RSS %.1f MiB; CPU: server %.2f, client %.2f, other %.2f), under attack %.0f req/s, p99 %.3f ms: %.0f%% of it, p99 ×%.2f; the attack: %s",
			r.Baseline, r.BaselineP99, baseRSS, base.ServerCPU, base.ClientCPU, base.OtherCPU, r.rps(), r.lat.quantile(0.99), 100*ratio(r.rps(), r.Baseline), ratio(r.lat.quantile(0.99), r.BaselineP99), att.summary), nil
	}
}

// forgedFlood is flood_fair's attack: the client "flooder" verifying the
// soak's forged tokens (the server's header, a random canonical signature:
// a full Ed25519 check each, none ever cached) on --flood-conns
// connections, in turn from a pool of floodPoolSize. Each reply must be
// {"active":false} or -32005 (its budget of failed checks spent); anything
// else is an error.
func forgedFlood(ctx context.Context, b *bench, j *job) (string, result) {
	pool, err := floodTokens(j.toks[0], floodPoolSize*8/7+8)
	if err != nil {
		return err.Error(), result{Errors: 1, firstErr: err}
	}
	pool = slices.DeleteFunc(pool, func(t floodToken) bool { return !t.forged })
	srcs, inactive, refused := floodSources(ctx, pool, b.cfg.floodConns)
	r := runLoad(j.srv.addr, withAuth(j.secrets["flooder"], srcs), 0, 24*time.Hour, 0, nil)
	return fmt.Sprintf("client flooder, %d connections verifying forged tokens (%d different): %d replies (%.0f/s), %d {\"active\":false}, %d refused with -32005, %d other (errors)",
		b.cfg.floodConns, len(pool), r.Requests, r.rps(), inactive.Load(), refused.Load(), r.Errors), r
}

// floodSources are conns connections verifying pool's tokens in turn,
// until ctx ends; they count the replies {"active":false} and the -32005
// refusals (checkFlood: any other reply fails).
func floodSources(ctx context.Context, pool []floodToken, conns int) (srcs []source, inactive, refused *atomic.Uint64) {
	inactive, refused = new(atomic.Uint64), new(atomic.Uint64)
	return repeat(conns, func(c int) source {
		i := c * len(pool) / conns
		return funcSource{func(buf []byte) ([]byte, bool) {
			i = (i + 1) % len(pool)
			return verifyBody(buf, pool[i].tok), ctx.Err() == nil
		}, func(reply []byte) error {
			was, err := checkFlood(reply)
			if err == nil {
				map[bool]*atomic.Uint64{false: inactive, true: refused}[was].Add(1)
			}
			return err
		}}
	}), inactive, refused
}

// feedAbuse is feed_abuse's attack: 4 connections fetching
// GET /revocations?since=1 (a snapshot each time, or 429) in a loop.
func feedAbuse(ctx context.Context, _ *bench, j *job) (string, result) {
	addr := j.srv.addr
	const conns = 4
	var ok, limited, other, bytes atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			for ctx.Err() == nil {
				n, status, err := fetch(ctx, hc, "http://"+addr+"/revocations?since=1")
				bytes.Add(n)
				switch {
				case err != nil && ctx.Err() == nil:
					other.Add(1)
					time.Sleep(10 * time.Millisecond)
				case err == nil:
					cmp.Or(map[int]*atomic.Int64{http.StatusOK: &ok, http.StatusTooManyRequests: &limited}[status], &other).Add(1)
				}
			}
		})
	}
	wg.Wait()
	return fmt.Sprintf("%d connections fetching ?since=1: %d snapshots, %d answered 429, %d other, %.1f MB received",
		conns, ok.Load(), limited.Load(), other.Load(), float64(bytes.Load())/1e6), result{}
}

// fetch GETs url and returns the size of the body and the status (0 on error).
func fetch(ctx context.Context, hc *http.Client, url string) (int64, int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return n, resp.StatusCode, err
}

// announceFlood is announce_flood's attack: 900 connections that each
// announce a 1 MiB body, send 100-odd bytes of it and then nothing.
func announceFlood(ctx context.Context, _ *bench, j *job) (string, result) {
	addr := j.srv.addr
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
	return fmt.Sprintf("%d connections announcing 1 MiB and sending %d bytes (%d failed to connect or send)", conns, len(body), failed), result{}
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

// benchLine is a line of go test -bench: name, count, values and units.
var benchLine = regexp.MustCompile(`(?m)^Benchmark(\w+)(?:-\d+)?\s+\d+((?:\s+[\d.]+ \S+)+)$`)

// limits names the report's limits: [name, benchmark, what of it].
var limits = [][3]string{
	{"ed25519_signs_per_s", "Ed25519Sign", "per_s"}, {"ed25519_verifies_per_s", "Ed25519Verify", "per_s"},
	{"ed25519_signs_per_s_all_cpus", "Ed25519SignParallel", "per_s"}, {"ed25519_verifies_per_s_all_cpus", "Ed25519VerifyParallel", "per_s"},
	{"badger_durable_writes_per_s", "BadgerRevoke", "per_s"}, {"ed25519_verify_ns", "Ed25519Verify", "ns"},
	{"token_verify_ns", "TokenVerify", "ns"}, {"token_verify_repeated_ns", "TokenVerifyRepeated", "ns"},
	{"token_verify_repeated_allocs", "TokenVerifyRepeated", "allocs"}, {"token_issue_ns", "TokenIssue", "ns"}, {"token_issue_allocs", "TokenIssue", "allocs"},
}

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
	for _, l := range limits {
		if _, ok := ns[l[1]]; !ok {
			return fmt.Errorf("no result for Benchmark%s in:\n%s", l[1], &out)
		}
		b.rep.Limits[l[0]] = map[string]float64{"per_s": 1e9 / ns[l[1]], "ns": ns[l[1]], "allocs": allocs[l[1]]}[l[2]]
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
