package main

// This file measures in-process what the server's figures are compared with:
// Ed25519 signatures per second, token verification against raw Ed25519, and
// Badger's durable write rate; and it prepares tokens and revocation lists
// for the workloads.

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/session"
	"github.com/sessiond/sessiond/token"
)

// tokenLifetime is the lifetime of the tokens the benchmark issues itself:
// longer than any run.
const tokenLifetime = 24 * time.Hour

// measureOp runs op repeatedly on this goroutine for about d of CPU time,
// the way testing.B does (growing the count until one run lasts d), and
// returns its cost in nanoseconds and heap allocations per call.
//
// The cost is this process's CPU time, not wall time: with GOMAXPROCS 1 the
// two are the same on an idle CPU, but when other processes share the CPU,
// CPU time still counts only what op itself took (garbage collection
// included), so the limits hold still on a busy machine.
func measureOp(d time.Duration, op func()) (nsPerOp, allocsPerOp float64) {
	op() // warm caches and lazy initialisation
	n := 1
	for {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		start := selfCPU()
		for range n {
			op()
		}
		spent := time.Duration((selfCPU() - start) * 1e9)
		runtime.ReadMemStats(&m1)
		if spent >= d || n >= 1e9 {
			return float64(spent.Nanoseconds()) / float64(n), float64(m1.Mallocs-m0.Mallocs) / float64(n)
		}
		next := int(float64(n) * 1.2 * float64(d) / float64(max(spent, time.Microsecond)))
		n = min(max(next, n+1), 100*n)
	}
}

// measureRate runs op in workers goroutines for warmup and then at least d,
// and returns the calls per second completed after the warm-up. On a busy
// machine it runs past d until every worker has completed a call in the
// window. op gets the worker's number; its first error stops the run and is
// returned.
func measureRate(workers int, warmup, d time.Duration, op func(worker int) error) (float64, error) {
	start := time.Now()
	t0, t1 := start.Add(warmup), start.Add(warmup+d)
	var (
		count, last atomic.Int64 // calls in the window; end of the last one, since t0
		failed      atomic.Bool
		errs        = make([]error, workers)
		wg          sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for !failed.Load() {
				if err := op(w); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
				now := time.Now()
				if now.Before(t0) {
					continue
				}
				count.Add(1)
				for {
					l := last.Load()
					if int64(now.Sub(t0)) <= l || last.CompareAndSwap(l, int64(now.Sub(t0))) {
						break
					}
				}
				if !now.Before(t1) {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(count.Load()) / time.Duration(last.Load()).Seconds(), nil
}

// keyPolicy is the policy sessiond serve applies by default; the benchmark's
// own keyrings use it for the key files they create before the server starts.
var keyPolicy = keys.Policy{MaxTokenLifetime: session.DefaultMaxExpiresIn, PropagationDelay: 5 * time.Minute}

// newIssuer creates dataDir (mode 0700, as sessiond requires) with its key
// file, and returns an issuer that signs with that file's key: its tokens
// are byte for byte what open_session of a server on dataDir returns.
func newIssuer(dataDir string) (*token.Issuer, *keys.Keyring, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, err
	}
	ring, err := keys.OpenKeyring(filepath.Join(dataDir, "keys.json"), keyPolicy, keys.KeyringOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("create signing key: %w", err)
	}
	return token.NewIssuer("", ring, nil), ring, nil
}

// issueTokens issues n tokens on GOMAXPROCS goroutines.
func issueTokens(iss *token.Issuer, n int) ([]string, error) {
	toks := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				tok, _, err := iss.Issue(tokenLifetime)
				if err != nil {
					errs[w] = err
					return
				}
				toks[i] = tok
			}
		})
	}
	wg.Wait()
	return toks, errors.Join(errs...)
}

