package main

// This file is the benchmark's schedule: a fresh server per workload (so
// that its peak RSS is its own) on an empty data directory, the tokens it
// verifies issued in-process beforehand with the data directory's key file
// (byte for byte what open_session returns, none verified yet), and one or
// two runs of the runner against it. The attacks of feed_abuse and
// announce_flood run alongside the second run.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
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
	cfg := b.cfg
	if cfg.want("limits") {
		if err := b.measureLimits(ctx); err != nil {
			return fmt.Errorf("limits: %w", err)
		}
	}
	if cfg.want("idle") {
		if err := b.runIdle(ctx); err != nil {
			return fmt.Errorf("idle: %w", err)
		}
	}
	for _, name := range workloadNames {
		if !cfg.want(name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := filepath.Join(b.tmp, name)
		var w *result
		var err error
		switch name {
		case "http_floor", "rpc_floor":
			w, err = b.runFloor(ctx, name)
		case "verify_hot":
			w, err = b.runVerifyHot(ctx, name, 0)
		case "verify_hot_1m":
			w, err = b.runVerifyHot(ctx, name, cfg.preload)
		case "verify_cold":
			w, err = b.runVerifyCold(ctx, dir)
		case "open":
			w, err = b.withSessiond(ctx, name, dir, func(srv *server) (loadResult, string, error) {
				return b.load(srv, repeat(cfg.conns, func(int) source { return openSource{} })), "", nil
			})
		case "close":
			w, err = b.runClose(ctx, dir)
		case "mixed":
			w, err = b.runMixed(ctx, dir)
		case "feed_abuse":
			w, err = b.runUnderAttack(ctx, name, cfg.feedPre, feedAbuse(4))
		case "announce_flood":
			w, err = b.runUnderAttack(ctx, name, 0, announceFlood(900))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
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
	b.rep.benchChecks(b)
	return nil
}

// withSessiond starts sessiond on dir, runs fn against it, and completes
// fn's result with the server's peak RSS once it has stopped cleanly.
func (b *bench) withSessiond(ctx context.Context, name, dir string, fn func(*server) (loadResult, string, error)) (*result, error) {
	srv, err := b.startSessiond(ctx, name, dir)
	if err != nil {
		return nil, err
	}
	return b.finish(srv, fn)
}

func (b *bench) finish(srv *server, fn func(*server) (loadResult, string, error)) (*result, error) {
	defer srv.kill()
	r, note, err := fn(srv)
	if err != nil {
		return nil, err
	}
	if err := srv.alive(); err != nil {
		return nil, err
	}
	w := newResult(&r, procMiB(srv.pid, "VmHWM"), note)
	if errors.Is(r.FirstErr, errServerGone) {
		return nil, r.FirstErr
	}
	return w, srv.stop()
}

func repeat(n int, f func(i int) source) []source {
	srcs := make([]source, n)
	for i := range srcs {
		srcs[i] = f(i)
	}
	return srcs
}

func (b *bench) runIdle(ctx context.Context) error {
	b.progress("idle: a fresh sessiond for %s", b.cfg.idleWait)
	srv, err := b.startSessiond(ctx, "idle", filepath.Join(b.tmp, "idle"))
	if err != nil {
		return err
	}
	defer srv.kill()
	select {
	case <-time.After(b.cfg.idleWait):
	case <-ctx.Done():
		return ctx.Err()
	}
	b.rep.Idle = &idle{RSS: procMiB(srv.pid, "VmHWM"), CurRSS: procMiB(srv.pid, "VmRSS")}
	return srv.stop()
}

// runFloor runs this binary's serve-floor (floorServer.go), pinned like
// sessiond, with verify_hot's requests.
func (b *bench) runFloor(ctx context.Context, name string) (*result, error) {
	pool, err := issuePool(filepath.Join(b.tmp, "floor-keys"), b.cfg.pool)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	kind := strings.TrimSuffix(name, "_floor")
	srv, err := b.start(ctx, name, addr, self, "serve-floor", "--kind", kind, "--listen", addr)
	if err != nil {
		return nil, err
	}
	return b.finish(srv, func(srv *server) (loadResult, string, error) {
		return b.load(srv, newCycleSources(pool, b.cfg.conns)), "", nil
	})
}

// runVerifyHot is verify_hot, and with preload > 0 verify_hot_1m.
func (b *bench) runVerifyHot(ctx context.Context, name string, preload int) (*result, error) {
	dir := filepath.Join(b.tmp, name)
	pool, err := issuePool(dir, b.cfg.pool)
	if err != nil {
		return nil, err
	}
	note, err := b.preload(ctx, name, dir, preload)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	srv, err := b.startSessiond(ctx, name, dir)
	if err != nil {
		return nil, err
	}
	if preload > 0 {
		note += fmt.Sprintf("; the server took %.1fs to start and settle, and its peak RSS was %.1f MiB before the load began",
			time.Since(start).Seconds(), procMiB(srv.pid, "VmHWM"))
	}
	return b.finish(srv, func(srv *server) (loadResult, string, error) {
		return b.load(srv, newCycleSources(pool, b.cfg.conns)), note, nil
	})
}

// preload writes n revocations into dir's store, on all CPUs, and says so.
func (b *bench) preload(ctx context.Context, name, dir string, n int) (string, error) {
	if n == 0 {
		return "", nil
	}
	b.progress("%s: writing %d revocations into a fresh store (all CPUs)", name, n)
	start := time.Now()
	if err := b.onAllCPUs(func() error { return preloadRevocations(ctx, filepath.Join(dir, "revocations"), n) }); err != nil {
		return "", fmt.Errorf("preload: %w", err)
	}
	took := time.Since(start).Seconds()
	note := fmt.Sprintf("after %d revocations written with revocation.Badger.Revoke from 2048 goroutines on all CPUs in %.1fs (%.0f/s)", n, took, float64(n)/took)
	if name == "verify_hot_1m" && n != 1_000_000 {
		note = "NOT one million: " + note
	}
	return note, nil
}

// runVerifyCold issues enough tokens for the whole run at 1.2 times the
// expected rate (the cold limit), so that every request verifies a token
// the server has not seen.
func (b *bench) runVerifyCold(ctx context.Context, dir string) (*result, error) {
	expected := cmp0(b.rep.coldLimit(), 50_000)
	n := min(int(math.Ceil(expected*(b.cfg.warmup+b.cfg.duration).Seconds()*1.2))+b.cfg.conns, 2_000_000)
	b.progress("verify_cold: issuing %d tokens (all CPUs)", n)
	var toks []string
	if err := b.onAllCPUs(func() (err error) { toks, err = issuePool(dir, n); return err }); err != nil {
		return nil, err
	}
	return b.withSessiond(ctx, "verify_cold", dir, func(srv *server) (loadResult, string, error) {
		r := b.load(srv, newListSources(toks, b.cfg.conns, verifyBody, expectActive))
		note := fmt.Sprintf("%d tokens issued, %d used", n, min(n, int(r.Requests)))
		if r.Exhausted {
			note = fmt.Sprintf("the %d tokens ran out after %.1fs of the %s window; measured over that", n, r.Elapsed.Seconds(), b.cfg.duration)
			b.note("verify_cold: %s", note)
		}
		return r, note, nil
	})
}

func (b *bench) runMixed(ctx context.Context, dir string) (*result, error) {
	pool, err := issuePool(dir, max(b.cfg.pool, 2*b.cfg.conns))
	if err != nil {
		return nil, err
	}
	return b.withSessiond(ctx, "mixed", dir, func(srv *server) (loadResult, string, error) {
		return b.load(srv, newMixedSources(pool, b.cfg.conns)), "in every 20 requests of a connection: 18 verify, 1 open, 1 close of its oldest session, which the last open's token replaces", nil
	})
}

func cmp0(v, dflt float64) float64 {
	if v > 0 {
		return v
	}
	return dflt
}

// closePrimePasses is how many times each token of a close round is verified
// before the round.
const closePrimePasses = 4

// runClose measures close_session of tokens the server verified before. The
// verifier's cache holds far fewer tokens than a run closes, so the workload
// runs in rounds: issue --close-chunk tokens, verify each closePrimePasses
// times (unmeasured; each pass puts back into the cache what random eviction
// took, so that about 0.1% of a round's closes miss it), close them all
// (measured until the round's tokens run out), until --warmup and then
// --duration of closing are done.
func (b *bench) runClose(ctx context.Context, dir string) (*result, error) {
	iss, _, err := newIssuer(dir)
	if err != nil {
		return nil, err
	}
	b.progress("close: rounds of %d tokens, each verified %d times, then closed", b.cfg.closeChunk, closePrimePasses)
	return b.withSessiond(ctx, "close", dir, func(srv *server) (loadResult, string, error) {
		var total loadResult
		var warmed, primeTime time.Duration
		rounds := 0
		for total.Elapsed < b.cfg.duration && !errors.Is(total.FirstErr, errServerGone) {
			if err := ctx.Err(); err != nil {
				return total, "", err
			}
			toks, err := issueTokens(iss, b.cfg.closeChunk)
			if err != nil {
				return total, "", err
			}
			primeStart := time.Now()
			for range closePrimePasses {
				total.addErrors(runLoad(srv.addr, newListSources(toks, b.cfg.conns, verifyBody, expectActive), 0, time.Hour, 0, nil))
			}
			primeTime += time.Since(primeStart)
			r := runLoad(srv.addr, newListSources(toks, b.cfg.conns, closeBody, expectTrue), 0, time.Hour, srv.pid, b.loadCPUs())
			if warmed < b.cfg.warmup {
				warmed += r.Elapsed
				total.addErrors(r)
			} else {
				total.add(r)
				rounds++
			}
		}
		return total, fmt.Sprintf("%d measured rounds of %d tokens, each verified %d times before the round (%.1fs of verifying in all, not measured)",
			rounds, b.cfg.closeChunk, closePrimePasses, primeTime.Seconds()), nil
	})
}

// attack runs against addr until ctx ends and then returns a summary of
// what it did.
type attack func(ctx context.Context, addr string) (summary string)

// runUnderAttack measures verify_hot on a fresh server with preload
// revocations, alone and then under attack.
func (b *bench) runUnderAttack(ctx context.Context, name string, preload int, att attack) (*result, error) {
	dir := filepath.Join(b.tmp, name)
	pool, err := issuePool(dir, b.cfg.pool)
	if err != nil {
		return nil, err
	}
	if _, err := b.preload(ctx, name, dir, preload); err != nil {
		return nil, err
	}
	var base loadResult
	var baseRSS float64
	w, err := b.withSessiond(ctx, name, dir, func(srv *server) (loadResult, string, error) {
		b.progress("%s: baseline, verify_hot alone", name)
		base = b.load(srv, newCycleSources(pool, b.cfg.conns))
		baseRSS = procMiB(srv.pid, "VmRSS")
		b.progress("%s: verify_hot under attack", name)
		actx, stop := context.WithCancel(ctx)
		summary := make(chan string, 1)
		go func() { summary <- att(actx, srv.addr) }()
		under := b.load(srv, newCycleSources(pool, b.cfg.conns))
		stop()
		under.addErrors(base)
		return under, fmt.Sprintf("%d revocations; verify_hot alone on the same server %.0f req/s (RSS %.1f MiB), under attack %.0f req/s: %.0f%% of it; the attack: %s",
			preload, base.rps(), baseRSS, under.rps(), 100*ratio(under.rps(), base.rps()), <-summary), nil
	})
	if w != nil {
		w.baseline = base.rps()
	}
	return w, err
}

// feedAbuse is feed_abuse's attack: conns connections fetching
// GET /revocations?since=1 (a snapshot each time, or 429) in a loop,
// reading every body.
func feedAbuse(conns int) attack {
	return func(ctx context.Context, addr string) string {
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
					switch resp.StatusCode {
					case http.StatusOK:
						ok.Add(1)
					case http.StatusTooManyRequests:
						limited.Add(1)
					default:
						other.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return fmt.Sprintf("%d connections fetching ?since=1: %d snapshots, %d answered 429, %d other, %.1f MB received",
			conns, ok.Load(), limited.Load(), other.Load(), float64(bytes.Load())/1e6)
	}
}

// announceFlood is announce_flood's attack: conns connections that each
// announce a 1 MiB body, send 100-odd bytes of it and then nothing.
func announceFlood(conns int) attack {
	return func(ctx context.Context, addr string) string {
		head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, 1<<20)
		body := verifyPrefix + strings.Repeat("x", 30)
		failed, opened := 0, 0
		for range conns {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				failed++
				continue
			}
			defer c.Close()
			opened++
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, head+body); err != nil {
				failed++
			}
		}
		<-ctx.Done()
		return fmt.Sprintf("%d connections announcing 1 MiB and sending %d bytes (%d failed to connect or send)", opened, len(body), failed)
	}
}

