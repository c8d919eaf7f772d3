package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/sessiond/sessiond/rpc"
)

// testEnv is what the test methods share with a test.
type testEnv struct {
	counter atomic.Int64 // incremented by notify_counter
	logs    syncBuffer   // the handler's log
}

// syncBuffer is an io.Writer safe for the handler's concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type ctxKey struct{}

// secretFailure is the internal text that must never reach a client.
const secretFailure = "database password is hunter2"

func (env *testEnv) methods() map[string]rpc.Method {
	return map[string]rpc.Method{
		"echo": {
			Params: []string{"value"},
			Call: func(_ context.Context, p rpc.Params) (any, error) {
				v, _ := p.Get("value")
				return v, nil
			},
		},
		"sum": {
			Params: []string{"a", "b"},
			Call: func(_ context.Context, p rpc.Params) (any, error) {
				var total int
				for _, name := range []string{"a", "b"} {
					raw, ok := p.Get(name)
					if !ok {
						return nil, rpc.InvalidParams("missing %s", name)
					}
					var n int
					if err := json.Unmarshal(raw, &n); err != nil {
						return nil, rpc.InvalidParams("%s must be an integer", name)
					}
					total += n
				}
				return total, nil
			},
		},
		"fail": {
			Call: func(context.Context, rpc.Params) (any, error) {
				return nil, errors.New(secretFailure)
			},
		},
		"panic": {
			Call: func(context.Context, rpc.Params) (any, error) {
				panic(secretFailure)
			},
		},
		"notify_counter": {
			Call: func(context.Context, rpc.Params) (any, error) {
				env.counter.Add(1)
				return nil, nil
			},
		},
		"typed_error": {
			Call: func(context.Context, rpc.Params) (any, error) {
				return nil, fmt.Errorf("wrapped: %w", &rpc.Error{Code: 42, Message: "custom", Data: map[string]int{"n": 1}})
			},
		},
		"bad_result": {
			Call: func(context.Context, rpc.Params) (any, error) {
				return func() {}, nil
			},
		},
		"context_value": {
			Call: func(ctx context.Context, _ rpc.Params) (any, error) {
				return ctx.Value(ctxKey{}), nil
			},
		},
	}
}

