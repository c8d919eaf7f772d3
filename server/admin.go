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
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/google/uuid"
)

// adminServer serves the operator's endpoints on their own listener
// (Config.AdminListen): GET /metrics (Prometheus), GET /healthz, GET
// /readyz, Go's profiler under /debug/pprof/ and GET /debug/stats
// (goroutines and heap, which the soak benchmark reads). None of them is on
// the API listener, except /healthz, which load balancers probe there too.
// A nil *adminServer is one that is off.
type adminServer struct {
	srv  *http.Server
	addr string
	done chan error // Serve's result
}

// adminWriteTimeout is the admin server's WriteTimeout: longer than the
// API's, so that a CPU profile or a trace of the default 30 s fits.
const adminWriteTimeout = 2 * time.Minute

// listenAdmin listens on addr ("": no admin listener, a nil server) and
// serves h in a goroutine that shutdown ends.
func listenAdmin(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (*adminServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, &ListenError{Admin: true, Addr: addr, Err: err}
	}
	srv := NewHTTPServer(h, log)
	srv.WriteTimeout = adminWriteTimeout
	a := &adminServer{srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
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

// adminHandler is the admin listener's mux. The profiler's handlers are
// registered here only, never on the API's mux (nor is the API's mux
// http.DefaultServeMux, where importing net/http/pprof registers them too).
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.Handle("GET /metrics", s.metrics.handler(s.log))
	mux.HandleFunc("GET /debug/stats", serveStats)
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, …
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// readyTimeout bounds the store read of one GET /readyz.
const readyTimeout = 2 * time.Second

// serveReadyz answers GET /readyz: 200 "ok" when the server can serve
// requests, 503 with the first reason it cannot otherwise: "shutting down"
// once Close has begun, "store: …" when the revocation list does not
// answer a read (a look-up of an id nobody holds) within 2 s, "keys: …"
// when no signing key is active.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if reason := s.notReady(r.Context()); reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, reason+"\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// notReady returns why the server cannot serve, "" when it can.
func (s *Server) notReady(ctx context.Context) string {
	if s.closing.Load() {
		return "shutting down"
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := s.store.IsRevoked(ctx, uuid.Nil); err != nil {
		return "store: " + err.Error()
	}
	if _, _, _, err := s.ring.SigningKey(); err != nil {
		return "keys: " + err.Error()
	}
	return ""
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
