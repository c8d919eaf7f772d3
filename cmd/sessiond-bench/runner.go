//go:build linux

package main

// This file is the workload runner, which every workload and soak phase
// runs: a minimal HTTP/1.1 client, the loop that drives one connection per
// source, and the sources with the checks of their replies. The client is
// hand-written (no net/http, no allocation per request) because the load
// generator has one core, like the server: net/http's client costs more per
// request than the floor server does, and would become what is measured.

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A source makes one connection's requests: next appends the next body to
// buf (false: nothing left), check validates the reply to it.
type source interface {
	next(buf []byte) (body []byte, ok bool)
	check(reply []byte) error
}

// errServerGone stops a run when a connection cannot be re-established.
var errServerGone = errors.New("cannot reconnect to the server")

// client is one keep-alive HTTP/1.1 connection.
type client struct {
	addr      string
	auth      string // "Authorization: Bearer SECRET\r\n", or ""
	deadline  time.Time
	nc        net.Conn
	br        *bufio.Reader
	req, body []byte // the request being sent and the reply body, reused
}

func (c *client) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// do sends one POST / with body and returns the body of a 200 reply, valid
// until the next call. After an I/O error the connection is closed (c.nc
// nil) and the next call dials again. One deadline covers the whole run (a
// timer operation per request would cost): a server that hangs fails it.
func (c *client) do(body []byte) ([]byte, error) {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		c.nc, c.br = nc, bufio.NewReaderSize(nc, 16<<10)
		nc.SetDeadline(c.deadline)
	}
	c.req = append(append(append(c.req[:0], "POST / HTTP/1.1\r\nHost: "...), c.addr...), "\r\nContent-Type: application/json\r\n"...)
	c.req = append(append(c.req, c.auth...), "Content-Length: "...)
	c.req = append(append(strconv.AppendInt(c.req, int64(len(body)), 10), "\r\n\r\n"...), body...)
	_, err := c.nc.Write(c.req)
	status, keep := 0, false
	if err == nil {
		status, keep, err = c.readResponse()
	}
	if err != nil || !keep {
		c.close()
	}
	if err == nil && status != 200 {
		err = fmt.Errorf("HTTP %d: %.200s", status, c.body)
	}
	return c.body, err
}

