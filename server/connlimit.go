package server

import (
	"container/list"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sessiond/sessiond/rpc"
)

// DefaultMaxConnections is the connection cap when Config.MaxConnections is
// zero.
const DefaultMaxConnections = 4096

// fileHeadroom is the open files the server needs besides its client
// connections: the revocation store's files, the admin listener and its
// clients, the key file, standard streams.
const fileHeadroom = 1024

// FileLimitError is Open's refusal of a Config.MaxConnections that the
// limit on open files cannot hold.
type FileLimitError struct {
	Want  int    // the connections asked for
	Need  uint64 // the open files they need: Want plus the server's own
	Limit uint64 // the hard limit on open files, when Err is nil
	Err   error  // why the limit could not be raised, if it failed
}

func (e *FileLimitError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("raise the open file limit to %d for %d connections: %v", e.Need, e.Want, e.Err)
	}
	return fmt.Sprintf("%d connections need %d open files, but the hard limit is %d: raise it (ulimit -Hn, or LimitNOFILE= for systemd) or lower the connection cap to %d",
		e.Want, e.Need, e.Limit, e.Fits())
}

func (e *FileLimitError) Unwrap() error { return e.Err }

// Fits returns the largest connection cap the hard limit holds (at least 1).
func (e *FileLimitError) Fits() int { return max(1, int(e.Limit)-fileHeadroom) }

// connectionCap returns the connection cap to serve with, having raised the
// process's soft limit on open files to what it needs (the cap plus
// fileHeadroom). An explicit want (> 0) that the hard limit cannot hold is
// refused with a *FileLimitError; the default (want 0,
// DefaultMaxConnections) is lowered to fit, with a warning.
//
// The limit is the process's, not the server's: it is raised here because
// the cap is what needs it, and it is never lowered again.
func connectionCap(want int, log *slog.Logger) (int, error) {
	explicit := want > 0
	if !explicit {
		want = DefaultMaxConnections
	}
	need := uint64(want) + fileHeadroom
	got, err := raiseFileLimit(need)
	switch {
	case err != nil && explicit:
		return 0, &FileLimitError{Want: want, Need: need, Err: err}
	case got >= need:
		return want, nil
	case explicit:
		return 0, &FileLimitError{Want: want, Need: need, Limit: got}
	}
	lowered := max(1, int(got)-fileHeadroom)
	log.Warn("open file limit too low for the default connection cap; serving with a lower cap (raise the hard limit or set the cap)",
		"file_limit", got, "max_connections", lowered, "default", want)
	return lowered, nil
}

// connLimiter is a listener that holds the server to at most max open
// connections, and the HTTP edge's answers that net/http would give in plain
// text. Install its ConnState as the server's ConnState: it learns from it
// which connections are idle.
//
// When a connection arrives at the cap, the one that has waited longest
// without a request in progress (an idle keep-alive connection, or one that
// has not sent a complete request line and headers yet) is closed to make
// room, so new clients are still served however many idle connections one
// client opens. When every connection has a request in progress, the new one
// gets 503 with Retry-After and a JSON-RPC error object, and is closed.
//
// A connection shed the moment its next request arrives loses that request,
// as with net/http's own Shutdown; a client sees a closed keep-alive
// connection, which HTTP clients retry.
type connLimiter struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[*edgeConn]*list.Element // every open connection
	idle  list.List                   // of *edgeConn: those without a request in progress, the longest waiting first

	refusing sync.WaitGroup // goroutines answering 503 to connections over the cap
}

// newConnLimiter returns ln limited to max connections (max > 0).
func newConnLimiter(ln net.Listener, max int) *connLimiter {
	return &connLimiter{Listener: ln, max: max, conns: make(map[*edgeConn]*list.Element)}
}