// newServer starts a real HTTP server on loopback with the test methods.
func newServer(t testing.TB, opts rpc.HandlerOptions) (*httptest.Server, *testEnv) {
	t.Helper()
	env := new(testEnv)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(&env.logs, nil))
	}
	srv := httptest.NewServer(rpc.NewHandler(env.methods(), opts))
	t.Cleanup(srv.Close)
	return srv, env
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with a known Content-Length; contentType "" sends none.
func do(t testing.TB, method, url, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func post(t testing.TB, url, body string) response {
	t.Helper()
	return do(t, http.MethodPost, url, "application/json", strings.NewReader(body))
}

// handlerCase is one request body and the reply it must get. The fuzzer is
// seeded from these bodies.
type handlerCase struct {
	name string
	body string
	// want is the expected response, compared as JSON; "" means HTTP 204 and
	// no body. An error object's "message" and "data" are compared only if
	// want has them.
	want string
	// wantID, if set, is the exact bytes the (single) response's id must have.
	wantID string
	// wantMessage, if set, must be a substring of the (single) error's message.
	wantMessage string
	// wantExact makes the body comparison byte for byte.
	wantExact bool
}

var handlerCases = []handlerCase{
	// The examples of https://www.jsonrpc.org/specification#examples,
	// adapted to the test methods.
	{
		name: "spec/positional params",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": [42, 23], "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": 65, "id": 1}`,
	},
	{
		name: "spec/positional params again",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": [23, 42], "id": 2}`,
		want: `{"jsonrpc": "2.0", "result": 65, "id": 2}`,
	},
	{
		name: "spec/named params",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": {"a": 23, "b": 42}, "id": 3}`,
		want: `{"jsonrpc": "2.0", "result": 65, "id": 3}`,
	},
	{
		name: "spec/named params in another order",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": {"b": 42, "a": 23}, "id": 4}`,
		want: `{"jsonrpc": "2.0", "result": 65, "id": 4}`,
	},
	{
		name: "spec/notification",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": [1]}`,
	},
	{
		name: "spec/notification of a method with no params",
		body: `{"jsonrpc": "2.0", "method": "notify_counter"}`,
	},
	{
		name: "spec/notification of a non-existent method",
		body: `{"jsonrpc": "2.0", "method": "foobar"}`,
	},
	{
		name:        "spec/non-existent method",
		body:        `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
		want:        `{"jsonrpc": "2.0", "error": {"code": -32601}, "id": "1"}`,
		wantMessage: "foobar",
	},
	{
		name: "spec/invalid JSON",
		body: `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "spec/invalid Request object",
		body: `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "spec/batch with invalid JSON",
		body: `[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2], "id": "1"},
  {"jsonrpc": "2.0", "method"
]`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "spec/empty array",
		body: `[]`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "spec/non-empty invalid batch",
		body: `[1]`,
		want: `[{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}]`,
	},
	{
		name: "spec/invalid batch",
		body: `[1,2,3]`,
		want: `[
  {"jsonrpc": "2.0", "error": {"code": -32600}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}
]`,
	},
	{
		name: "spec/mixed batch",
		body: `[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2], "id": "1"},
  {"jsonrpc": "2.0", "method": "notify_counter"},
  {"jsonrpc": "2.0", "method": "sum", "params": [42,23], "id": "2"},
  {"foo": "boo"},
  {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
  {"jsonrpc": "2.0", "method": "echo", "params": {"value": ["hello", 5]}, "id": "9"}
]`,
		want: `[
  {"jsonrpc": "2.0", "result": 3, "id": "1"},
  {"jsonrpc": "2.0", "result": 65, "id": "2"},
  {"jsonrpc": "2.0", "error": {"code": -32600}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32601}, "id": "5"},
  {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
]`,
	},
	{
		name: "spec/all notifications",
		body: `[
  {"jsonrpc": "2.0", "method": "notify_counter", "params": []},
  {"jsonrpc": "2.0", "method": "echo", "params": [7]}
]`,
	},

	// The user's API documentation has a trailing comma in an example.
	{
		name: "trailing comma/the API document's open_session example",
		body: `{
"jsonrpc": "2.0",
"method": "echo",
"params": {
"value": null,
},
"id": "jsonrpc_id"
}`,
		want:   `{"jsonrpc": "2.0", "result": null, "id": "jsonrpc_id"}`,
		wantID: `"jsonrpc_id"`,
	},
	{
		name: "trailing comma/in the envelope",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1 , }`,
		want: `{"jsonrpc": "2.0", "result": 1, "id": 1}`,
	},
	{
		name: "trailing comma/in positional params",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": [1, 2,], "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": 3, "id": 1}`,
	},
	{
		name: "trailing comma/in a batch",
		body: `[{"jsonrpc": "2.0", "method": "sum", "params": [1, 2], "id": 1},]`,
		want: `[{"jsonrpc": "2.0", "result": 3, "id": 1}]`,
	},
	{
		name: "trailing comma/inside a string is kept",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": {"value": "a,} \",]\\",}, "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": "a,} \",]\\", "id": 1}`,
	},
	{
		name: "trailing comma/two commas",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": [1, 2,,], "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "trailing comma/alone in an array",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": [,], "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "trailing comma/alone in an object",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": {,}, "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "trailing comma/after a member name",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": {"value":,}, "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "trailing comma/with another error",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": [1,], "id": 1} x`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "not JSON/comment",
		body: `{"jsonrpc": "2.0", /* hi */ "method": "echo", "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "not JSON/single quotes",
		body: `{'jsonrpc': '2.0', 'method': 'echo', 'id': 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "not JSON/empty body",
		body: ``,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "not JSON/whitespace",
		body: " \r\n\t",
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},
	{
		name: "not JSON/two values",
		body: `{"jsonrpc": "2.0", "method": "echo", "id": 1} {}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32700}, "id": null}`,
	},

	// Ids come back byte for byte.
	{
		name:   "id/string",
		body:   `{"jsonrpc": "2.0", "method": "echo", "params": [true], "id": "abc"}`,
		want:   `{"jsonrpc": "2.0", "result": true, "id": "abc"}`,
		wantID: `"abc"`,
	},
	{
		name:   "id/string with escapes",
		body:   `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": "a\u00e9\"\/é"}`,
		want:   `{"jsonrpc": "2.0", "result": 1, "id": "aé\"/é"}`,
		wantID: `"a\u00e9\"\/é"`,
	},
	{
		name:   "id/integer",
		body:   `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 7}`,
		want:   `{"jsonrpc": "2.0", "result": 1, "id": 7}`,
		wantID: `7`,
	},
	{
		name:   "id/huge integer",
		body:   `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 12345678901234567890123}`,
		wantID: `12345678901234567890123`,
		want:   `{"jsonrpc": "2.0", "result": 1, "id": 12345678901234567890123}`,
	},
	{
		name:   "id/float with exponent",
		body:   `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1.50e3}`,
		want:   `{"jsonrpc": "2.0", "result": 1, "id": 1500}`,
		wantID: `1.50e3`,
	},
	{
		name:   "id/negative zero",
		body:   `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": -0}`,
		want:   `{"jsonrpc": "2.0", "result": 1, "id": 0}`,
		wantID: `-0`,
	},
	{
		name:   "id/on an error",
		body:   `{"jsonrpc": "2.0", "method": "nope", "id": -1.5E-7}`,
		want:   `{"jsonrpc": "2.0", "error": {"code": -32601}, "id": -1.5E-7}`,
		wantID: `-1.5E-7`,
	},
	{
		name:   "id/null is not a notification",
		body:   `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": null}`,
		want:   `{"jsonrpc": "2.0", "result": 1, "id": null}`,
		wantID: `null`,
	},
	{
		name: "id/absent is a notification",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": [1]}`,
	},
	{
		name:   "id/object",
		body:   `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": {"a": 1}}`,
		want:   `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
		wantID: `null`,
	},
	{
		name: "id/array",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": [1]}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "id/bool",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": true}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name:   "id/duplicate member, last wins",
		body:   `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1, "id": "two"}`,
		want:   `{"jsonrpc": "2.0", "result": 1, "id": "two"}`,
		wantID: `"two"`,
	},

	// Request validation.
	{
		name:        "request/jsonrpc 1.0",
		body:        `{"jsonrpc": "1.0", "method": "echo", "id": 1}`,
		want:        `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
		wantMessage: "jsonrpc",
	},
	{
		name: "request/jsonrpc a number",
		body: `{"jsonrpc": 2.0, "method": "echo", "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "request/jsonrpc missing",
		body: `{"method": "echo", "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "request/jsonrpc escaped",
		body: `{"jsonrpc": "\u0032.0", "method": "echo", "params": [1], "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": 1, "id": 1}`,
	},
	{
		name:        "request/method missing",
		body:        `{"jsonrpc": "2.0", "id": 1}`,
		want:        `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
		wantMessage: "method",
	},
	{
		name: "request/method null",
		body: `{"jsonrpc": "2.0", "method": null, "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "request/member names are case-sensitive",
		body: `{"jsonrpc": "2.0", "Method": "echo", "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "request/escaped member name",
		body: `{"jsonrpc": "2.0", "\u006dethod": "ech\u006f", "params": [1], "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": 1, "id": 1}`,
	},
	{
		name: "request/unknown members are ignored",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1, "extra": {"x": [1]}}`,
		want: `{"jsonrpc": "2.0", "result": 1, "id": 1}`,
	},
	{
		name:        "request/params a string",
		body:        `{"jsonrpc": "2.0", "method": "echo", "params": "bar", "id": 1}`,
		want:        `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
		wantMessage: "params",
	},
	{
		name: "request/params a number",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": 1, "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "request/params null is absent",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": null, "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": null, "id": 1}`,
	},
	{
		name: "request/invalid notification is answered",
		body: `{"jsonrpc": "2.0", "method": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	// RFC 8259: JSON text is UTF-8. Ids are echoed byte for byte, so a
	// request with invalid UTF-8 anywhere is not a Request: echoing its id
	// (or a param) would make the reply invalid JSON.
	{
		name:        "request/invalid UTF-8 in the id",
		body:        "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"params\": [1], \"id\": \"\xfe\"}",
		want:        `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
		wantMessage: "UTF-8",
	},
	{
		name:        "request/invalid UTF-8 in the params",
		body:        "{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"params\": [\"a\xffb\"], \"id\": 1}",
		want:        `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
		wantMessage: "UTF-8",
	},
	{
		name:        "request/invalid UTF-8 in the method",
		body:        "{\"jsonrpc\": \"2.0\", \"method\": \"ech\xc3\", \"id\": 1}",
		want:        `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
		wantMessage: "UTF-8",
	},
	{
		name: "batch/invalid UTF-8 in one request",
		body: "[{\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"params\": [1], \"id\": \"\xed\xa0\x80\"}, {\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"params\": [\"\u00e9t\u00e9 é\"], \"id\": \"é\"}]",
		want: `[{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}, {"jsonrpc": "2.0", "result": "été é", "id": "é"}]`,
	},
	{
		name: "request/a number",
		body: `1`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "request/a string",
		body: `"hello"`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "request/null",
		body: `null`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`,
	},
	{
		name: "request/reserved rpc. method",
		body: `{"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32601}, "id": 1}`,
	},
	{
		name: "request/surrounding whitespace",
		body: "\r\n\t {\"jsonrpc\": \"2.0\", \"method\": \"echo\", \"params\": [1], \"id\": 1} \n",
		want: `{"jsonrpc": "2.0", "result": 1, "id": 1}`,
	},

	// Params.
	{
		name:        "params/unknown name",
		body:        `{"jsonrpc": "2.0", "method": "sum", "params": {"a": 1, "c": 2}, "id": 1}`,
		want:        `{"jsonrpc": "2.0", "error": {"code": -32602}, "id": 1}`,
		wantMessage: `unknown parameter "c", allowed: "a", "b"`,
	},
	{
		name:        "params/unknown name, no params",
		body:        `{"jsonrpc": "2.0", "method": "fail", "params": {"a": 1}, "id": 1}`,
		want:        `{"jsonrpc": "2.0", "error": {"code": -32602}, "id": 1}`,
		wantMessage: `unknown parameter "a"`,
	},
	{
		name:        "params/too many positional",
		body:        `{"jsonrpc": "2.0", "method": "sum", "params": [1, 2, 3], "id": 1}`,
		want:        `{"jsonrpc": "2.0", "error": {"code": -32602}, "id": 1}`,
		wantMessage: "at most 2",
	},
	{
		name:        "params/missing trailing positional",
		body:        `{"jsonrpc": "2.0", "method": "sum", "params": [1], "id": 1}`,
		want:        `{"jsonrpc": "2.0", "error": {"code": -32602}, "id": 1}`,
		wantMessage: "missing b",
	},
	{
		name: "params/missing named",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": {"b": 1}, "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32602, "message": "missing a"}, "id": 1}`,
	},
	{
		name: "params/not numbers",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": ["1", 2], "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32602, "message": "a must be an integer"}, "id": 1}`,
	},
	{
		name: "params/null counts as present",
		body: `{"jsonrpc": "2.0", "method": "sum", "params": [null, 2], "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": 2, "id": 1}`,
	},
	{
		name: "params/duplicate name, last wins",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": {"value": 1, "value": 2}, "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": 2, "id": 1}`,
	},
	{
		name: "params/escaped name",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": {"valu\u0065": 3}, "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": 3, "id": 1}`,
	},
	{
		name: "params/empty array",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": [], "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": null, "id": 1}`,
	},
	{
		name: "params/nested value comes back",
		body: `{"jsonrpc": "2.0", "method": "echo", "params": [{"a": [1, {"b": "]}"}], "c": null}], "id": 1}`,
		want: `{"jsonrpc": "2.0", "result": {"a": [1, {"b": "]}"}], "c": null}, "id": 1}`,
	},

	// Results and errors.
	{
		name:      "result/member order",
		body:      `{"jsonrpc": "2.0", "method": "sum", "params": [42, 23], "id": 1}`,
		want:      `{"jsonrpc":"2.0","result":65,"id":1}`,
		wantExact: true,
	},
	{
		name:      "result/nil is null",
		body:      `{"jsonrpc": "2.0", "method": "notify_counter", "id": 1}`,
		want:      `{"jsonrpc":"2.0","result":null,"id":1}`,
		wantExact: true,
	},
	{
		name:      "error/member order",
		body:      `{"jsonrpc": "2.0", "method": "fail", "id": "x"}`,
		want:      `{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"},"id":"x"}`,
		wantExact: true,
	},
	{
		name: "error/internal error hides the message",
		body: `{"jsonrpc": "2.0", "method": "fail", "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32603, "message": "internal error"}, "id": 1}`,
	},
	{
		name: "error/panic is recovered",
		body: `{"jsonrpc": "2.0", "method": "panic", "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32603, "message": "internal error"}, "id": 1}`,
	},
	{
		name: "error/wrapped *Error is sent as is",
		body: `{"jsonrpc": "2.0", "method": "typed_error", "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": 42, "message": "custom", "data": {"n": 1}}, "id": 1}`,
	},
	{
		name: "error/result that does not encode",
		body: `{"jsonrpc": "2.0", "method": "bad_result", "id": 1}`,
		want: `{"jsonrpc": "2.0", "error": {"code": -32603, "message": "internal error"}, "id": 1}`,
	},
	{
		name: "error/notifications are not answered",
		body: `[{"jsonrpc": "2.0", "method": "fail"}, {"jsonrpc": "2.0", "method": "panic"}, {"jsonrpc": "2.0", "method": "sum", "params": [1, 2, 3]}]`,
	},
	{
		name: "batch/order is kept",
		body: `[{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 3}, {"jsonrpc": "2.0", "method": "echo", "params": [2], "id": 1}, {"jsonrpc": "2.0", "method": "echo", "params": [3], "id": 2}]`,
		want: `[{"jsonrpc": "2.0", "result": 1, "id": 3}, {"jsonrpc": "2.0", "result": 2, "id": 1}, {"jsonrpc": "2.0", "result": 3, "id": 2}]`,
	},
	{
		name: "batch/nested batch is invalid",
		body: `[[{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1}]]`,
		want: `[{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}]`,
	},
	{
		name: "batch/one notification",
		body: `[{"jsonrpc": "2.0", "method": "echo", "params": [1]}]`,
	},
}

