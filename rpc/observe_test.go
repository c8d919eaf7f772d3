package rpc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sessiond/sessiond/rpc"
)

// observed is an outcome as the test compares it (the duration aside).
type observed struct {
	method       string
	code         int
	notification bool
}

// Observe is told of every request object the handler answers or runs,
// once, in order, with the method's name only when it is in the table, the
// code the client got (0 for a result), and the request's context; HTTP
// refusals with a JSON-RPC error object are outcomes too.
func TestObserve(t *testing.T) {
	var (
		mu  sync.Mutex
		got []observed
		ctx []any
	)
	env := new(testEnv)
	h := rpc.NewHandler(env.methods(), rpc.HandlerOptions{Observe: func(c context.Context, o rpc.Outcome) {
		mu.Lock()
		defer mu.Unlock()
		if o.Duration < 0 {
			t.Errorf("Outcome.Duration = %v, want >= 0", o.Duration)
		}
		got = append(got, observed{o.Method, o.Code, o.Notification})
		ctx = append(ctx, c.Value(ctxKey{}))
	}})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, "request")))
	}))
	srv.Start()
	t.Cleanup(srv.Close)

	tests := []struct {
		name string
		body string
		want []observed
	}{
		{"result", `{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}`, []observed{{"echo", 0, false}}},
		{"typed error", `{"jsonrpc":"2.0","method":"typed_error","id":1}`, []observed{{"typed_error", 42, false}}},
		{"internal error", `{"jsonrpc":"2.0","method":"fail","id":1}`, []observed{{"fail", rpc.CodeInternalError, false}}},
		{"panic", `{"jsonrpc":"2.0","method":"panic","id":1}`, []observed{{"panic", rpc.CodeInternalError, false}}},
		{"bad result", `{"jsonrpc":"2.0","method":"bad_result","id":1}`, []observed{{"bad_result", rpc.CodeInternalError, false}}},
		{"bad params", `{"jsonrpc":"2.0","method":"echo","params":{"nope":1},"id":1}`, []observed{{"echo", rpc.CodeInvalidParams, false}}},
		{"unknown method", `{"jsonrpc":"2.0","method":"secret-token-in-a-method-name","id":1}`, []observed{{"", rpc.CodeMethodNotFound, false}}},
		{"notification", `{"jsonrpc":"2.0","method":"notify_counter"}`, []observed{{"notify_counter", 0, true}}},
		{"unknown notification", `{"jsonrpc":"2.0","method":"nope"}`, []observed{{"", rpc.CodeMethodNotFound, true}}},
		{"invalid request", `{"jsonrpc":"1.0","method":"echo","id":1}`, []observed{{"", rpc.CodeInvalidRequest, false}}},
		{"parse error", `{"jsonrpc"`, []observed{{"", rpc.CodeParseError, false}}},
		{"not an object", `42`, []observed{{"", rpc.CodeInvalidRequest, false}}},
		{"empty batch", `[]`, []observed{{"", rpc.CodeInvalidRequest, false}}},
		{"batch", `[{"jsonrpc":"2.0","method":"echo","params":[1],"id":1},{"jsonrpc":"2.0","method":"notify_counter"},{"jsonrpc":"2.0","method":"sum","params":[1],"id":2},7]`,
			[]observed{{"echo", 0, false}, {"notify_counter", 0, true}, {"sum", rpc.CodeInvalidParams, false}, {"", rpc.CodeInvalidRequest, false}}},
		{"batch too large", "[" + strings.Repeat(`{"jsonrpc":"2.0","method":"echo","id":1},`, 100) + `{"jsonrpc":"2.0","method":"echo","id":1}]`,
			[]observed{{"", rpc.CodeInvalidRequest, false}}},
		{"body too large", `{"jsonrpc":"2.0","method":"echo","params":["` + strings.Repeat("x", 1<<20) + `"],"id":1}`,
			[]observed{{"", rpc.CodeInvalidRequest, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			got, ctx = nil, nil
			mu.Unlock()
			post(t, srv.URL, tt.body)
			mu.Lock()
			defer mu.Unlock()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("outcomes = %+v, want %+v", got, tt.want)
			}
			for i, v := range ctx {
				if v != "request" {
					t.Errorf("outcome %d: context value = %v, want the request's context", i, v)
				}
			}
		})
	}
	t.Run("method not allowed", func(t *testing.T) {
		mu.Lock()
		got = nil
		mu.Unlock()
		do(t, http.MethodGet, srv.URL, "", nil)
		mu.Lock()
		defer mu.Unlock()
		if want := []observed{{"", rpc.CodeInvalidRequest, false}}; !reflect.DeepEqual(got, want) {
			t.Errorf("outcomes = %+v, want %+v", got, want)
		}
	})
}
