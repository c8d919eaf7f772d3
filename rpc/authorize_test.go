package rpc_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sessiond/sessiond/rpc"
)

type callerKey struct{}

// HandlerOptions.Authorize is asked before each call of a known method,
// with the request's context: a refusal answers that call only (in a
// batch the others are served), a refused notification is neither run nor
// answered, and an unknown method is "method not found" without asking.
func TestAuthorize(t *testing.T) {
	var ran atomic.Int64
	var asked []string
	methods := map[string]rpc.Method{
		"open":  {Call: func(context.Context, rpc.Params) (any, error) { ran.Add(1); return "opened", nil }},
		"close": {Params: []string{"x"}, Call: func(context.Context, rpc.Params) (any, error) { ran.Add(1); return "closed", nil }},
	}
	h := rpc.NewHandler(methods, rpc.HandlerOptions{Authorize: func(ctx context.Context, method string) *rpc.Error {
		who, _ := ctx.Value(callerKey{}).(string)
		asked = append(asked, who+":"+method)
		if method == "close" {
			return &rpc.Error{Code: -32003, Message: "forbidden: client " + who + " may not call " + method}
		}
		return nil
	}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, "app")))
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name, body, want string
		ran              int64
	}{
		{"allowed", `{"jsonrpc":"2.0","method":"open","id":1}`, `{"jsonrpc":"2.0","result":"opened","id":1}`, 1},
		{"refused", `{"jsonrpc":"2.0","method":"close","params":{"bad":1},"id":2}`,
			`{"jsonrpc":"2.0","error":{"code":-32003,"message":"forbidden: client app may not call close"},"id":2}`, 0},
		{"batch", `[{"jsonrpc":"2.0","method":"close","id":1},{"jsonrpc":"2.0","method":"open","id":2},{"jsonrpc":"2.0","method":"nope","id":3}]`,
			`[{"jsonrpc":"2.0","error":{"code":-32003,"message":"forbidden: client app may not call close"},"id":1},{"jsonrpc":"2.0","result":"opened","id":2},{"jsonrpc":"2.0","error":{"code":-32601,"message":"method not found: nope"},"id":3}]`, 1},
		{"refused notification", `{"jsonrpc":"2.0","method":"close"}`, ``, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ran.Store(0)
			resp, err := http.Post(srv.URL, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.TrimSpace(string(body)); got != tt.want {
				t.Errorf("reply = %s, want %s", got, tt.want)
			}
			if got := ran.Load(); got != tt.ran {
				t.Errorf("methods run = %d, want %d", got, tt.ran)
			}
		})
	}
	for _, a := range asked {
		if strings.Contains(a, "nope") || !strings.HasPrefix(a, "app:") {
			t.Errorf("Authorize asked %q, want only known methods with the request's context", a)
		}
	}
}