func TestHandler(t *testing.T) {
	srv, _ := newServer(t, rpc.HandlerOptions{})
	for _, tc := range handlerCases {
		t.Run(tc.name, func(t *testing.T) {
			res := post(t, srv.URL, tc.body)
			if tc.want == "" {
				if res.status != http.StatusNoContent || len(res.body) != 0 {
					t.Fatalf("reply = %d %q, want 204 and no body", res.status, res.body)
				}
				return
			}
			if res.status != http.StatusOK {
				t.Fatalf("status = %d, want 200", res.status)
			}
			if got := res.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			checkEnvelopes(t, res.body)
			if tc.wantExact {
				if string(res.body) != tc.want {
					t.Errorf("body = %s, want %s", res.body, tc.want)
				}
			} else {
				assertJSON(t, res.body, tc.want)
			}
			if tc.wantID != "" || tc.wantMessage != "" {
				var single struct {
					ID    json.RawMessage `json:"id"`
					Error *rpc.Error      `json:"error"`
				}
				if err := json.Unmarshal(res.body, &single); err != nil {
					t.Fatalf("decode %s: %v", res.body, err)
				}
				if tc.wantID != "" && string(single.ID) != tc.wantID {
					t.Errorf("id = %s, want %s", single.ID, tc.wantID)
				}
				if tc.wantMessage != "" && (single.Error == nil || !strings.Contains(single.Error.Message, tc.wantMessage)) {
					t.Errorf("error = %+v, want a message containing %q", single.Error, tc.wantMessage)
				}
			}
			if strings.Contains(string(res.body), secretFailure) {
				t.Errorf("body %s leaks the internal error", res.body)
			}
		})
	}
}

