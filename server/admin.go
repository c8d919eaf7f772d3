package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
)

// adminServer serves the operator's endpoints on their own listener
// (Config.AdminListen): GET /healthz and GET /debug/stats (goroutines and
// heap). None of them is on the API listener, except /healthz, which load
// balancers probe there too. A nil *adminServer is one that is off.
type adminServer struct {
	srv  *http.Server
	addr string
	done chan error // Serve's result
}

// listenAdmin listens on addr ("": no admin listener, a nil server) and
// serves the admin endpoints in a goroutine that shutdown ends.
func listenAdmin(ctx context.Context, addr string, log *slog.Logger) (*adminServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, &ListenError{Admin: true, Addr: addr, Err: err}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", serveHealthz)
	mux.HandleFunc("GET /debug/stats", serveStats)
	a := &adminServer{srv: NewHTTPServer(mux, log), addr: ln.Addr().String(), done: make(chan error, 1)}
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

// serveStats reports the process's goroutines and memory, for the soak run
// and for operators (GET /debug/stats). It says nothing about sessions.
func serveStats(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]uint64{
		"goroutines":       uint64(runtime.NumGoroutine()),
		"heap_alloc_bytes": m.HeapAlloc,
		"heap_sys_bytes":   m.HeapSys,
		"gc_cycles":        uint64(m.NumGC),
	})
}
