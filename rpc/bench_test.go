package rpc_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
)

// BenchmarkHandlerVerify is session.verify_session_token through
// rpc.Handler.ServeHTTP, with a reused request and writer, over a real
// Badger store and keyring: hot (a token verified before) and cold (a new
// token each time, the signature checked). allocs/op counts what a request
// costs the handler, the verifier and the store together.
func BenchmarkHandlerVerify(b *testing.B) {
	dir := b.TempDir()
	store, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: session.DefaultMaxExpiresIn}, keys.KeyringOptions{})
	if err != nil {
		b.Fatal(err)
	}
	h := rpc.NewHandler(session.New(store, ring), rpc.HandlerOptions{})
	issuer := issue.New(ring)
	body := func() string {
		tok, _, err := issuer.Issue(time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		return `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"` + tok + `"},"id":1}`
	}
	b.Run("hot", func(b *testing.B) {
		benchmarkServe(b, h, body(), http.StatusOK)
	})
	b.Run("cold", func(b *testing.B) {
		const n = 4096 // distinct tokens, more than a run of -benchtime 1s verifies
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = []byte(body())
		}
		rd := new(benchBody)
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.Header.Set("Content-Type", "application/json")
		req.Body = rd
		w := &benchWriter{header: make(http.Header)}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			// Past n the tokens come round again and hit the cache;
			// -benchtime 4000x keeps every one cold.
			rd.Reset(bodies[i%n])
			req.ContentLength = int64(len(bodies[i%n]))
			i++
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Fatalf("status = %d", w.status)
			}
		}
	})
}

// TestPooledBodiesConcurrent sends concurrent requests whose results point
// into their own bodies (echo returns its parameter as is): with the body
// buffers pooled, every reply must still carry its own request's value.
func TestPooledBodiesConcurrent(t *testing.T) {
	srv := httptest.NewServer(rpc.NewHandler(noop, rpc.HandlerOptions{}))
	defer srv.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				value := fmt.Sprintf("%q", fmt.Sprintf("g%d-i%d-%s", g, i, strings.Repeat("x", (g*100+i)%300)))
				resp, err := srv.Client().Post(srv.URL, "application/json",
					strings.NewReader(`{"jsonrpc":"2.0","method":"echo","params":[`+value+`],"id":1}`))
				if err != nil {
					errs <- err
					return
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := `{"jsonrpc":"2.0","result":` + value + `,"id":1}`; string(got) != want {
					errs <- fmt.Errorf("reply = %s, want %s", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