// checkEnvelopes checks the invariants of every response: valid JSON, a
// response object or a non-empty array of them, each with jsonrpc "2.0", an
// id and exactly one of result and error.
func checkEnvelopes(t testing.TB, body []byte) {
	t.Helper()
	if err := envelopeProblem(body); err != nil {
		t.Errorf("%v in %s", err, body)
	}
}

func envelopeProblem(body []byte) error {
	// encoding/json accepts invalid UTF-8 in strings (json.Valid too), but
	// RFC 8259 does not: JSON text is UTF-8.
	if !utf8.Valid(body) {
		return errors.New("reply is not valid UTF-8, so not JSON (RFC 8259)")
	}
	var objects []map[string]json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		if err := json.Unmarshal(body, &objects); err != nil {
			return fmt.Errorf("batch response is not an array of objects: %v", err)
		}
		if len(objects) == 0 {
			return errors.New("empty batch response")
		}
	} else {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(body, &one); err != nil || one == nil {
			return fmt.Errorf("response is not an object: %v", err)
		}
		objects = append(objects, one)
	}
	for _, o := range objects {
		if v := string(o["jsonrpc"]); v != `"2.0"` {
			return fmt.Errorf("jsonrpc = %s, want \"2.0\"", v)
		}
		if _, ok := o["id"]; !ok {
			return errors.New("response without an id")
		}
		_, hasResult := o["result"]
		rawErr, hasError := o["error"]
		if hasResult == hasError {
			return fmt.Errorf("has result %v, has error %v; want exactly one", hasResult, hasError)
		}
		if len(o) != 3 {
			return fmt.Errorf("response has %d members, want 3", len(o))
		}
		if hasError {
			var e struct {
				Code    *int    `json:"code"`
				Message *string `json:"message"`
			}
			if err := json.Unmarshal(rawErr, &e); err != nil || e.Code == nil || e.Message == nil {
				return fmt.Errorf("bad error object %s", rawErr)
			}
		}
	}
	return nil
}

