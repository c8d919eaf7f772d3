package session_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/rpc"
)

// The request limits of the session API with the default HandlerOptions, the
// ones sessiond serves with: 1 MiB of body, 100 requests in a batch, and JSON
// nested as deep as a client likes. Every hostile request gets a JSON-RPC
// error object (HTTP 200, or 413 for the body), never a 5xx, a panic in the
// log or a goroutine left behind.
func TestSessionLimits(t *testing.T) {
	s := newFaultService(t) // no faults set: a store that works
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	before := settledGoroutines(t, client, -1)

	const verify = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"x"},"id":1}`
	batch := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(verify+",", n), ",") + "]"
	}
	padTo := func(body string, n int) string { return body + strings.Repeat(" ", n-len(body)) }
	const limit = 1 << 20
	deepArrays := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	deepObjects := func(depth int) string {
		return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
	}
	withToken := func(tok string) string {
		return `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":` + tok + `},"id":1}`
	}

	tests := []struct {
		name    string
		body    io.Reader
		status  int
		want    string   // for 200: "result", "array" (a batch reply) or "error"
		codes   []int    // for want "error": the acceptable codes
		inBatch []string // for want "array": "result" or "error" per reply
	}{
		{name: "body at 1 MiB", body: strings.NewReader(padTo(verify, limit)), status: 200, want: "result"},
		{name: "body over 1 MiB", body: strings.NewReader(padTo(verify, limit+1)), status: 413, want: "error", codes: []int{rpc.CodeInvalidRequest}},
		{name: "body over 1 MiB, chunked", body: chunked{strings.NewReader(padTo(verify, 2*limit))}, status: 413, want: "error", codes: []int{rpc.CodeInvalidRequest}},
		{name: "batch of 100", body: strings.NewReader(batch(100)), status: 200, want: "array", inBatch: slices.Repeat([]string{"result"}, 100)},
		{name: "batch of 101", body: strings.NewReader(batch(101)), status: 200, want: "error", codes: []int{rpc.CodeInvalidRequest}},
		{name: "batch of 20000, over 1 MiB", body: strings.NewReader(batch(20000)), status: 413, want: "error", codes: []int{rpc.CodeInvalidRequest}},
		// Deeper than encoding/json goes (10,000 levels): not JSON.
		{name: "100k nested arrays in params", body: strings.NewReader(withToken(deepArrays(100_000))), status: 200, want: "error", codes: []int{rpc.CodeParseError}},
		{name: "500k nested arrays in params", body: strings.NewReader(withToken(deepArrays(500_000))), status: 200, want: "error", codes: []int{rpc.CodeParseError}},
		{name: "100k nested objects in params", body: strings.NewReader(withToken(deepObjects(100_000))), status: 200, want: "error", codes: []int{rpc.CodeParseError}},
		{name: "100k nested arrays as the id", body: strings.NewReader(`{"jsonrpc":"2.0","method":"session.open_session","id":` + deepArrays(100_000) + `}`), status: 200, want: "error", codes: []int{rpc.CodeParseError}},
		{name: "100k nested arrays as the body", body: strings.NewReader(deepArrays(100_000)), status: 200, want: "error", codes: []int{rpc.CodeParseError}},
		{name: "100k nested arrays in a batch", body: strings.NewReader("[" + withToken(deepArrays(100_000)) + "," + verify + "]"), status: 200, want: "error", codes: []int{rpc.CodeParseError}},
		// Just within encoding/json's depth: valid JSON, invalid params.
		{name: "9000 nested arrays in params", body: strings.NewReader(withToken(deepArrays(9000))), status: 200, want: "error", codes: []int{rpc.CodeInvalidParams}},
		{name: "9000 nested arrays as the id", body: strings.NewReader(`{"jsonrpc":"2.0","method":"session.open_session","id":` + deepArrays(9000) + `}`), status: 200, want: "error", codes: []int{rpc.CodeInvalidRequest}},
		{name: "9000 nested arrays in a batch", body: strings.NewReader("[" + withToken(deepArrays(9000)) + "," + verify + "]"), status: 200, want: "array", inBatch: []string{"error", "result"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, s.url, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			began := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("read reply: %v", err)
			}
			t.Logf("HTTP %d in %v, %d bytes", resp.StatusCode, time.Since(began).Round(time.Millisecond), len(data))
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %.300s)", resp.StatusCode, tt.status, data)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			switch tt.want {
			case "result", "error":
				var r struct {
					JSONRPC string          `json:"jsonrpc"`
					Result  json.RawMessage `json:"result"`
					Error   *rpc.Error      `json:"error"`
				}
				if err := json.Unmarshal(data, &r); err != nil || r.JSONRPC != "2.0" {
					t.Fatalf("reply %.300s: %v, want one JSON-RPC response", data, err)
				}
				if tt.want == "result" {
					if r.Error != nil || string(r.Result) != `{"active":false}` {
						t.Errorf("reply %.300s, want the result", data)
					}
					return
				}
				if r.Error == nil || !slices.Contains(tt.codes, r.Error.Code) {
					t.Errorf("reply %.300s, want an error with code %v", data, tt.codes)
				}
			case "array":
				var rs []struct {
					Result json.RawMessage `json:"result"`
					Error  *rpc.Error      `json:"error"`
				}
				if err := json.Unmarshal(data, &rs); err != nil {
					t.Fatalf("reply %.300s: %v, want a batch reply", data, err)
				}
				want := tt.inBatch
				if len(rs) != len(want) {
					t.Fatalf("got %d replies, want %d", len(rs), len(want))
				}
				for i, r := range rs {
					if got := map[bool]string{true: "error", false: "result"}[r.Error != nil]; got != want[i] {
						t.Errorf("reply %d = %s %v, want a %s", i, r.Result, r.Error, want[i])
					}
				}
			}
		})
	}

	if strings.Contains(strings.ToLower(s.logs.String()), "panic") {
		t.Errorf("the handler's log mentions a panic:\n%s", s.logs.String())
	}
	settledGoroutines(t, client, before)
}

