//go:build linux

package main

// This file is the hidden "serve-floor" command: the floor servers that
// http_floor and rpc_floor measure, on sessiond's own http.Server settings
// (server.NewHTTPServer), so that they differ from sessiond only in what
// they do per request.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/sessiond/sessiond/rpc"
	sessiond "github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/session"
)

// floorReply is the reply of a successful session.verify_session_token, so
// that the load generator checks the floors like sessiond.
var floorReply = []byte(`{"jsonrpc":"2.0","result":{"active":true},"id":1}`)

// serveFloor (serve-floor KIND --addr-file FILE) answers every POST / with
// floorReply, either straight from an http.Handler (KIND http, the HTTP
// limit) or through the project's JSON-RPC layer with a method that does
// nothing (rpc: verify_hot's requests byte for byte), and GET /healthz with
// 200, until ctx ends. It writes its address to FILE once listening.
func serveFloor(ctx context.Context, args []string) error {
	if len(args) != 3 || args[1] != "--addr-file" || args[0] != "http" && args[0] != "rpc" {
		return fmt.Errorf("usage: serve-floor http|rpc --addr-file FILE, not %q", args)
	}
	// Read the body as sessiond does, and answer with the headers its
	// JSON-RPC layer sets.
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(floorReply))}
		w.Write(floorReply)
	})
	if args[0] == "rpc" {
		nop := rpc.Method{Params: []string{"token"}, Call: func(context.Context, rpc.Params) (any, error) { return session.VerifyResult{Active: true}, nil }}
		h = rpc.NewHandler(map[string]rpc.Method{"session.verify_session_token": nop}, rpc.HandlerOptions{})
	}
	mux := http.NewServeMux()
	mux.Handle("/{$}", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	// In one rename, so that a reader sees all or nothing.
	if err = os.WriteFile(args[2]+".tmp", []byte(ln.Addr().String()+"\n"), 0o644); err == nil {
		err = os.Rename(args[2]+".tmp", args[2])
	}
	srv := sessiond.NewHTTPServer(mux, slog.Default())
	shut := make(chan error, 1)
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- srv.Shutdown(sctx)
	})
	if err == nil {
		if err = srv.Serve(ln); errors.Is(err, http.ErrServerClosed) {
			err = <-shut
		}
	}
	return err
}