// tokenLifetime is the lifetime of the tokens the benchmark issues itself:
// longer than any run.
const tokenLifetime = 24 * time.Hour

// newIssuer creates dataDir (mode 0700, as sessiond requires) with its key
// file under sessiond serve's default policy, and returns an issuer that
// signs with that file's key: its tokens are byte for byte what
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

// issuePool creates dir's key file and issues n tokens with it.
func issuePool(dir string, n int) ([]string, error) {
	iss, _, err := newIssuer(dir)
	if err != nil {
		return nil, err
	}
	return issueTokens(iss, n)
}

// issueTokens issues n tokens on GOMAXPROCS goroutines.
func issueTokens(iss *issue.Issuer, n int) ([]string, error) {
	toks := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += workers {
				toks[i], _, errs[w] = iss.Issue(tokenLifetime)
			}
		})
	}
	wg.Wait()
	return toks, errors.Join(errs...)
}

// randomID returns a random version 4 UUID from r (cheaper than uuid.New's
// crypto/rand, which would dominate a write benchmark).
func randomID(r *rand.ChaCha8) uuid.UUID {
	var id uuid.UUID
	binary.LittleEndian.PutUint64(id[:8], r.Uint64())
	binary.LittleEndian.PutUint64(id[8:], r.Uint64())
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

func newRand() *rand.ChaCha8 {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rand.Uint64())
	binary.LittleEndian.PutUint64(seed[8:], rand.Uint64())
	return rand.NewChaCha8(seed)
}

// preloadRevocations writes n random ids, revoked for tokenLifetime, into
// the Badger store in dir from enough goroutines to fill every group
// commit, and closes the store.
func preloadRevocations(ctx context.Context, dir string, n int) error {
	store, err := revocation.OpenBadger(dir, revocation.Options{})
	if err != nil {
		return err
	}
	until := time.Now().Add(tokenLifetime)
	var left atomic.Int64
	left.Store(int64(n))
	errs := make([]error, 2048)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			r := newRand()
			for left.Add(-1) >= 0 && errs[w] == nil {
				errs[w] = store.Revoke(ctx, randomID(r), until)
			}
		})
	}
	wg.Wait()
	return errors.Join(errors.Join(errs...), store.Close())
}