// assertJSON compares got and want as JSON values. Where want has an object
// without "message" or "data", those members of got are ignored.
func assertJSON(t testing.TB, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response %s is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(prune(g, w), w) {
		t.Errorf("response = %s, want %s", got, want)
	}
}

// prune drops from got the "message" and "data" members that want leaves out.
func prune(got, want any) any {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return got
		}
		out := make(map[string]any, len(g))
		for k, v := range g {
			if _, inWant := w[k]; !inWant && (k == "message" || k == "data") {
				continue
			}
			out[k] = prune(v, w[k])
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return got
		}
		out := make([]any, len(g))
		for i := range g {
			out[i] = prune(g[i], w[i])
		}
		return out
	}
	return got
}

func TestMethodNotAllowed(t *testing.T) {
	srv, _ := newServer(t, rpc.HandlerOptions{})
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		t.Run(method, func(t *testing.T) {
			res := do(t, method, srv.URL, "application/json", strings.NewReader(`{"jsonrpc": "2.0", "method": "echo", "id": 1}`))
			if res.status != http.StatusMethodNotAllowed {
				t.Errorf("status = %d, want 405", res.status)
			}
			if got := res.header.Get("Allow"); got != "POST" {
				t.Errorf("Allow = %q, want POST", got)
			}
			if got := res.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			assertJSON(t, res.body, `{"jsonrpc": "2.0", "error": {"code": -32600, "message": "method not allowed, use POST"}, "id": null}`)
		})
	}
}

