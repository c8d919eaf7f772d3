package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/server"
)

// The server has every limit, within bounds that make them useful. Other
// tests prove that each works: cmd/sessiond's TestHeaderLimitExact and
// TestSlowloris for the header limit and ReadHeaderTimeout, TestBodyTrickle
// for ReadTimeout.
func TestHTTPServerLimits(t *testing.T) {
	srv := server.NewHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	checks := []struct {
		name string
		ok   bool
	}{
		{"ReadHeaderTimeout in (0, 10s]", srv.ReadHeaderTimeout > 0 && srv.ReadHeaderTimeout <= 10*time.Second},
		{"ReadTimeout in [ReadHeaderTimeout, 1m]", srv.ReadTimeout >= srv.ReadHeaderTimeout && srv.ReadTimeout <= time.Minute},
		{"WriteTimeout in (0, 1m]", srv.WriteTimeout > 0 && srv.WriteTimeout <= time.Minute},
		{"IdleTimeout in (0, 10m]", srv.IdleTimeout > 0 && srv.IdleTimeout <= 10*time.Minute},
		{"MaxHeaderBytes in (0, 32 KiB]", srv.MaxHeaderBytes > 0 && srv.MaxHeaderBytes <= 32<<10},
		{"ErrorLog set", srv.ErrorLog != nil},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("NewHTTPServer: want %s; got %+v", c.name, srv)
		}
	}
}

// A client that sends its headers and then trickles the body is cut off by
// ReadTimeout: the handler's read fails, the client gets 400 or a closed
// connection, never a 5xx, and no goroutine is left behind. Waiting for the
// real 30 s would be too slow for a unit test, so this is a server from
// NewHTTPServer, as Server builds it, with ReadTimeout cut to 1 s
// (TestHTTPServerLimits checks the real value is set).
func TestBodyTrickle(t *testing.T) {
	logs := new(syncBuffer)
	log := slog.New(slog.NewTextHandler(logs, nil))
	handler := rpc.NewHandler(map[string]rpc.Method{
		"ping": {Call: func(context.Context, rpc.Params) (any, error) { return "pong", nil }},
	}, rpc.HandlerOptions{Logger: log})
	srv := server.NewHTTPServer(handler, log)
	srv.ReadTimeout = time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if n := serverGoroutines(); n != 0 {
		t.Fatalf("%d server goroutines before the test, want 0", n)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}

	const ping = `{"jsonrpc":"2.0","method":"ping","id":1}`
	tests := []struct {
		name    string
		headers string
		chunk   func(b byte) string
	}{
		{"Content-Length", fmt.Sprintf("Content-Length: %d\r\n", len(ping)), func(b byte) string { return string(b) }},
		{"chunked", "Transfer-Encoding: chunked\r\n", func(b byte) string { return "1\r\n" + string(b) + "\r\n" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			began := time.Now()
			if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\n"+tt.headers+"\r\n"); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for i := 0; i < len(ping); i++ {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
					}
					if _, err := io.WriteString(conn, tt.chunk(ping[i])); err != nil {
						return
					}
				}
			}()
			// Meanwhile, an ordinary request.
			resp, err := client.Post("http://"+addr+"/", "application/json", strings.NewReader(ping))
			if err != nil {
				t.Fatalf("ordinary request during the trickle: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"pong"`) {
				t.Errorf("ordinary request during the trickle = %d %s, want 200 pong", resp.StatusCode, body)
			}

			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			reply, err := io.ReadAll(bufio.NewReader(conn))
			after := time.Since(began)
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Fatalf("the trickling client was still connected after %v", after)
			}
			t.Logf("cut off after %v: %q, %v", after.Round(100*time.Millisecond), firstLine(string(reply)), err)
			if len(reply) > 0 && !strings.HasPrefix(string(reply), "HTTP/1.1 4") {
				t.Errorf("reply %q, want none or a 4xx", reply)
			}
			if strings.Contains(string(reply), "pong") {
				t.Errorf("the trickled request was served: %q", reply)
			}
		})
	}

	if serverGoroutines() == 0 {
		t.Error("no server goroutine found while serving: the leak check below would prove nothing")
	}
	client.CloseIdleConnections()
	if err := srv.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve() = %v, want ErrServerClosed", err)
	}
	// No goroutine of the server or the handler may outlive it.
	deadline := time.Now().Add(10 * time.Second)
	for serverGoroutines() != 0 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("server goroutines left 10s after Close:\n%s", buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("the server's log mentions a panic:\n%s", logs.String())
	}
}

// serverGoroutines counts the goroutines of net/http servers and of the rpc
// handler in this process. No test of this package runs in parallel, so
// during TestBodyTrickle they are its server's.
func serverGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("net/http.(*conn).serve")) ||
			bytes.Contains(g, []byte("net/http.(*Server).Serve")) ||
			bytes.Contains(g, []byte("github.com/sessiond/sessiond/rpc.(*Handler)")) {
			count++
		}
	}
	return count
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// syncBuffer is an io.Writer safe for a logger's concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
