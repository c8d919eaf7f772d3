package main

// This file is the workload runner: a minimal HTTP/1.1 client over one
// keep-alive connection per goroutine (no net/http client, no allocation per
// request on the common path, so that the server, not the load generator,
// runs out of CPU), the loop that drives the connections for a warm-up and a
// measured window, and the latency histogram. Every workload and every phase
// of the soak is a run of runLoad.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A source makes the requests of one connection: next appends the next
// JSON-RPC request body to buf (ok false when it has nothing left to send)
// and check validates the reply to the request next made last.
type source interface {
	next(buf []byte) (body []byte, ok bool)
	check(reply []byte) error
}

// errServerGone stops a run when a connection cannot be re-established.
var errServerGone = errors.New("cannot reconnect to the server")

// client is one keep-alive HTTP/1.1 connection.
type client struct {
	addr     string
	deadline time.Time
	nc       net.Conn
	br       *bufio.Reader
	req      []byte // the request being sent, reused
	body     []byte // the reply body, reused
	prefix   []byte // the request line and headers up to Content-Length's value
}

func newClient(addr string, deadline time.Time) *client {
	return &client{
		addr: addr, deadline: deadline,
		prefix: []byte("POST / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: "),
		req:    make([]byte, 0, 1024), body: make([]byte, 0, 1024),
	}
}

func (c *client) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// do sends one POST / with body and returns the reply's status and body,
// valid until the next call. After an error the connection is closed, and
// the next call dials again. One deadline covers the whole run (a timer
// operation per request would cost): a server that hangs fails the run.
func (c *client) do(body []byte) (status int, reply []byte, err error) {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, nil, err
		}
		if err := nc.SetDeadline(c.deadline); err != nil {
			nc.Close()
			return 0, nil, err
		}
		c.nc, c.br = nc, bufio.NewReaderSize(nc, 16<<10)
	}
	c.req = append(c.req[:0], c.prefix...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(append(c.req, "\r\n\r\n"...), body...)
	if _, err := c.nc.Write(c.req); err != nil {
		c.close()
		return 0, nil, err
	}
	status, reply, keep, err := c.readResponse()
	if err != nil || !keep {
		c.close()
	}
	return status, reply, err
}