// chunked hides a reader's length so that the client sends the body chunked,
// without a Content-Length.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestBodyTooLarge(t *testing.T) {
	const limit = 100
	srv, _ := newServer(t, rpc.HandlerOptions{MaxBodySize: limit})
	atLimit := `{"jsonrpc": "2.0", "method": "echo", "params": ["` + strings.Repeat("x", limit-61) + `"], "id": 1}`
	if len(atLimit) != limit {
		t.Fatalf("len(atLimit) = %d, want %d", len(atLimit), limit)
	}
	over := atLimit + " "
	tests := []struct {
		name       string
		body       io.Reader
		wantStatus int
	}{
		{"at the limit", strings.NewReader(atLimit), http.StatusOK},
		{"at the limit, chunked", chunked{strings.NewReader(atLimit)}, http.StatusOK},
		{"over the limit", strings.NewReader(over), http.StatusRequestEntityTooLarge},
		{"over the limit, chunked", chunked{strings.NewReader(over)}, http.StatusRequestEntityTooLarge},
		{"far over the limit, chunked", chunked{strings.NewReader(strings.Repeat(over, 10000))}, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, http.MethodPost, srv.URL, "application/json", tt.body)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.status, tt.wantStatus)
			}
			if got := res.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			checkEnvelopes(t, res.body)
			if tt.wantStatus == http.StatusOK {
				return
			}
			assertJSON(t, res.body, `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`)
			if !strings.Contains(string(res.body), "100 bytes") {
				t.Errorf("body = %s, want the limit in the message", res.body)
			}
		})
	}
}

func TestContentType(t *testing.T) {
	srv, _ := newServer(t, rpc.HandlerOptions{})
	const body = `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1}`
	tests := []struct {
		contentType string
		wantStatus  int
	}{
		{"application/json", http.StatusOK},
		{"application/json; charset=utf-8", http.StatusOK},
		{"Application/JSON ; charset=UTF-8", http.StatusOK},
		{"application/vnd.sessiond+json", http.StatusOK},
		{"application/json-rpc", http.StatusOK},
		{"", http.StatusOK},
		{"text/plain", http.StatusOK},
		{"text/plain; charset=utf-8", http.StatusOK},
		{"application/x-www-form-urlencoded", http.StatusOK}, // curl -d
		{"text/html", http.StatusUnsupportedMediaType},
		{"multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"application/xml", http.StatusUnsupportedMediaType},
		{"+json", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		name := tt.contentType
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			res := do(t, http.MethodPost, srv.URL, tt.contentType, strings.NewReader(body))
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", res.status, tt.wantStatus, res.body)
			}
			if got := res.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			want := `{"jsonrpc": "2.0", "result": 1, "id": 1}`
			if tt.wantStatus != http.StatusOK {
				want = `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`
			}
			assertJSON(t, res.body, want)
		})
	}
}

func TestMaxBatch(t *testing.T) {
	const call = `{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1}`
	batch := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat(call+",", n), ",") + "]" }
	tests := []struct {
		name      string
		maxBatch  int
		size      int
		wantError bool
	}{
		{"at the limit", 3, 3, false},
		{"over the limit", 3, 4, true},
		{"at the default limit", 0, 100, false},
		{"over the default limit", 0, 101, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, rpc.HandlerOptions{MaxBatch: tt.maxBatch})
			res := post(t, srv.URL, batch(tt.size))
			if res.status != http.StatusOK {
				t.Fatalf("status = %d, want 200", res.status)
			}
			checkEnvelopes(t, res.body)
			if !tt.wantError {
				var got []json.RawMessage
				if err := json.Unmarshal(res.body, &got); err != nil || len(got) != tt.size {
					t.Fatalf("got %d responses (%v), want %d", len(got), err, tt.size)
				}
				return
			}
			assertJSON(t, res.body, `{"jsonrpc": "2.0", "error": {"code": -32600}, "id": null}`)
			limit := tt.maxBatch
			if limit == 0 {
				limit = 100
			}
			if want := fmt.Sprintf("limit is %d", limit); !strings.Contains(string(res.body), want) {
				t.Errorf("body = %s, want it to contain %q", res.body, want)
			}
		})
	}
}

