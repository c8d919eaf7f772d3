package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/rpc"
)

// server is a real JSON-RPC edge (rpc.Handler on loopback) whose
// session.open_session records the expires_in it was sent.
type server struct {
	url  string
	mu   sync.Mutex
	sent []string // raw expires_in of each open_session
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{}
	h := rpc.NewHandler(map[string]rpc.Method{
		"session.open_session": {Params: []string{"expires_in"}, Call: func(_ context.Context, p rpc.Params) (any, error) {
			raw, _ := p.Get("expires_in")
			s.mu.Lock()
			s.sent = append(s.sent, string(raw))
			s.mu.Unlock()
			return client.OpenResult{AccessToken: "tok", ExpiresIn: 60}, nil
		}},
		"session.verify_session_token": {Params: []string{"token"}, Call: func(_ context.Context, p rpc.Params) (any, error) {
			raw, _ := p.Get("token")
			if string(raw) != `"tok"` {
				return nil, rpc.InvalidParams("unknown token %s", raw)
			}
			return map[string]bool{"active": true}, nil
		}},
		"session.close_session": {Params: []string{"token"}, Call: func(context.Context, rpc.Params) (any, error) {
			return false, nil
		}},
	}, rpc.HandlerOptions{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/"
	return s
}

func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

// OpenSession sends whole seconds as they are and refuses any other
// duration before sending anything: 1500ms once became 1 and 500ms 0.
func TestOpenSessionDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		sent string // "" when nothing may be sent
	}{
		{0, "null"},
		{90 * time.Second, "90"},
		{-time.Second, "-1"}, // the server's to refuse
		{1500 * time.Millisecond, ""},
		{500 * time.Millisecond, ""},
		{time.Hour + time.Nanosecond, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			s := newServer(t)
			c := client.New(s.url, nil)
			res, err := c.OpenSession(context.Background(), tt.in)
			got := s.requests()
			if tt.sent == "" {
				if !errors.Is(err, client.ErrDuration) || !strings.Contains(err.Error(), tt.in.String()) || !strings.Contains(err.Error(), "whole seconds") {
					t.Errorf("OpenSession(%s) error = %v, want ErrDuration naming the duration", tt.in, err)
				}
				if len(got) != 0 {
					t.Errorf("OpenSession(%s) sent expires_in %v, want nothing sent", tt.in, got)
				}
				return
			}
			if err != nil || res.AccessToken != "tok" {
				t.Fatalf("OpenSession(%s) = %+v, %v", tt.in, res, err)
			}
			if len(got) != 1 || got[0] != tt.sent {
				t.Errorf("OpenSession(%s) sent expires_in %v, want [%s]", tt.in, got, tt.sent)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	s := newServer(t)
	c := client.New(s.url, nil)
	ctx := context.Background()
	if active, err := c.VerifySessionToken(ctx, "tok"); !active || err != nil {
		t.Errorf("VerifySessionToken() = %v, %v, want true", active, err)
	}
	_, err := c.VerifySessionToken(ctx, "other")
	if rpcErr, ok := errors.AsType[*client.Error](err); !ok || rpcErr.Code != rpc.CodeInvalidParams || !strings.Contains(rpcErr.Message, "unknown token") {
		t.Errorf("VerifySessionToken(other) error = %v, want *client.Error %d", err, rpc.CodeInvalidParams)
	}
	err = c.Call(ctx, "session.nope", nil, nil)
	if rpcErr, ok := errors.AsType[*client.Error](err); !ok || rpcErr.Code != rpc.CodeMethodNotFound {
		t.Errorf("Call(unknown method) error = %v, want *client.Error %d", err, rpc.CodeMethodNotFound)
	}
	if err := c.CloseSession(ctx, "tok"); err == nil || !strings.Contains(err.Error(), "false") {
		t.Errorf("CloseSession() answered false: error = %v, want one", err)
	}

	// Not JSON-RPC at all: a plain error with the HTTP status.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer plain.Close()
	_, err = client.New(plain.URL, nil).OpenSession(ctx, time.Minute)
	if _, ok := errors.AsType[*client.Error](err); ok || err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("OpenSession() against HTTP 503: error = %v, want a plain error naming the status", err)
	}

	// A reply to another request is refused.
	wrongID := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "result": true, "id": "999"})
	}))
	defer wrongID.Close()
	if err := client.New(wrongID.URL, nil).CloseSession(ctx, "tok"); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("CloseSession() with a wrong reply id: error = %v, want a mismatch", err)
	}
}

// The client costs its importers nothing but the standard library.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 1 || got[0] != "github.com/sessiond/sessiond/client" {
		t.Errorf("go list -deps ./client outside the standard library = %v, want only the client itself", got)
	}
}
