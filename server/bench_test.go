package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/server"
)

// BenchmarkServeVerify is one session.verify_session_token of a token
// verified before through the API listener's whole handler (request id,
// credentials, tarpit, JSON-RPC, the method, metrics and the request log
// line, formatted as text and discarded; log_warn: without it), without a
// socket, next to floor: a handler that reads the body and writes a
// constant reply (the benchmark tool's http_floor) through the same
// httptest request and recorder. The difference is what sessiond adds to
// net/http's own work per request, and its allocations.
func BenchmarkServeVerify(b *testing.B) {
	floor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","result":{"active":true},"id":1}`)
	})
	for _, c := range []struct {
		name string
		log  *slog.Logger // nil: floor
	}{
		{"floor", nil},
		{"log_info", slog.New(slog.NewTextHandler(io.Discard, nil))},
		{"log_warn", slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv := open(b, server.Config{Logger: c.log})
			res, err := client.New("http://"+srv.Addr()+"/", nil).OpenSession(context.Background(), time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			var h http.Handler = floor
			if c.log != nil {
				h = server.Handler(srv)
			}
			body := `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"` + res.AccessToken + `"},"id":1}`
			serve := func() *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w
			}
			if w := serve(); !strings.Contains(w.Body.String(), `"active":true`) {
				b.Fatalf("reply %d %s, want active", w.Code, w.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				serve()
			}
		})
	}
}
