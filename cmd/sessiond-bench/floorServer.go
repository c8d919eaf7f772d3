//go:build linux

package main

// This file is the hidden "serve-floor" command: the floor servers that
// http_floor and rpc_floor measure, on sessiond's own http.Server settings.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sessiond/sessiond/rpc"
	sessiond "github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/session"
)

// newFloorServer returns the http.Server that serves h with the settings of
// sessiond's API listener, so that the floors differ from sessiond only in
// what they do per request.
func newFloorServer(h http.Handler) *http.Server {
	return sessiond.NewHTTPServer(h, slog.Default())
}

// floorReply is what the floor servers answer, the reply of a successful
// session.verify_session_token, so that the load generator checks them
// like sessiond.
var floorReply = []byte(`{"jsonrpc":"2.0","result":{"active":true},"id":1}`)

// serveFloor answers every POST / with floorReply, either straight from an
// http.Handler (--kind http, the HTTP limit) or through the project's
// JSON-RPC layer with a method that does nothing (--kind rpc: verify_hot's
// requests byte for byte), and GET /healthz with 200, until ctx ends.
func serveFloor(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sessiond-bench serve-floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", "http", "http: a bare handler; rpc: rpc.NewHandler with a method that does nothing")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve HTTP on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Read the body as sessiond does, and answer with the headers its
	// JSON-RPC layer sets.
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(floorReply))}
		w.Write(floorReply)
	})
	if *kind == "rpc" {
		nop := rpc.Method{Params: []string{"token"}, Call: func(context.Context, rpc.Params) (any, error) { return session.VerifyResult{Active: true}, nil }}
		h = rpc.NewHandler(map[string]rpc.Method{"session.verify_session_token": nop}, rpc.HandlerOptions{})
	} else if *kind != "http" {
		return fmt.Errorf("--kind must be http or rpc, not %q", *kind)
	}
	mux := http.NewServeMux()
	mux.Handle("/{$}", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	srv := newFloorServer(mux)
	srv.Addr = *listen
	shut := make(chan error, 1)
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- srv.Shutdown(sctx)
	})
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		stop()
		return err
	}
	return <-shut
}