// Accept waits for the next connection and makes room for it.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &edgeConn{Conn: raw, limiter: l}
		l.mu.Lock()
		var shed *edgeConn
		if len(l.conns) >= l.max {
			if e := l.idle.Front(); e != nil {
				shed = e.Value.(*edgeConn)
				l.forget(shed)
			}
		}
		full := len(l.conns) >= l.max
		if !full {
			// A new connection has sent nothing yet: it is idle.
			l.conns[c] = l.idle.PushBack(c)
		}
		l.mu.Unlock()
		if shed != nil {
			shed.Conn.Close()
		}
		if full {
			l.refusing.Go(func() { refuse(raw) })
			continue
		}
		return c, nil
	}
}

// Close closes the listener and waits for the 503 answers in flight.
func (l *connLimiter) Close() error {
	err := l.Listener.Close()
	l.refusing.Wait()
	return err
}

// ConnState is the http.Server hook that keeps the idle list: a connection
// is idle when new or between requests, busy while a request is read or
// served.
func (l *connLimiter) ConnState(nc net.Conn, state http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn() // served with TLS: the connection underneath is ours
	}
	c, ok := nc.(*edgeConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, open := l.conns[c]
	if !open {
		return
	}
	switch state {
	case http.StateActive:
		if e != nil {
			l.idle.Remove(e)
			l.conns[c] = nil
		}
	case http.StateIdle:
		if e != nil {
			l.idle.Remove(e)
		}
		l.conns[c] = l.idle.PushBack(c)
	case http.StateHijacked, http.StateClosed:
		l.forget(c)
	}
}

// open returns the number of open connections.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// forget drops c from the books; l.mu is held.
func (l *connLimiter) forget(c *edgeConn) {
	if e, ok := l.conns[c]; ok {
		if e != nil {
			l.idle.Remove(e)
		}
		delete(l.conns, c)
	}
}

// refuse answers a connection over the cap with 503 and closes it, within a
// second whatever the client does.
func refuse(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	c.Write(reply503)
}

// edgeConn is a connection accepted by a [connLimiter].
type edgeConn struct {
	net.Conn
	limiter *connLimiter
	once    sync.Once
}

// Close closes the connection and frees its place under the cap.
func (c *edgeConn) Close() error {
	c.once.Do(func() {
		c.limiter.mu.Lock()
		c.limiter.forget(c)
		c.limiter.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite half-closes the connection, as net/http does before it hangs up
// on a client whose request it refused.
func (c *edgeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Write writes p, except net/http's plain-text 431, which it replaces with
// the same status and a JSON-RPC error object. net/http writes that reply in
// one call straight to the connection, before any handler runs, and offers
// no hook to change it; a reply of a handler never equals it, since net/http
// adds a Date and a Content-Length to those.
func (c *edgeConn) Write(p []byte) (int, error) {
	if len(p) == len(plain431) && string(p) == plain431 {
		if _, err := c.Conn.Write(reply431); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// plain431 is net/http's answer to a request whose request line and headers
// exceed the read limit (net/http/server.go, conn.serve).
const plain431 = "HTTP/1.1 431 Request Header Fields Too Large\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
	"431 Request Header Fields Too Large"

var (
	reply431 = rawJSONReply(http.StatusRequestHeaderFieldsTooLarge, nil,
		fmt.Sprintf("request line and headers too large, the limit is %d bytes in all: send fewer or shorter headers", MaxHeaderBytes))
	reply503 = rawJSONReply(http.StatusServiceUnavailable, []string{"Retry-After: 1"},
		"the server is at its connection limit with every connection busy: retry shortly")
)

// rawJSONReply returns a whole HTTP/1.1 response that closes the
// connection, with a JSON-RPC error object (CodeInvalidRequest, id null)
// as its body.
func rawJSONReply(status int, headers []string, msg string) []byte {
	body, err := json.Marshal(struct {
		JSONRPC string     `json:"jsonrpc"`
		Error   *rpc.Error `json:"error"`
		ID      any        `json:"id"`
	}{"2.0", &rpc.Error{Code: rpc.CodeInvalidRequest, Message: msg}, nil})
	if err != nil {
		panic("sessiond: cannot encode a plain error object: " + err.Error())
	}
	head := "HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n"
	for _, h := range headers {
		head += h + "\r\n"
	}
	return append([]byte(head+"\r\n"), body...)
}
