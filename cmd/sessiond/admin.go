package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
)

// defaultAdminListen is the default of --admin-listen: loopback only, so
// that the operator's endpoints are off the public surface unless asked for.
const defaultAdminListen = "127.0.0.1:8081"

// adminServer serves the operator's endpoints on their own listener
// (--admin-listen): GET /healthz and GET /debug/stats (goroutines and heap).
// None of them is on the API listener, except /healthz, which load
// balancers probe there too. A nil *adminServer is one that is off.
type adminServer struct {
	srv  *http.Server
	addr string
	done chan error // Serve's result
}

// listenAdmin listens on addr ("off": no admin listener, a nil server) and
// serves the admin endpoints in a goroutine that shutdown ends.
func listenAdmin(addr string, log *slog.Logger) (*adminServer, error) {
	if addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w; give --admin-listen (SESSIOND_ADMIN_LISTEN) a free address, or off", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", serveHealthz)
	mux.HandleFunc("GET /debug/stats", serveStats)
	a := &adminServer{srv: newHTTPServer(mux, log), addr: ln.Addr().String(), done: make(chan error, 1)}
	log.Info("serving admin endpoints", "addr", a.addr)
	go func() { a.done <- a.srv.Serve(ln) }()
	return a, nil
}

// shutdown stops the admin server, waiting for its requests until ctx ends.
func (a *adminServer) shutdown(ctx context.Context) error {
	if a == nil {
		return nil
	}
	err := a.srv.Shutdown(ctx)
	if serr := <-a.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shut down the admin listener: %w", err)
	}
	return nil
}

// serveHealthz answers GET /healthz: 200 "ok" once serving.
func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}