// randomID returns a random version 4 UUID from r (cheaper than
// uuid.New's crypto/rand, which would dominate a write benchmark).
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
// the Badger store in dir with concurrent Revoke calls, enough of them to
// fill every group commit, and closes the store.
func preloadRevocations(ctx context.Context, dir string, n int) (time.Duration, error) {
	start := time.Now()
	store, err := revocation.OpenBadger(dir, revocation.Options{})
	if err != nil {
		return 0, err
	}
	until := time.Now().Add(tokenLifetime)
	var (
		left atomic.Int64
		wg   sync.WaitGroup
	)
	left.Store(int64(n))
	errs := make([]error, 2048)
	for w := range errs {
		wg.Go(func() {
			r := newRand()
			for left.Add(-1) >= 0 {
				if err := store.Revoke(ctx, randomID(r), until); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	err = errors.Join(errors.Join(errs...), store.Close())
	return time.Since(start), err
}

// limits are the in-process measurements.
type limits struct {
	// On the server's CPU, one goroutine (GOMAXPROCS 1, like the server),
	// per CPU-second (see measureOp).
	SignPerS, VerifyPerS float64 // raw Ed25519 over a real token's signing input
	TokenVerifyNs        float64 // token.Verifier.Verify, cache off, no revocation
	Ed25519VerifyNs      float64
	TokenRepeatedNs      float64 // Verify of a token verified before
	TokenRepeatedAllocs  float64
	TokenIssueNs         float64
	TokenIssueAllocs     float64
	BadgerWritesPerS     float64 // durable Revokes/s (wall time) from `conns` goroutines, GOMAXPROCS 1
	// On all CPUs, wall time.
	SignPerSAll, VerifyPerSAll float64
	CPUsAll                    int
}

// measureLimits measures the limits. It runs the single-core part pinned to
// serverCPUs and the rest on allCPUs, and leaves the process where it was
// (on clientCPUs). With pinning off it still sets GOMAXPROCS.
func (b *bench) measureLimits(ctx context.Context) (limits, error) {
	var l limits
	dir := filepath.Join(b.tmp, "limits")
	iss, ring, err := newIssuer(filepath.Join(dir, "data"))
	if err != nil {
		return l, err
	}
	tok, claims, err := iss.Issue(time.Hour)
	if err != nil {
		return l, err
	}
	// The raw operations work on what a token signs and carries.
	dot := strings.LastIndexByte(tok, '.')
	msg := []byte(tok[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil {
		return l, err
	}
	_, _, signer, err := ring.SigningKey()
	if err != nil {
		return l, err
	}
	if _, ok := signer.Public().(ed25519.PublicKey); !ok {
		return l, fmt.Errorf("the signing key is %T, not Ed25519", signer.Public())
	}
	_, pubKey, err := ring.VerificationKey(ctx, claims.KeyID)
	if err != nil {
		return l, err
	}
	pub := pubKey.(ed25519.PublicKey)
	if !ed25519.Verify(pub, msg, sig) {
		return l, errors.New("a fresh token's signature does not verify with raw Ed25519")
	}
	sign := func(int) error { _, err := signer.Sign(nil, msg, crypto.Hash(0)); return err }
	verify := func(int) error {
		if !ed25519.Verify(pub, msg, sig) {
			return errors.New("bad signature")
		}
		return nil
	}
	d := b.cfg.limitTime

	if err := b.place(b.serverCPUs, 1); err != nil {
		return l, err
	}
	defer b.place(b.clientCPUs, 1)
	b.progress("limits: Ed25519 and token on the server's CPU")
	signNs, _ := measureOp(d, func() { sign(0) })
	l.Ed25519VerifyNs, _ = measureOp(d, func() { verify(0) })
	l.SignPerS, l.VerifyPerS = 1e9/signNs, 1e9/l.Ed25519VerifyNs
	cold := token.NewVerifier(ring, token.WithCache(0))
	var verr error
	l.TokenVerifyNs, _ = measureOp(d, func() {
		if _, err := cold.Verify(ctx, tok); err != nil {
			verr = err
		}
	})
	warm := token.NewVerifier(ring)
	l.TokenRepeatedNs, l.TokenRepeatedAllocs = measureOp(d, func() {
		if _, err := warm.Verify(ctx, tok); err != nil {
			verr = err
		}
	})
	l.TokenIssueNs, l.TokenIssueAllocs = measureOp(d, func() {
		if _, _, err := iss.Issue(time.Hour); err != nil {
			verr = err
		}
	})
	if verr != nil {
		return l, verr
	}

	b.progress("limits: Badger durable writes, %d goroutines, on the server's CPU", b.cfg.conns)
	store, err := revocation.OpenBadger(filepath.Join(dir, "badger"), revocation.Options{})
	if err != nil {
		return l, err
	}
	rands := make([]*rand.ChaCha8, b.cfg.conns)
	for i := range rands {
		rands[i] = newRand()
	}
	until := time.Now().Add(tokenLifetime)
	l.BadgerWritesPerS, err = measureRate(b.cfg.conns, d/5, d, func(w int) error {
		return store.Revoke(ctx, randomID(rands[w]), until)
	})
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return l, err
	}

	b.progress("limits: Ed25519 on all %d CPUs", len(b.allCPUs))
	if err := b.place(b.allCPUs, len(b.allCPUs)); err != nil {
		return l, err
	}
	l.CPUsAll = len(b.allCPUs)
	if l.SignPerSAll, err = measureRate(len(b.allCPUs), d/5, d, sign); err != nil {
		return l, err
	}
	if l.VerifyPerSAll, err = measureRate(len(b.allCPUs), d/5, d, verify); err != nil {
		return l, err
	}
	return l, os.RemoveAll(dir)
}
