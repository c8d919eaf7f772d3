package main

// This file is the load generator: a minimal HTTP/1.1 client over one
// keep-alive connection per goroutine, and the loop that drives them for a
// warm-up and a measured window. It is written to cost the load generator's
// core as little as possible per request (no net/http client, no allocation
// per request on the common path), so that the server, not the client, is
// what runs out of CPU.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A source makes the requests of one connection: next appends the next
// JSON-RPC request body to buf (ok false when the workload has nothing left
// to send) and check validates the reply body of the request next made last.
// Each connection has its own source; sources that share a token list share
// it through an atomic cursor.
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
		addr:     addr,
		deadline: deadline,
		prefix:   []byte("POST / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: "),
		req:      make([]byte, 0, 1024),
		body:     make([]byte, 0, 1024),
	}
}

func (c *client) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

func (c *client) dial() error {
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	// One deadline for the whole run instead of one per request (a timer
	// operation each): a server that hangs fails the run instead of hanging
	// the benchmark.
	if err := nc.SetDeadline(c.deadline); err != nil {
		nc.Close()
		return err
	}
	c.nc = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 16<<10)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

// do sends one POST / with body and returns the reply's status and body. The
// body is valid until the next call. After an error the connection is
// closed, and the next call dials again.
func (c *client) do(body []byte) (status int, reply []byte, err error) {
	if c.nc == nil {
		if err := c.dial(); err != nil {
			return 0, nil, err
		}
	}
	c.req = append(c.req[:0], c.prefix...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, body...)
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

// readResponse reads one HTTP/1.1 response: the status line, the headers
// (only Content-Length, Transfer-Encoding and Connection matter) and the
// body, by length or chunked.
func (c *client) readResponse() (status int, body []byte, keep bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, fmt.Errorf("read status line: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	status, ok := atoi(line[9:12])
	if !ok {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, keep := -1, false, true
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, fmt.Errorf("read header: %w", err)
		}
		if len(line) <= 2 {
			break // the empty line ending the headers
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, false, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, ok = atoi(value); !ok {
				return 0, nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		body, err = c.readChunked()
	case length >= 0:
		if cap(c.body) < length {
			c.body = make([]byte, length)
		}
		body = c.body[:length]
		_, err = io.ReadFull(c.br, body)
	default: // the body runs to the end of the connection
		body, err = io.ReadAll(c.br)
		keep = false
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("read body: %w", err)
	}
	return status, body, keep, nil
}

func (c *client) readChunked() ([]byte, error) {
	body := c.body[:0]
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		hex, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseUint(string(hex), 16, 31)
		if err != nil {
			return nil, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, up to the empty line
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return nil, err
				}
				if len(line) <= 2 {
					c.body = body
					return body, nil
				}
			}
		}
		start := len(body)
		body = append(body, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, body[start:]); err != nil {
			return nil, err
		}
		if _, err := c.br.Discard(2); err != nil { // CRLF
			return nil, err
		}
	}
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
	Hist     *histogram    // latency of the requests counted in Requests
	// ServerCPU and ClientCPU are the CPU time the server process and this
	// process spent in the window, in cores (1 = one core fully busy);
	// OtherCPU is what the rest of the machine (other processes, interrupts)
	// took of the CPUs the two run on, in cores: noise.
	ServerCPU, ClientCPU, OtherCPU float64
	// Exhausted is set when a source ran out before the window ended; the
	// window then ends there.
	Exhausted bool
	FirstErr  error
}

func (r *loadResult) rps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// rpsPerCPU is the requests per CPU-second of the server: what one core
// the server had to itself would serve, as long as CPU is what limits it.
// It holds still when other processes take some of the server's CPU.
func (r *loadResult) rpsPerCPU() float64 {
	if r.ServerCPU <= 0 {
		return 0
	}
	return r.rps() / r.ServerCPU
}

// add accumulates o into r (for workloads measured in several windows).
func (r *loadResult) add(o loadResult) {
	cpu := func(a float64, ad time.Duration, b float64, bd time.Duration) float64 {
		if ad+bd <= 0 {
			return 0
		}
		return (a*ad.Seconds() + b*bd.Seconds()) / (ad + bd).Seconds()
	}
	r.ServerCPU = cpu(r.ServerCPU, r.Elapsed, o.ServerCPU, o.Elapsed)
	r.ClientCPU = cpu(r.ClientCPU, r.Elapsed, o.ClientCPU, o.Elapsed)
	r.OtherCPU = cpu(r.OtherCPU, r.Elapsed, o.OtherCPU, o.Elapsed)
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Elapsed += o.Elapsed
	if r.Hist == nil {
		r.Hist = new(histogram)
	}
	if o.Hist != nil {
		r.Hist.merge(o.Hist)
	}
	r.Exhausted = r.Exhausted || o.Exhausted
	r.FirstErr = pickErr(r.FirstErr, o.FirstErr)
}

// runLoad drives one connection per source against addr: a warm-up, then a
// measured window of the given duration, counting the replies that arrive
// in the window. The window ends early when a source runs out. pid, when
// not 0, is the server process whose CPU time is sampled, and cpus the CPUs
// it and this process run on (nil: all).
func runLoad(addr string, sources []source, warmup, duration time.Duration, pid int, cpus []int) loadResult {
	start := time.Now()
	t0 := start.Add(warmup)
	t1 := t0.Add(duration)
	deadline := t1.Add(60 * time.Second)

	var (
		stop        atomic.Bool
		exhaustedAt atomic.Int64 // time since start, 0 while not exhausted
		wg          sync.WaitGroup
	)
	type connResult struct {
		n, errs  uint64
		hist     histogram
		firstErr error
	}
	results := make([]connResult, len(sources))
	for i, src := range sources {
		wg.Go(func() {
			r := &results[i]
			c := newClient(addr, deadline)
			defer c.close()
			buf := make([]byte, 0, 1024)
			redials := 0
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
				done := time.Now()
				ioErr := err != nil
				if err == nil && status != 200 {
					err = fmt.Errorf("HTTP %d: %.200s", status, reply)
				}
				if err == nil {
					err = src.check(reply)
				}
				if e := exhaustedAt.Load(); !done.Before(t0) && !done.After(t1) && (e == 0 || done.Sub(start) <= time.Duration(e)) {
					r.n++
					r.hist.add(done.Sub(sent))
				}
				if err != nil {
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
				}
				if ioErr {
					// A connection the server dropped is re-dialled (three
					// times a run at most); a server that refuses
					// connections ends the run.
					if redials++; redials > 3 || errors.Is(err, syscall.ECONNREFUSED) {
						r.firstErr = fmt.Errorf("%w: %w", errServerGone, err)
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
	srv0, cli0, all0 := procCPU(pid), selfCPU(), cpuBusy(cpus)
	w0 := time.Now()
	wait(t1)
	srv1, cli1, all1 := procCPU(pid), selfCPU(), cpuBusy(cpus)
	w1 := time.Now()
	<-allDone

	res := loadResult{Hist: new(histogram), Elapsed: duration}
	if e := exhaustedAt.Load(); e != 0 {
		res.Exhausted = true
		res.Elapsed = max(0, time.Duration(e)-warmup)
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
		r := &results[i]
		res.Requests += r.n
		res.Errors += r.errs
		res.Hist.merge(&r.hist)
		res.FirstErr = pickErr(res.FirstErr, r.firstErr)
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