// settledGoroutines closes client's idle connections and waits (up to 10 s)
// for the number of goroutines to settle at or below want, and returns it;
// want < 0 only waits for the count to stop falling. A count that stays
// above want fails the test with every goroutine's stack.
func settledGoroutines(t *testing.T, client *http.Client, want int) int {
	t.Helper()
	client.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	last := runtime.NumGoroutine()
	for {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		switch {
		case want < 0 && n >= last:
			return n
		case want >= 0 && n <= want:
			return n
		case time.Now().After(deadline):
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines after the requests, want at most %d (before them):\n%s", n, want, bytes.TrimSpace(buf))
			return n
		}
		last = n
	}
}

// Memory grows with the body bytes received, not with the bytes announced:
// 256 connections that each announce a body of 1 MiB (the limit) and send
// 100 bytes of it hold far less than 256 MiB of heap while they wait, and
// the server still answers. This measures the heap of a real server on
// loopback once every handler is waiting for its body; it times nothing.
func TestAnnouncedBodyCostsNothing(t *testing.T) {
	s := newFaultService(t)
	addr := strings.TrimPrefix(s.url, "http://")
	const conns = 256
	const announced = 1 << 20

	heapNow := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heapNow()
	for range conns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", announced)
		if _, err := io.WriteString(conn, head+`{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"`+strings.Repeat("x", 30)); err != nil {
			t.Fatal(err)
		}
	}
	// Wait (bounded) until every handler is reading its body.
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; n < conns; n = goroutinesIn("rpc.(*Handler).readBody") {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d handlers reading their body after 30s", n, conns)
		}
		time.Sleep(20 * time.Millisecond)
	}
	during := heapNow()
	grown := int64(during) - int64(before)
	t.Logf("heap %d MiB before, %d MiB with %d connections announcing %d MiB each (%+d KiB)",
		before>>20, during>>20, conns, announced>>20, grown>>10)
	if limit := int64(32 << 20); grown > limit {
		t.Errorf("heap grew by %d MiB while %d connections announced 1 MiB and sent 100 bytes, want under %d MiB: memory follows the announcement",
			grown>>20, conns, limit>>20)
	}
	if r := postVerify(t, s.url); r.Error != nil || string(r.Result) != `{"active":false}` {
		t.Errorf("verify during the attack = %s %v, want active false", r.Result, r.Error)
	}
}

// goroutinesIn counts the goroutines whose stack contains fn.
func goroutinesIn(fn string) int {
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
		if bytes.Contains(g, []byte(fn)) {
			count++
		}
	}
	return count
}

// postVerify posts a verify of a garbage token to url.
func postVerify(t *testing.T, url string) faultReply {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"x"},"id":1}`))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	var r faultReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode reply: %v", err)
	}
	return r
}

// chunked hides a reader's length so that the client sends the body chunked,
// without a Content-Length.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }
