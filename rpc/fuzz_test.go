package rpc_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/rpc"
)

// FuzzHandler feeds arbitrary bodies to the Handler. It calls ServeHTTP with a
// recorder rather than through a server, for throughput; the HTTP layer itself
// is covered by the tests, which use a real server.
func FuzzHandler(f *testing.F) {
	for _, tc := range handlerCases {
		f.Add(tc.body)
	}
	for _, s := range []string{
		`[{"jsonrpc": "2.0", "method": "sum", "params": {"a": 1, "b": 2,}, "id": [1,]},]`,
		`{"jsonrpc":"2.0","method":"echo","params":{"value":"\"\\,}"},"id":"\\"}`,
		`{"jsonrpc":"2.0","method":"echo","params":["` + strings.Repeat("x", 600) + `"],"id":1}`,
		"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"\xff\"],\"id\":\"\xfe\"}",
		`[` + strings.Repeat(`{"jsonrpc":"2.0","method":"echo","params":[1],"id":1},`, 5) + `]`,
	} {
		f.Add(s)
	}

	env := new(testEnv)
	// A small body limit so that the fuzzer reaches 413 too; the log is
	// discarded (a panicking method logs its stack on every run).
	h := rpc.NewHandler(env.methods(), rpc.HandlerOptions{MaxBodySize: 512, MaxBatch: 4})

	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
		res := rec.Result()
		got := rec.Body.Bytes()
		switch res.StatusCode {
		case http.StatusOK, http.StatusRequestEntityTooLarge:
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if !json.Valid(got) {
				t.Fatalf("body %q is not JSON", got)
			}
			if err := envelopeProblem(got); err != nil {
				t.Fatalf("%v in %s", err, got)
			}
		case http.StatusNoContent:
			if len(got) != 0 {
				t.Fatalf("204 with body %q", got)
			}
		default:
			t.Fatalf("status = %d, want 200, 204 or 413", res.StatusCode)
		}
		if res.StatusCode == http.StatusRequestEntityTooLarge && len(body) <= 512 {
			t.Fatalf("413 for a body of %d bytes", len(body))
		}
		if bytes.Contains(got, []byte(secretFailure)) {
			t.Fatalf("body %s leaks the internal error", got)
		}
		// A well-formed JSON body is never a parse error: leniency only
		// ever accepts more.
		var single struct {
			Error *rpc.Error `json:"error"`
		}
		if json.Valid([]byte(body)) && json.Unmarshal(got, &single) == nil &&
			single.Error != nil && single.Error.Code == rpc.CodeParseError {
			t.Fatalf("valid JSON %q answered with a parse error: %s", body, got)
		}
	})
}
