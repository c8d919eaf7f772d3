package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/fastslog"
	"github.com/sessiond/sessiond/server"
)

// BenchmarkServeVerify is one session.verify_session_token of a token
// verified before through the API listener's whole handler (request id,
// credentials, tarpit, JSON-RPC, the method, metrics and the request log
// line, formatted as text and discarded; log_info_fast: by fastslog, as
// sessiond serve does; log_warn: without it), without a
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
		{"log_info_fast", slog.New(fastslog.NewTextHandler(io.Discard, nil))}, // as sessiond serve logs
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

// BenchmarkServeClose is one session.close_session of a token verified
// before, through the API listener's whole handler, from 64 goroutines so
// that closes share group commits as they do under load. Tokens are opened
// and verified (four times, as cmd/sessiond-bench does) in rounds of 4096
// (a quarter of the verifier's cache) with the timer stopped. ns/op is mostly the wait for the fsyncs; the CPU
// profile (-cpuprofile) shows what a close costs the server.
func BenchmarkServeClose(b *testing.B) {
	srv := open(b, server.Config{})
	h := server.Handler(srv)
	call := func(body string) string {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Body.String()
	}
	cl := client.New("http://"+srv.Addr()+"/", nil)
	const round, workers = 4096, 64
	b.ReportAllocs()
	for done := 0; done < b.N; {
		n := min(round, b.N-done)
		b.StopTimer()
		opened := make([]string, n)
		for i := range opened {
			res, err := cl.OpenSession(context.Background(), time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			opened[i] = res.AccessToken
		}
		// Each pass puts back in the cache what the previous one's random
		// evictions took (entries of earlier rounds fill it): after one
		// pass about a tenth of the closes would check a signature.
		for range 4 {
			for _, tok := range opened {
				if reply := call(`{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"` + tok + `"},"id":1}`); !strings.Contains(reply, `"active":true`) {
					b.Fatalf("verify: %s", reply)
				}
			}
		}
		toks := make(chan string, n)
		for _, tok := range opened {
			toks <- tok
		}
		close(toks)
		b.StartTimer()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for tok := range toks {
					if reply := call(`{"jsonrpc":"2.0","method":"session.close_session","params":{"token":"` + tok + `"},"id":1}`); !strings.Contains(reply, `"result":true`) {
						b.Errorf("close: %s", reply)
					}
				}
			})
		}
		wg.Wait()
		done += n
	}
}
