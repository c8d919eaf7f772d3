package main

// This file holds the workloads that measure valid traffic under an attack
// on the HTTP edge (issue 9): verify_hot on one server, first alone (the
// baseline), then while the attack runs. The workload's figures are those
// under attack; the baseline and the ratio are in its note and the targets.
//
//   - feed_abuse: --feed-preload revocations (200,000) and 4 connections
//     that fetch GET /revocations?since=1, a snapshot each time, as fast as
//     the server answers (HTTP 200 or 429), reading every body.
//   - announce_flood: 900 connections that each announce a 1 MiB body
//     (Content-Length: 1048576), send 100 bytes of it and then nothing.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// attack runs against addr until ctx ends and then returns a summary of
// what it did.
type attack func(ctx context.Context, addr string) (summary string, err error)

// runUnderAttack measures verify_hot on a fresh server with preload
// revocations, alone and then under attack.
func (b *bench) runUnderAttack(ctx context.Context, name string, preload int, att attack) (workloadResult, error) {
	dir := filepath.Join(b.tmp, name)
	pool, err := b.issuePool(dir, b.cfg.pool)
	if err != nil {
		return workloadResult{}, err
	}
	if preload > 0 {
		b.progress("%s: writing %d revocations into a fresh store (all CPUs)", name, preload)
		err := b.onAllCPUs(func() error {
			_, err := preloadRevocations(ctx, filepath.Join(dir, "revocations"), preload)
			return err
		})
		if err != nil {
			return workloadResult{}, fmt.Errorf("preload: %w", err)
		}
	}
	srv, err := b.startSessiond(ctx, name, dir)
	if err != nil {
		return workloadResult{}, err
	}
	defer srv.kill()
	b.progress("%s: baseline, verify_hot alone", name)
	base := b.load(srv, newCycleSources(pool, b.cfg.conns))
	_, baseRSS, _ := procMemory(srv.pid)

	b.progress("%s: verify_hot under attack", name)
	actx, stop := context.WithCancel(ctx)
	var summary string
	var attackErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		summary, attackErr = att(actx, srv.addr)
	}()
	under := b.load(srv, newCycleSources(pool, b.cfg.conns))
	stop()
	<-done
	if attackErr != nil {
		return workloadResult{}, fmt.Errorf("attack: %w", attackErr)
	}
	w, err := b.finish(srv, workloadResult{loadResult: under, baselineRPS: base.rps()})
	w.note = fmt.Sprintf("%d revocations; verify_hot alone on the same server %.0f req/s (RSS %.1f MiB), under attack %.0f req/s: %.0f%% of it; peak RSS %.1f MiB; the attack: %s",
		preload, base.rps(), baseRSS, under.rps(), 100*ratioOrZero(under.rps(), base.rps()), w.rssMiB, summary)
	if base.Errors > 0 {
		w.Errors += base.Errors
		w.FirstErr = pickErr(w.FirstErr, base.FirstErr)
	}
	return w, err
}

// feedAbuse is feed_abuse's attack: conns connections fetching
// GET /revocations?since=1 in a loop.
func feedAbuse(conns int) attack {
	return func(ctx context.Context, addr string) (string, error) {
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
			conns, ok.Load(), limited.Load(), other.Load(), float64(bytes.Load())/1e6), nil
	}
}

// announceFlood is announce_flood's attack: conns connections announcing a
// 1 MiB body each and sending 100 bytes of it.
func announceFlood(conns int) attack {
	return func(ctx context.Context, addr string) (string, error) {
		head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, 1<<20)
		body := `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"` + strings.Repeat("x", 30)
		var open []net.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		failed := 0
		for range conns {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				failed++
				continue
			}
			open = append(open, c)
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, head+body); err != nil {
				failed++
			}
		}
		<-ctx.Done()
		return fmt.Sprintf("%d connections announcing 1 MiB and sending %d bytes (%d failed to connect or send)", len(open), len(body), failed), nil
	}
}
