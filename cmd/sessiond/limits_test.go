package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/server"
)

// Hostile requests to the real binary: too big a body, too long a batch,
// too deep JSON, too many header bytes. Each gets a JSON-RPC error or an
// HTTP 4xx, and the server goes on serving, with no panic in its log.
func TestServerLimits(t *testing.T) {
	t.Parallel()
	p := startInProcess(t, dataDir(t))
	client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	const verify = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"x"},"id":1}`
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	deepVerify := `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":` + deep + `},"id":1}`
	bigHeaders := http.Header{}
	for i := range 64 {
		bigHeaders.Set(fmt.Sprintf("X-Pad-%02d", i), strings.Repeat("a", 1000))
	}
	tests := []struct {
		name   string
		body   string
		header http.Header
		status int
		code   int // the JSON-RPC error code of the reply
	}{
		{"body over 1 MiB", verify + strings.Repeat(" ", 1<<20), nil, http.StatusRequestEntityTooLarge, rpc.CodeInvalidRequest},
		{"batch of 101", "[" + strings.TrimSuffix(strings.Repeat(verify+",", 101), ",") + "]", nil, http.StatusOK, rpc.CodeInvalidRequest},
		{"100k nested arrays in params", deepVerify, nil, http.StatusOK, rpc.CodeParseError},
		{"100k nested arrays in a batch", "[" + verify + "," + deepVerify + "]", nil, http.StatusOK, rpc.CodeParseError},
		{"64 headers of 1 KiB", verify, bigHeaders, http.StatusRequestHeaderFieldsTooLarge, rpc.CodeInvalidRequest},
		{"one header of 64 KiB", verify, http.Header{"Cookie": {strings.Repeat("a", 64<<10)}}, http.StatusRequestHeaderFieldsTooLarge, rpc.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, p.url, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %.200s)", resp.StatusCode, tt.status, data)
			}
			if tt.code != 0 {
				var r struct {
					JSONRPC string     `json:"jsonrpc"`
					Error   *rpc.Error `json:"error"`
				}
				if err := json.Unmarshal(data, &r); err != nil || r.JSONRPC != "2.0" || r.Error == nil || r.Error.Code != tt.code {
					t.Errorf("reply %.200s, want a JSON-RPC error %d", data, tt.code)
				}
			}
			stillServing(t, p)
		})
	}
	if strings.Contains(p.stderr.String(), "panic") {
		t.Errorf("the server's log mentions a panic:\n%s", p.stderr)
	}
}

// stillServing fails the test unless the server answers /healthz and opens
// a session.
func stillServing(t *testing.T, p *process) {
	t.Helper()
	resp, err := http.Get(p.url + "healthz")
	if err != nil {
		t.Fatalf("server stopped serving: GET /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("server stopped serving: GET /healthz = %d", resp.StatusCode)
	}
	if _, err := p.client.OpenSession(context.Background(), time.Hour); err != nil {
		t.Fatalf("server stopped serving: open_session: %v", err)
	}
}

// A slowloris attack on the real binary: 20 clients trickle their request
// line and headers at one byte a second. ReadHeaderTimeout (5 s) cuts each
// off, and meanwhile other clients are served as usual. This test takes
// the real 5 s, in parallel with the others.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	p := startInProcess(t, dataDir(t))
	addr := strings.TrimSuffix(strings.TrimPrefix(p.url, "http://"), "/")
	const slow = 20
	const request = "POST / HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nX-Slow: " + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

	type outcome struct {
		after time.Duration
		reply string
		err   error
	}
	outcomes := make(chan outcome, slow)
	for range slow {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		began := time.Now()
		go func() {
			for i := 0; i < len(request); i++ {
				if _, err := conn.Write([]byte{request[i]}); err != nil {
					return // cut off
				}
				time.Sleep(time.Second)
			}
		}()
		go func() {
			// ReadTimeout (30 s) would cut them off too, later: 20 s tells
			// the two apart with room for a slow machine.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			reply, err := io.ReadAll(conn)
			outcomes <- outcome{time.Since(began), string(reply), err}
		}()
	}

	// Four seconds of ordinary traffic while every slow client is connected.
	ctx := context.Background()
	var latencies []time.Duration
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); {
		began := time.Now()
		res, err := p.client.OpenSession(ctx, time.Hour)
		if err != nil {
			t.Fatalf("open_session during the attack: %v", err)
		}
		if active, err := p.client.VerifySessionToken(ctx, res.AccessToken); !active || err != nil {
			t.Fatalf("verify during the attack = %v, %v, want active", active, err)
		}
		latencies = append(latencies, time.Since(began))
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(latencies)
	worst := latencies[len(latencies)-1]
	t.Logf("%d open+verify pairs during the attack: median %v, worst %v; %d slow clients already cut off",
		len(latencies), latencies[len(latencies)/2], worst, len(outcomes))
	// A server that waited on the slow clients would take 5 s or more.
	if worst > 3*time.Second {
		t.Errorf("an open+verify took %v during the attack, want well under ReadHeaderTimeout", worst)
	}

	for range slow {
		select {
		case o := <-outcomes:
			if ne, ok := errors.AsType[net.Error](o.err); ok && ne.Timeout() {
				t.Errorf("a slow client was still connected after %v, want cut off by ReadHeaderTimeout", o.after)
				continue
			}
			if o.reply != "" && !strings.HasPrefix(o.reply, "HTTP/1.1 4") {
				t.Errorf("a slow client got %q, want no reply or a 4xx", o.reply)
			}
			t.Logf("slow client cut off after %v (reply %q, %v)", o.after.Round(100*time.Millisecond), firstLine(o.reply), o.err)
		case <-time.After(60 * time.Second):
			t.Fatal("slow clients not cut off after 60s")
		}
	}
	stillServing(t, p)
	if strings.Contains(p.stderr.String(), "panic") {
		t.Errorf("the server's log mentions a panic:\n%s", p.stderr)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// The private keys are open to their owner only: the server and the key
// commands refuse a key file that anyone else may read or write, and a data
// directory that anyone else may enter or list, with the chmod that fixes
// it, before they create or read anything. (TestRefusesReadableKeyFile and
// TestDataDirMode check 0644 and 0755.)
func TestPrivateKeyModes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // serve starts, then stops at once
	serveArgs := func(dir string) []string {
		return []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir}
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o640, 0o604, 0o660, 0o620, 0o602, 0o611} {
		t.Run(fmt.Sprintf("key file %04o", mode), func(t *testing.T) {
			dir := dataDir(t)
			if err := run(ctx, []string{"keys", "init", "--data-dir", dir}, io.Discard, io.Discard); err != nil {
				t.Fatalf("keys init: %v", err)
			}
			keyFile := filepath.Join(dir, "keys.json")
			if got := permOf(t, keyFile); got != 0o600 {
				t.Fatalf("new key file mode = %04o, want 0600", got)
			}
			if err := os.Chmod(keyFile, mode); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{serveArgs(dir), {"keys", "list", "--data-dir", dir}} {
				err := run(ctx, args, io.Discard, io.Discard)
				if mode&0o077 == 0 {
					if err != nil {
						t.Errorf("%s with key file %04o: %v, want success", args[0], mode, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), "chmod 600 "+keyFile) {
					t.Errorf("%s with key file %04o: error %v, want a refusal that says chmod 600 %s", args[0], mode, err, keyFile)
				}
			}
		})
	}
	for _, mode := range []os.FileMode{0o700, 0o750, 0o710, 0o701, 0o705, 0o770} {
		t.Run(fmt.Sprintf("data dir %04o", mode), func(t *testing.T) {
			dir := dataDir(t)
			if err := os.Mkdir(dir, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, mode); err != nil { // whatever the umask
				t.Fatal(err)
			}
			for _, args := range [][]string{{"keys", "init", "--data-dir", dir}, serveArgs(dir)} {
				err := run(ctx, args, io.Discard, io.Discard)
				if mode == 0o700 {
					if err != nil {
						t.Errorf("%s in a %04o data dir: %v, want success", args[0], mode, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
					t.Errorf("%s in a %04o data dir: error %v, want a refusal that says chmod 700 %s", args[0], mode, err, dir)
				}
			}
			if mode == 0o700 {
				if got := permOf(t, filepath.Join(dir, "keys.json")); got != 0o600 {
					t.Errorf("keys.json mode = %04o, want 0600", got)
				}
				if got := permOf(t, filepath.Join(dir, "revocations")); got != 0o700 {
					t.Errorf("revocations/ mode = %04o, want 0700", got)
				}
				return
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused start left %d files in the data dir, want none", len(entries))
			}
		})
	}
}

// permOf returns the permission bits of path.
func permOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// rawExchange sends request on a new connection to addr and returns the
// reply, read as HTTP/1.1.
func rawExchange(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read reply body: %v", err)
	}
	return resp, body
}

// hostPort is the host:port of a process's URL.
func hostPort(p *process) string {
	return strings.TrimSuffix(strings.TrimPrefix(p.url, "http://"), "/")
}

// The header limit is exactly what the README says: the request line and
// the headers, up to and including the blank line that ends them, may take
// 16384 bytes; one byte more is 431 with a JSON-RPC error object, over a
// real socket to the real binary.
func TestHeaderLimitExact(t *testing.T) {
	t.Parallel()
	p := startInProcess(t, dataDir(t))
	const verify = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"x"},"id":1}`
	head := func(size int) string {
		prefix := fmt.Sprintf("POST / HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-Pad: ", len(verify))
		const end = "\r\n\r\n"
		h := prefix + strings.Repeat("a", size-len(prefix)-len(end)) + end
		if len(h) != size {
			t.Fatalf("head is %d bytes, want %d", len(h), size)
		}
		return h
	}
	for _, tt := range []struct {
		size   int
		status int
	}{
		{1 << 10, http.StatusOK},
		{server.MaxHeaderBytes - 1, http.StatusOK},
		{server.MaxHeaderBytes, http.StatusOK},
		{server.MaxHeaderBytes + 1, http.StatusRequestHeaderFieldsTooLarge},
		{server.MaxHeaderBytes + 4096, http.StatusRequestHeaderFieldsTooLarge},
		{64 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(fmt.Sprintf("%d bytes", tt.size), func(t *testing.T) {
			resp, body := rawExchange(t, hostPort(p), head(tt.size)+verify)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %.200s)", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var r struct {
				JSONRPC string          `json:"jsonrpc"`
				Result  json.RawMessage `json:"result"`
				Error   *rpc.Error      `json:"error"`
				ID      json.RawMessage `json:"id"`
			}
			if err := json.Unmarshal(body, &r); err != nil || r.JSONRPC != "2.0" {
				t.Fatalf("body %.300q is not a JSON-RPC reply: %v", body, err)
			}
			if tt.status == http.StatusOK {
				if string(r.Result) != `{"active":false}` {
					t.Errorf("reply %s, want the verify result", body)
				}
				return
			}
			if r.Error == nil || r.Error.Code != rpc.CodeInvalidRequest || string(r.ID) != "null" ||
				!strings.Contains(r.Error.Message, strconv.Itoa(server.MaxHeaderBytes)) {
				t.Errorf("reply %s, want a JSON-RPC error %d naming the limit %d, id null", body, rpc.CodeInvalidRequest, server.MaxHeaderBytes)
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length = %d, body %d bytes", resp.ContentLength, len(body))
			}
		})
	}
	stillServing(t, p)
}

// /debug/stats is off the public surface: the API listener answers 404,
// the admin listener serves it and /healthz, and nothing else; with
// --admin-listen off there is no admin listener at all.
func TestAdminListener(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		p := startInProcess(t, dataDir(t))
		if p.admin == "" || p.admin == p.url {
			t.Fatalf("admin URL %q, want a listener of its own (API on %s)", p.admin, p.url)
		}
		if status, body := get(t, p.url+"debug/stats"); status != http.StatusNotFound {
			t.Errorf("API listener: GET /debug/stats = %d %.100s, want 404", status, body)
		}
		status, body := get(t, p.admin+"debug/stats")
		var stats map[string]uint64
		if err := json.Unmarshal(body, &stats); status != http.StatusOK || err != nil || stats["goroutines"] == 0 || stats["heap_alloc_bytes"] == 0 {
			t.Errorf("admin listener: GET /debug/stats = %d %s (%v), want 200 with goroutines and heap", status, body, err)
		}
		if status, body := get(t, p.admin+"healthz"); status != http.StatusOK || string(body) != "ok\n" {
			t.Errorf("admin listener: GET /healthz = %d %q, want 200 ok", status, body)
		}
		for _, path := range []string{"", ".well-known/jwks.json", "revocations"} {
			if status, _ := get(t, p.admin+path); status != http.StatusNotFound {
				t.Errorf("admin listener: GET /%s = %d, want 404: the API stays on its own listener", path, status)
			}
		}
		stillServing(t, p)
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		p := startInProcess(t, dataDir(t), "--admin-listen", "off")
		if p.admin != "" {
			t.Errorf("--admin-listen off: admin listener on %s", p.admin)
		}
		if status, _ := get(t, p.url+"debug/stats"); status != http.StatusNotFound {
			t.Errorf("API listener: GET /debug/stats = %d, want 404", status)
		}
		stillServing(t, p)
	})
	t.Run("taken", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err = run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir(t), "--admin-listen", ln.Addr().String()}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--admin-listen") {
			t.Errorf("serve with the admin address taken: %v, want a refusal naming --admin-listen", err)
		}
	})
}

// keptConn is a client connection that sends requests one after another.
type keptConn struct {
	net.Conn
	r *bufio.Reader
}

func dialKept(t *testing.T, addr string) *keptConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &keptConn{Conn: conn, r: bufio.NewReader(conn)}
}

const verifyRequest = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"x"},"id":1}`

// verify sends a verify request on c and returns the reply's status and body.
func (c *keptConn) verify(t *testing.T) (int, http.Header, []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(verifyRequest), verifyRequest); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read reply body: %v", err)
	}
	return resp.StatusCode, resp.Header, body
}