func TestNotificationsRunBeforeReply(t *testing.T) {
	const note = `{"jsonrpc": "2.0", "method": "notify_counter"}`
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCount  int64
	}{
		{"single", note, http.StatusNoContent, 1},
		{"batch of notifications", "[" + note + "," + note + "," + note + "]", http.StatusNoContent, 3},
		{"mixed batch", "[" + note + `, {"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1}]`, http.StatusOK, 1},
		{"with null params", `{"jsonrpc": "2.0", "method": "notify_counter", "params": null}`, http.StatusNoContent, 1},
		{"invalid params are not run", `{"jsonrpc": "2.0", "method": "notify_counter", "params": [1]}`, http.StatusNoContent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, env := newServer(t, rpc.HandlerOptions{})
			res := post(t, srv.URL, tt.body)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.status, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusNoContent && len(res.body) != 0 {
				t.Errorf("body = %q, want none", res.body)
			}
			if got := env.counter.Load(); got != tt.wantCount {
				t.Errorf("counter = %d just after the reply, want %d", got, tt.wantCount)
			}
		})
	}
}

func TestInternalErrorsAreLogged(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantLogs []string
	}{
		{"error", `{"jsonrpc": "2.0", "method": "fail", "id": 1}`, []string{"level=ERROR", "method=fail", secretFailure}},
		{"error of a notification", `{"jsonrpc": "2.0", "method": "fail"}`, []string{"level=ERROR", "method=fail", secretFailure}},
		{"panic", `{"jsonrpc": "2.0", "method": "panic", "id": 1}`, []string{"level=ERROR", "method=panic", secretFailure, "runtime/debug.Stack"}},
		{"panic of a notification", `[{"jsonrpc": "2.0", "method": "panic"}]`, []string{"method=panic", secretFailure, "runtime/debug.Stack"}},
		{"result that does not encode", `{"jsonrpc": "2.0", "method": "bad_result", "id": 1}`, []string{"level=ERROR", "method=bad_result"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, env := newServer(t, rpc.HandlerOptions{})
			res := post(t, srv.URL, tt.body)
			if strings.Contains(string(res.body), secretFailure) {
				t.Errorf("body %s leaks the internal error", res.body)
			}
			logs := env.logs.String()
			for _, want := range tt.wantLogs {
				if !strings.Contains(logs, want) {
					t.Errorf("log = %q, want it to contain %q", logs, want)
				}
			}
		})
	}
	t.Run("client errors are not logged", func(t *testing.T) {
		srv, env := newServer(t, rpc.HandlerOptions{})
		post(t, srv.URL, `{"jsonrpc": "2.0", "method": "sum", "params": ["x", 1], "id": 1}`)
		post(t, srv.URL, `{"jsonrpc": "2.0", "method": "typed_error", "id": 1}`)
		if logs := env.logs.String(); logs != "" {
			t.Errorf("log = %q, want nothing", logs)
		}
	})
}

func TestCallGetsRequestContext(t *testing.T) {
	env := new(testEnv)
	h := rpc.NewHandler(env.methods(), rpc.HandlerOptions{})
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"jsonrpc": "2.0", "method": "context_value", "id": 1}`))
	req = req.WithContext(context.WithValue(req.Context(), ctxKey{}, "from the request"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assertJSON(t, rec.Body.Bytes(), `{"jsonrpc": "2.0", "result": "from the request", "id": 1}`)
}

func TestNewHandlerCopiesTheTable(t *testing.T) {
	env := new(testEnv)
	methods := env.methods()
	srv := httptest.NewServer(rpc.NewHandler(methods, rpc.HandlerOptions{}))
	defer srv.Close()
	delete(methods, "echo")
	methods["sum"].Params[0] = "x"
	res := post(t, srv.URL, `[{"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1}, {"jsonrpc": "2.0", "method": "sum", "params": {"a": 1, "b": 2}, "id": 2}]`)
	assertJSON(t, res.body, `[{"jsonrpc": "2.0", "result": 1, "id": 1}, {"jsonrpc": "2.0", "result": 3, "id": 2}]`)
}

func TestNewHandlerPanicsOnBadTable(t *testing.T) {
	tests := []struct {
		name    string
		methods map[string]rpc.Method
	}{
		{"nil Call", map[string]rpc.Method{"m": {}}},
		{"duplicate parameter", map[string]rpc.Method{"m": {
			Params: []string{"a", "b", "a"},
			Call:   func(context.Context, rpc.Params) (any, error) { return nil, nil },
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("NewHandler did not panic")
				}
			}()
			rpc.NewHandler(tt.methods, rpc.HandlerOptions{})
		})
	}
}

func TestParamsGet(t *testing.T) {
	var got map[string]string
	h := rpc.NewHandler(map[string]rpc.Method{
		"m": {
			Params: []string{"a", "b", "c"},
			Call: func(_ context.Context, p rpc.Params) (any, error) {
				got = map[string]string{}
				for _, name := range []string{"a", "b", "c", "undeclared"} {
					if raw, ok := p.Get(name); ok {
						got[name] = string(raw)
					}
				}
				return nil, nil
			},
		},
	}, rpc.HandlerOptions{})
	tests := []struct {
		name   string
		params string
		want   map[string]string
	}{
		{"absent", ``, map[string]string{}},
		{"null", `, "params": null`, map[string]string{}},
		{"by position", `, "params": [1, {"x": [2]}, null]`, map[string]string{"a": "1", "b": `{"x": [2]}`, "c": "null"}},
		{"by position, missing trailing", `, "params": ["s"]`, map[string]string{"a": `"s"`}},
		{"by name", `, "params": {"c": "x", "a": null}`, map[string]string{"a": "null", "c": `"x"`}},
		{"by name, empty", `, "params": {}`, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			body := `{"jsonrpc": "2.0", "method": "m", "id": 1` + tt.params + `}`
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Get = %v, want %v (reply %s)", got, tt.want, rec.Body)
			}
		})
	}
}