// readResponse reads one HTTP/1.1 response with a Content-Length (sessiond
// and the floor servers always send one).
func (c *client) readResponse() (status int, body []byte, keep bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, fmt.Errorf("read status line: %w", err)
	}
	status, ok := 0, len(line) >= 12 && bytes.HasPrefix(line, []byte("HTTP/1.1 "))
	if ok {
		status, ok = atoi(line[9:12])
	}
	if !ok {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	length, keep := -1, true
	for {
		if line, err = c.br.ReadSlice('\n'); err != nil {
			return 0, nil, false, fmt.Errorf("read header: %w", err)
		}
		if len(line) <= 2 {
			break // the empty line ending the headers
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, ok = atoi(value); !ok {
				return 0, nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		return 0, nil, false, errors.New("reply without Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	body = c.body[:length]
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, nil, false, fmt.Errorf("read body: %w", err)
	}
	return status, body, keep, nil
}

// atoi parses a small non-negative decimal number without allocating.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// loadResult is what one run measured.
type loadResult struct {
	Requests uint64        // replies received in the measured window
	Errors   uint64        // failed requests over the whole run, warm-up included
	Elapsed  time.Duration // the measured window
	Hist     histogram     // latency of the requests counted in Requests
	// ServerCPU and ClientCPU are the CPU time the server process and this
	// process spent in the window, in cores; OtherCPU is what the rest of
	// the machine took of the CPUs the two run on: noise.
	ServerCPU, ClientCPU, OtherCPU float64
	Exhausted                      bool // a source ran out; the window ended there
	FirstErr                       error
}

func (r *loadResult) rps() float64 { return ratio(float64(r.Requests), r.Elapsed.Seconds()) }

// rpsPerCPU is the requests per CPU-second of the server: steadier than rps
// when other processes take some of the server's CPU.
func (r *loadResult) rpsPerCPU() float64 { return ratio(r.rps(), r.ServerCPU) }

// add accumulates o into r (for a workload measured in several windows).
func (r *loadResult) add(o loadResult) {
	cpu := func(a, b float64) float64 {
		return ratio(a*r.Elapsed.Seconds()+b*o.Elapsed.Seconds(), (r.Elapsed + o.Elapsed).Seconds())
	}
	r.ServerCPU, r.ClientCPU, r.OtherCPU = cpu(r.ServerCPU, o.ServerCPU), cpu(r.ClientCPU, o.ClientCPU), cpu(r.OtherCPU, o.OtherCPU)
	r.Requests += o.Requests
	r.Elapsed += o.Elapsed
	r.Hist.merge(&o.Hist)
	r.addErrors(o)
}

func (r *loadResult) addErrors(o loadResult) {
	r.Errors += o.Errors
	r.FirstErr = pickErr(r.FirstErr, o.FirstErr)
}

// runLoad drives one connection per source against addr: a warm-up, then a
// measured window, counting the replies that arrive in the window, which
// ends early when a source runs out. pid, when not 0, is the server process
// whose CPU time is sampled, and cpus the CPUs it and this process run on
// (nil: all).
func runLoad(addr string, sources []source, warmup, window time.Duration, pid int, cpus []int) loadResult {
	start := time.Now()
	t0 := start.Add(warmup)
	t1 := t0.Add(window)
	var (
		stop        atomic.Bool
		exhaustedAt atomic.Int64 // since start; 0 while not exhausted
		wg          sync.WaitGroup
	)
	results := make([]loadResult, len(sources))
	for i, src := range sources {
		wg.Go(func() {
			r := &results[i]
			c := newClient(addr, t1.Add(time.Minute))
			defer c.close()
			buf, redials := make([]byte, 0, 1024), 0
			for !stop.Load() {
				sent := time.Now()
				if !sent.Before(t1) {
					return
				}
				body, ok := src.next(buf[:0])
				if !ok {
					exhaustedAt.CompareAndSwap(0, int64(sent.Sub(start)))
					stop.Store(true)
					return
				}
				buf = body
				status, reply, err := c.do(body)
				done, ioErr := time.Now(), err != nil
				if err == nil && status != 200 {
					err = fmt.Errorf("HTTP %d: %.200s", status, reply)
				}
				if err == nil {
					err = src.check(reply)
				}
				if e := exhaustedAt.Load(); !done.Before(t0) && !done.After(t1) && (e == 0 || done.Sub(start) <= time.Duration(e)) {
					r.Requests++
					r.Hist.add(done.Sub(sent))
				}
				if err != nil {
					r.addErrors(loadResult{Errors: 1, FirstErr: err})
				}
				// A dropped connection is re-dialled, three times at most; a
				// server that refuses connections ends the run.
				if ioErr {
					if redials++; redials > 3 || errors.Is(err, syscall.ECONNREFUSED) {
						r.FirstErr = fmt.Errorf("%w: %w", errServerGone, err)
						stop.Store(true)
						return
					}
				}
			}
		})
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	wait := func(until time.Time) {
		select {
		case <-allDone:
		case <-time.After(time.Until(until)):
		}
	}
	wait(t0)
	srv0, cli0, all0, w0 := procCPU(pid), selfCPU(), cpuBusy(cpus), time.Now()
	wait(t1)
	srv1, cli1, all1, w1 := procCPU(pid), selfCPU(), cpuBusy(cpus), time.Now()
	<-allDone

	res := loadResult{Elapsed: window}
	if e := exhaustedAt.Load(); e != 0 {
		res.Exhausted, res.Elapsed = true, max(0, time.Duration(e)-warmup)
	}
	if span := w1.Sub(w0).Seconds(); span > 0 {
		res.ClientCPU = (cli1 - cli0) / span
		if pid != 0 {
			res.ServerCPU = (srv1 - srv0) / span
			if all0 > 0 && all1 > 0 {
				res.OtherCPU = max(0, (all1-all0)/span-res.ServerCPU-res.ClientCPU)
			}
		}
	}
	for i := range results {
		res.Requests += results[i].Requests
		res.Hist.merge(&results[i].Hist)
		res.addErrors(results[i])
	}
	return res
}

// pickErr returns the error worth reporting of a, the one kept so far, and
// b, a later one: the first, unless b says the server is gone.
func pickErr(a, b error) error {
	if a == nil || errors.Is(b, errServerGone) && !errors.Is(a, errServerGone) {
		return b
	}
	return a
}

// ratio returns a/b, or 0 when either is not positive.
func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}

// histogram counts latencies in log-linear buckets: one per nanosecond below
// 64 ns, then 32 per power of two, so that a quantile read from it (the
// middle of its bucket) is within 1.6% of the true value.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	histSub     = 32                  // buckets per power of two above 64 ns
	histBuckets = 64 + (64-6)*histSub // covers every int64
)

func histBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 64 {
		return int(v)
	}
	shift := bits.Len64(v) - 6 // ≥ 1, and v>>shift is in [32, 64)
	return 64 + (shift-1)*histSub + int(v>>shift) - histSub
}

// histMid returns the middle of bucket i, in nanoseconds.
func histMid(i int) float64 {
	if i < 64 {
		return float64(i)
	}
	shift := (i-64)/histSub + 1
	return (float64((i-64)%histSub+histSub) + 0.5) * math.Ldexp(1, shift)
}

func (h *histogram) add(d time.Duration) { h.counts[histBucket(d)]++; h.n++ }

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q ≤ 1) in milliseconds, or 0 for an
// empty histogram.
func (h *histogram) quantile(q float64) float64 {
	rank := min(max(uint64(math.Ceil(q*float64(h.n))), 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank && h.n > 0 {
			return histMid(i) / 1e6
		}
	}
	return 0
}