// closedByServer reports whether the server closed c, waiting up to 10 s.
func (c *keptConn) closedByServer(t *testing.T) bool {
	t.Helper()
	return c.closedBy(time.Now().Add(10 * time.Second))
}

// closedBy reports whether the server closed c, waiting until deadline.
func (c *keptConn) closedBy(deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	_, err := c.r.ReadByte()
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// The connection cap of the real binary, at --max-connections 8: with 8
// idle keep-alive connections, or 8 that have sent nothing, a new client is
// still served, and the longest idle one is closed to make room; with 8
// requests in progress, a new client gets 503 with Retry-After and a
// JSON-RPC error object, and is served again once one of them is done.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	const limit = 8
	served := func(t *testing.T, p *process) {
		t.Helper()
		c := dialKept(t, hostPort(p))
		if status, _, body := c.verify(t); status != http.StatusOK || !strings.Contains(string(body), `"active":false`) {
			t.Fatalf("new client at the cap: %d %s, want served", status, body)
		}
		c.Close()
	}
	t.Run("idle keep-alive", func(t *testing.T) {
		t.Parallel()
		p := start(t, dataDir(t), "--max-connections", strconv.Itoa(limit))
		var conns []*keptConn
		for range limit {
			c := dialKept(t, hostPort(p))
			if status, _, body := c.verify(t); status != http.StatusOK {
				t.Fatalf("verify = %d %s", status, body)
			}
			conns = append(conns, c)
			// The server books a connection idle in its own goroutine just
			// after the reply; on a loaded machine the next connection's
			// whole request could otherwise be booked first, and the
			// "longest idle" one would not be conns[0].
			time.Sleep(100 * time.Millisecond)
		}
		served(t, p)
		if !conns[0].closedByServer(t) {
			t.Errorf("the longest idle connection is still open, want it closed to make room")
		}
		if status, _, body := conns[limit-1].verify(t); status != http.StatusOK {
			t.Errorf("the newest idle connection: verify = %d %s, want served", status, body)
		}
	})
	t.Run("silent", func(t *testing.T) {
		t.Parallel()
		p := start(t, dataDir(t), "--max-connections", strconv.Itoa(limit))
		dialed := time.Now()
		var conns []*keptConn
		for range limit {
			conns = append(conns, dialKept(t, hostPort(p)))
		}
		served(t, p)
		// ReadHeaderTimeout (5 s) closes a silent connection too: only a
		// close well before it shows the cap at work.
		by := dialed.Add(4 * time.Second)
		if time.Now().After(by.Add(-time.Second)) {
			t.Skipf("the new client took %v to be served: too slow to tell the cap from ReadHeaderTimeout", time.Since(dialed))
		}
		if !conns[0].closedBy(by) {
			t.Errorf("the oldest silent connection is still open, want it closed to make room")
		}
	})
	t.Run("busy", func(t *testing.T) {
		t.Parallel()
		p := start(t, dataDir(t), "--max-connections", strconv.Itoa(limit))
		var conns []*keptConn
		for range limit {
			c := dialKept(t, hostPort(p))
			c.SetDeadline(time.Now().Add(30 * time.Second))
			// 100-continue tells when the handler is reading the body, so
			// the connection is busy on the server's books.
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(verifyRequest))
			line, err := c.r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
				t.Fatalf("waiting for 100 Continue: %q, %v", line, err)
			}
			if blank, err := c.r.ReadString('\n'); blank != "\r\n" || err != nil {
				t.Fatalf("after 100 Continue: %q, %v", blank, err)
			}
			conns = append(conns, c)
		}
		resp, body := rawExchange(t, hostPort(p), "POST / HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(verifyRequest))+"\r\n\r\n"+verifyRequest)
		var r struct {
			Error *rpc.Error `json:"error"`
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			json.Unmarshal(body, &r) != nil || r.Error == nil || r.Error.Code != rpc.CodeInvalidRequest {
			t.Errorf("new client with every connection busy: %d Retry-After %q %s, want 503 with Retry-After and a JSON-RPC error",
				resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		// One request finishes; its connection turns idle and makes room.
		io.WriteString(conns[0], verifyRequest)
		reply, err := http.ReadResponse(conns[0].r, nil)
		if err != nil || reply.StatusCode != http.StatusOK {
			t.Fatalf("finishing a busy request: %v, %v", reply, err)
		}
		io.Copy(io.Discard, reply.Body)
		reply.Body.Close()
		// The server marks the connection idle just after the reply.
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, body := rawExchange(t, hostPort(p), "POST / HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(verifyRequest))+"\r\n\r\n"+verifyRequest)
			if resp.StatusCode == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("new client after a busy request finished: %d %s, want served", resp.StatusCode, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// An explicit --max-connections that the hard limit on open files cannot
// hold is refused with the fix; the default is never refused.
func TestConnectionCapFileLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("no file limit: %v", err)
	}
	if lim.Max > 1<<30 {
		t.Skipf("hard file limit %d: nothing too large to ask for", lim.Max)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // serve starts, then stops at once
	tooMany := strconv.FormatUint(lim.Max, 10)
	err := run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir(t), "--max-connections", tooMany}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "hard limit") || !strings.Contains(err.Error(), "lower --max-connections") {
		t.Errorf("serve --max-connections %s with a hard file limit of %d: %v, want a refusal with the fix", tooMany, lim.Max, err)
	}
	if err := run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir(t)}, io.Discard, io.Discard); err != nil {
		t.Errorf("serve with the default cap: %v", err)
	}
}