func TestError(t *testing.T) {
	err := rpc.InvalidParams("missing %s", "token")
	if err.Code != rpc.CodeInvalidParams {
		t.Errorf("Code = %d, want %d", err.Code, rpc.CodeInvalidParams)
	}
	if got, want := err.Error(), "rpc error -32602: missing token"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func ExampleNewHandler() {
	h := rpc.NewHandler(map[string]rpc.Method{
		"greet": {
			Params: []string{"name"},
			Call: func(_ context.Context, p rpc.Params) (any, error) {
				raw, ok := p.Get("name")
				if !ok {
					return nil, rpc.InvalidParams("missing name")
				}
				var name string
				if err := json.Unmarshal(raw, &name); err != nil {
					return nil, rpc.InvalidParams("name must be a string")
				}
				return "hello, " + name, nil
			},
		},
	}, rpc.HandlerOptions{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, body := range []string{
		`{"jsonrpc": "2.0", "method": "greet", "params": {"name": "Ada"}, "id": 1}`,
		`{"jsonrpc": "2.0", "method": "greet", "params": ["Ada"], "id": "two"}`,
		`{"jsonrpc": "2.0", "method": "greet", "params": {"nom": "Ada"}, "id": 3}`,
	} {
		res, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		reply, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(string(reply))
	}
	// Output:
	// {"jsonrpc":"2.0","result":"hello, Ada","id":1}
	// {"jsonrpc":"2.0","result":"hello, Ada","id":"two"}
	// {"jsonrpc":"2.0","error":{"code":-32602,"message":"unknown parameter \"nom\", allowed: \"name\""},"id":3}
}

// benchWriter is the least a ResponseWriter can be, so that the benchmark
// measures the handler and not the recorder.
type benchWriter struct {
	header http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// benchBody is a request body that can be rewound without allocating.
type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

func benchmarkServe(b *testing.B, h http.Handler, body string, wantStatus int) {
	b.Helper()
	rd := new(benchBody)
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Body = rd
	req.ContentLength = int64(len(body))
	w := &benchWriter{header: make(http.Header)}
	raw := []byte(body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rd.Reset(raw)
		h.ServeHTTP(w, req)
		if w.status != wantStatus {
			b.Fatalf("status = %d, want %d", w.status, wantStatus)
		}
	}
}

var noop = map[string]rpc.Method{
	"noop": {Call: func(context.Context, rpc.Params) (any, error) { return nil, nil }},
	"echo": {
		Params: []string{"value"},
		Call: func(_ context.Context, p rpc.Params) (any, error) {
			v, _ := p.Get("value")
			return v, nil
		},
	},
}

func BenchmarkHandlerSingle(b *testing.B) {
	h := rpc.NewHandler(noop, rpc.HandlerOptions{})
	benchmarkServe(b, h, `{"jsonrpc":"2.0","method":"noop","id":1}`, http.StatusOK)
}

func BenchmarkHandlerSingleParams(b *testing.B) {
	h := rpc.NewHandler(noop, rpc.HandlerOptions{})
	benchmarkServe(b, h, `{"jsonrpc": "2.0", "method": "echo", "params": {"value": "00890640-ec03-4663-82ce-456ea993807d"}, "id": "jsonrpc_id"}`, http.StatusOK)
}

func BenchmarkHandlerBatch10(b *testing.B) {
	h := rpc.NewHandler(noop, rpc.HandlerOptions{})
	call := `{"jsonrpc": "2.0", "method": "echo", "params": ["00890640-ec03-4663-82ce-456ea993807d"], "id": 1}`
	benchmarkServe(b, h, "["+strings.TrimSuffix(strings.Repeat(call+",", 10), ",")+"]", http.StatusOK)
}

// BenchmarkBareHandler is the floor: a net/http handler that reads the body
// and writes a fixed reply, for comparison with BenchmarkHandlerSingle.
func BenchmarkBareHandler(b *testing.B) {
	reply := []byte(`{"jsonrpc":"2.0","result":null,"id":1}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_ = body
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(reply)
	})
	benchmarkServe(b, h, `{"jsonrpc":"2.0","method":"noop","id":1}`, http.StatusOK)
}