// readResponse reads one HTTP/1.1 response with a Content-Length (sessiond
// and the floor servers always send one) into c.body.
func (c *client) readResponse() (status int, keep bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err == nil && (len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 "))) {
		err = fmt.Errorf("bad status line %q", line)
	} else if err == nil {
		status, err = strconv.Atoi(string(line[9:12]))
	}
	length, keep := -1, true
	for err == nil {
		if line, err = c.br.ReadSlice('\n'); err != nil || len(line) <= 2 {
			break // or the empty line ending the headers
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		if value = bytes.TrimSpace(value); bytes.EqualFold(name, []byte("Content-Length")) {
			length, err = strconv.Atoi(string(value))
		} else if bytes.EqualFold(name, []byte("Connection")) {
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	if err == nil && length < 0 {
		err = errors.New("no valid Content-Length")
	}
	if err != nil {
		return 0, false, fmt.Errorf("read reply: %w", err)
	}
	c.body = slices.Grow(c.body[:0], length)[:length]
	_, err = io.ReadFull(c.br, c.body)
	return status, keep, err
}

// lats are latencies, whose quantiles are exact.
type lats []time.Duration

// quantile sorts l and returns its q-quantile (0 < q ≤ 1) in ms, 0 for none.
func (l lats) quantile(q float64) float64 {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[min(max(int(math.Ceil(q*float64(len(l))))-1, 0), len(l)-1)].Seconds() * 1e3
}

func (r *result) rps() float64 { return ratio(float64(r.Requests), r.elapsed.Seconds()) }

// finish computes r's figures, with the server's RSS and a note.
func (r *result) finish(rss float64, note string) *result {
	r.RPS, r.P50, r.P99, r.RSS, r.Seconds = r.rps(), r.lat.quantile(0.5), r.lat.quantile(0.99), rss, r.elapsed.Seconds()
	r.RPSPerCPU, r.Note = ratio(r.RPS, r.ServerCPU), note
	return r
}

// add accumulates o into r (for a workload measured in several windows).
func (r *result) add(o result) {
	cpu := func(a, b float64) float64 {
		return ratio(a*r.elapsed.Seconds()+b*o.elapsed.Seconds(), (r.elapsed + o.elapsed).Seconds())
	}
	r.ServerCPU, r.ClientCPU, r.OtherCPU = cpu(r.ServerCPU, o.ServerCPU), cpu(r.ClientCPU, o.ClientCPU), cpu(r.OtherCPU, o.OtherCPU)
	r.Requests, r.elapsed, r.lat = r.Requests+o.Requests, r.elapsed+o.elapsed, append(r.lat, o.lat...)
	r.addErrors(o)
}

func (r *result) addErrors(o result) {
	r.Errors += o.Errors
	r.firstErr = pickErr(r.firstErr, o.firstErr)
}

// runLoad drives one connection per source against addr for warmup, then
// counts the replies of the measured window (cut short when a source runs
// out: then every connection stops after its reply). pid (if not 0) is the server whose CPU time it samples, cpus the
// CPUs the server and this process run on (nil: all).
func runLoad(addr string, sources []source, warmup, window time.Duration, pid int, cpus []int) result {
	start := time.Now()
	t0, t1 := start.Add(warmup), start.Add(warmup+window)
	var stop, exhausted atomic.Bool
	var wg sync.WaitGroup
	results := make([]result, len(sources))
	for i, src := range sources {
		wg.Go(func() {
			r, c := &results[i], &client{addr: addr, deadline: t1.Add(time.Minute)}
			if a, ok := src.(authed); ok {
				c.auth = a.header
			}
			defer c.close()
			rt, _ := src.(router)
			if rt != nil {
				defer rt.close()
			}
			buf, redials := make([]byte, 0, 1024), 0
			for sent := time.Now(); !stop.Load() && sent.Before(t1); sent = time.Now() {
				body, ok := src.next(buf[:0])
				if !ok {
					exhausted.Store(true)
					stop.Store(true)
					return
				}
				buf = body
				conn := c
				if rt != nil {
					conn = rt.via(c)
				}
				reply, err := conn.do(body)
				done, ioErr := time.Now(), conn.nc == nil && err != nil
				if err == nil {
					err = src.check(reply)
				}
				if !done.Before(t0) && !done.After(t1) {
					r.Requests++
					r.lat = append(r.lat, done.Sub(sent))
				}
				if err != nil {
					r.addErrors(result{Errors: 1, firstErr: err})
				}
				// Re-dial a dropped connection three times at most.
				if redials += map[bool]int{true: 1}[ioErr]; ioErr && (redials > 3 || errors.Is(err, syscall.ECONNREFUSED)) {
					r.firstErr = fmt.Errorf("%w: %w", errServerGone, err)
					stop.Store(true)
					return
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

	// A run whose sources ran out ended when its last reply came.
	res := result{elapsed: window, exhausted: exhausted.Load()}
	if res.exhausted {
		res.elapsed = w1.Sub(w0)
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
		res.lat = append(res.lat, results[i].lat...)
		res.addErrors(results[i])
	}
	return res
}

// pickErr returns a, the error kept so far, unless b says the server is gone.
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

// authed is a source whose requests carry a client's secret.
type authed struct {
	source
	header string // "Authorization: Bearer SECRET\r\n"
}

// withAuth makes srcs send Authorization: Bearer secret (none when secret
// is ""): the client a workload's clients (sessiond clients add) named.
func withAuth(secret string, srcs []source) []source {
	if secret == "" {
		return srcs
	}
	out := make([]source, len(srcs))
	for i, s := range srcs {
		out[i] = authed{s, authHeader(secret)}
	}
	return out
}

// authHeader is the header line that sends secret ("" for none).
func authHeader(secret string) string {
	if secret == "" {
		return ""
	}
	return "Authorization: Bearer " + secret + "\r\n"
}

func repeat(n int, f func(i int) source) []source {
	srcs := make([]source, n)
	for i := range srcs {
		srcs[i] = f(i)
	}
	return srcs
}

// The request id is always 1: one request at a time per connection.
const (
	verifyPrefix = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"`
	closePrefix  = `{"jsonrpc":"2.0","method":"session.close_session","params":{"token":"`
	tokenSuffix  = `"},"id":1}`
	openLifetime = 3600 // expires_in of the opens, in seconds
)

var openBody = []byte(`{"jsonrpc":"2.0","method":"session.open_session","params":{"expires_in":` + strconv.Itoa(openLifetime) + `},"id":1}`)

func verifyBody(buf []byte, tok string) []byte {
	return append(append(append(buf, verifyPrefix...), tok...), tokenSuffix...)
}
func closeBody(buf []byte, tok string) []byte {
	return append(append(append(buf, closePrefix...), tok...), tokenSuffix...)
}

// expect is a fixed reply; other bytes with the same JSON pass too.
type expect []byte

var (
	expectActive   = expect(`{"jsonrpc":"2.0","result":{"active":true},"id":1}`)
	expectInactive = expect(`{"jsonrpc":"2.0","result":{"active":false},"id":1}`)
	expectTrue     = expect(`{"jsonrpc":"2.0","result":true,"id":1}`)
	// expectRefused is a verify refused for the caller's budget of failed
	// signature checks (the server's --invalid-token-budget).
	expectRefused = expect(`{"jsonrpc":"2.0","error":{"code":-32005,"message":"too many invalid tokens, retry later"},"id":1}`)
)

func (e expect) check(reply []byte) error {
	var got, want any
	if bytes.Equal(reply, e) || json.Unmarshal(reply, &got) == nil && json.Unmarshal(e, &want) == nil && reflect.DeepEqual(got, want) {
		return nil
	}
	return fmt.Errorf("reply %.300s, want %s", reply, e)
}

// openedToken checks a reply to openBody and returns the token in it.
func openedToken(reply []byte) (string, error) {
	var r struct {
		JSONRPC string
		ID      int
		Result  struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int64  `json:"expires_in"`
		}
	}
	err := json.Unmarshal(reply, &r)
	if tok := r.Result.AccessToken; err != nil || r.JSONRPC != "2.0" || r.ID != 1 || r.Result.ExpiresIn != openLifetime || bytes.Count([]byte(tok), []byte(".")) != 2 {
		return "", fmt.Errorf("bad open_session reply %.300s", reply)
	}
	return r.Result.AccessToken, nil
}

// funcSource is a source made of two functions.
type funcSource struct {
	nextFn  func(buf []byte) ([]byte, bool)
	checkFn func(reply []byte) error
}

func (s funcSource) next(buf []byte) ([]byte, bool) { return s.nextFn(buf) }
func (s funcSource) check(reply []byte) error       { return s.checkFn(reply) }

// newCycleSources verify pool's tokens in turn, forever, each connection
// from its own offset: the floors, verify_hot and its variants.
func newCycleSources(pool []string, conns int) []source {
	return repeat(conns, func(c int) source {
		i := c * len(pool) / conns
		return funcSource{func(buf []byte) ([]byte, bool) { i = (i + 1) % len(pool); return verifyBody(buf, pool[i]), true }, expectActive.check}
	})
}

// slotLength is the length of newSlotSources's slots.
const slotLength = 100 * time.Millisecond

// newSlotSources make connections (one per source of srcs[0]) that send
// the requests of srcs[0] in the even slots of slotLength from t0 on and
// those of srcs[1] in the odd ones, at addrs[0] and addrs[1] ("":
// runLoad's server); counts[i] is how many correct replies came to
// requests sent in slot i (before t0: none counted; a slot's last requests
// may be answered in the next). The two are thus measured on the same
// machine, a tenth of a second apart. The latencies of srcs[0]'s requests
// from slot from on are kept apart (slotSource.lat).
func newSlotSources(srcs [2][]source, addrs [2]string, t0 time.Time, from int) (out []source, counts *slotCounts) {
	counts = new(slotCounts)
	return repeat(len(srcs[0]), func(c int) source {
		return &slotSource{srcs: [2]source{srcs[0][c], srcs[1][c]}, addrs: addrs, t0: t0, from: from, counts: counts}
	}), counts
}

// slotSource is one connection of newSlotSources: one to each server.
type slotSource struct {
	srcs   [2]source
	addrs  [2]string
	t0     time.Time
	from   int // the first slot whose latencies count
	counts *slotCounts
	slot   int       // of the last request; -1 before t0
	sent   time.Time // the last request's
	lat    lats      // of srcs[0]'s requests sent from t0 on
	conns  [2]*client
}

func (s *slotSource) next(buf []byte) ([]byte, bool) {
	s.sent, s.slot = time.Now(), -1
	if d := s.sent.Sub(s.t0); d >= 0 {
		s.slot = int(d / slotLength)
	}
	return s.srcs[max(s.slot, 0)%2].next(buf)
}

func (s *slotSource) check(reply []byte) error {
	err := s.srcs[max(s.slot, 0)%2].check(reply)
	if err == nil && s.slot >= 0 && s.slot < len(s.counts) {
		s.counts[s.slot].Add(1)
		if s.slot%2 == 0 && s.slot >= s.from {
			s.lat = append(s.lat, time.Since(s.sent))
		}
	}
	return err
}

// via is the connection for the request next made: c, runLoad's, or one of
// the source's own to the other server.
func (s *slotSource) via(c *client) *client {
	k := max(s.slot, 0) % 2
	if s.addrs[k] == "" {
		return c
	}
	if s.conns[k] == nil {
		s.conns[k] = &client{addr: s.addrs[k], auth: c.auth, deadline: c.deadline}
	}
	return s.conns[k]
}

func (s *slotSource) close() {
	for _, c := range s.conns {
		if c != nil {
			c.close()
		}
	}
}

// router is a source whose requests may go to other servers than
// runLoad's: via returns the connection for the request next made.
type router interface {
	via(c *client) *client
	close()
}

// slotCounts are newSlotSources's counts, enough slots for an hour.
type slotCounts [36000]atomic.Uint64

// newListSources send the n bodies body(i) returns, each once across all
// connections, until they are used up.
func newListSources(n, conns int, body func(buf []byte, i int) ([]byte, error), want expect) []source {
	cursor := new(atomic.Int64)
	return repeat(conns, func(int) source {
		var err error
		return funcSource{func(buf []byte) ([]byte, bool) {
			if i := cursor.Add(1) - 1; i < int64(n) && err == nil {
				buf, err = body(buf, int(i))
				return buf, true
			}
			return buf, false
		}, func(reply []byte) error { return cmp.Or(err, want.check(reply)) }}
	})
}

// listed is newListSources's body for one request per token of list.
func listed(list []string, body func([]byte, string) []byte) func([]byte, int) ([]byte, error) {
	return func(buf []byte, i int) ([]byte, error) { return body(buf, list[i]), nil }
}

// openSource opens sessions, forever.
var openSource = funcSource{func(buf []byte) ([]byte, bool) { return append(buf, openBody...), true },
	func(reply []byte) error { _, err := openedToken(reply); return err }}

// sessionKind is the kind of a request of a sessionSource.
type sessionKind int

const (
	kindVerify       sessionKind = iota // a live session: must be active
	kindVerifyClosed                    // a session this connection closed: must be inactive
	kindOpen
	kindClose
	numKinds
)

func (k sessionKind) String() string {
	return [numKinds]string{"verify", "verify_closed", "open", "close"}[k]
}

const (
	soakCycle  = 20 // the length of a connection's cycle of requests
	closedKeep = 16 // how many of its closed sessions a connection keeps verifying
)

// sessionSource is one connection of mixed and of the soak's valid load. It
// keeps want live sessions of its own and in every soakCycle requests sends
// 1 open, 1 close of its oldest session and 18 verifications of its live
// ones in turn; with checkClosed, 2 of those verify closed sessions (the one
// just closed, one of the last closedKeep), which must be inactive. It
// records the latency of requests sent from from on, by kind.
type sessionSource struct {
	want                 int
	live                 []string // oldest first
	checkClosed, noClose bool     // noClose: drop the oldest session instead (--closes=false)
	verify, step         int
	closed               []string // the last closedKeep closed sessions
	closedTurn           int
	justClosed, closing  string
	last                 sessionKind
	stop                 *atomic.Bool // when set, next sends nothing
	sent, from           time.Time
	lat                  [numKinds]lats
	sentN                [numKinds]uint64
	closedActive         uint64
}

// newMixedSources splits pool between conns connections: mixed.
func newMixedSources(pool []string, conns int) []source {
	per := len(pool) / conns
	return repeat(conns, func(c int) source {
		return &sessionSource{want: per, live: slices.Clone(pool[c*per : (c+1)*per]), step: c % soakCycle, stop: new(atomic.Bool)}
	})
}

func (s *sessionSource) next(buf []byte) ([]byte, bool) {
	if s.stop.Load() {
		return buf, false
	}
	step := s.step
	s.step = (s.step + 1) % soakCycle
	s.last = kindVerify
	switch {
	case len(s.live) < s.want || step == 0: // also when an open failed
		s.last = kindOpen
		buf = append(buf, openBody...)
	case step == 10 && s.noClose:
		s.live = s.live[1:]
	case step == 10:
		s.last, s.closing, s.live = kindClose, s.live[0], s.live[1:]
		buf = closeBody(buf, s.closing)
	case step == 11 && s.justClosed != "":
		s.last = kindVerifyClosed
		buf = verifyBody(buf, s.justClosed)
		s.justClosed = ""
	case step == 5 && len(s.closed) > 0:
		s.last = kindVerifyClosed
		s.closedTurn++
		buf = verifyBody(buf, s.closed[s.closedTurn%len(s.closed)])
	}
	if s.last == kindVerify {
		s.verify = (s.verify + 1) % len(s.live)
		buf = verifyBody(buf, s.live[s.verify])
	}
	s.sentN[s.last]++
	s.sent = time.Now()
	return buf, true
}

func (s *sessionSource) check(reply []byte) error {
	if !s.sent.Before(s.from) {
		s.lat[s.last] = append(s.lat[s.last], time.Since(s.sent))
	}
	switch s.last {
	case kindOpen:
		tok, err := openedToken(reply)
		if err == nil {
			s.live = append(s.live, tok)
		}
		return err
	case kindClose:
		if err := expectTrue.check(reply); err != nil || !s.checkClosed {
			return err
		}
		s.closed = append(s.closed, s.closing)
		s.closed, s.justClosed = s.closed[max(0, len(s.closed)-closedKeep):], s.closing
	case kindVerifyClosed:
		if expectActive.check(reply) == nil {
			s.closedActive++
			return errClosedActive
		}
		return expectInactive.check(reply)
	default:
		return expectActive.check(reply)
	}
	return nil
}
