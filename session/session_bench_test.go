package session_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
)

// BenchmarkVerifyMethod is session.verify_session_token through the whole
// handler for a token verified before (the hot path: cache hit plus a
// revocation look-up in Badger), for comparison with rpc.BenchmarkHandlerSingle.
func BenchmarkVerifyMethod(b *testing.B) {
	s := newService(b)
	res, err := s.client.OpenSession(context.Background(), 0)
	if err != nil {
		b.Fatal(err)
	}
	body := `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"` + res.AccessToken + `"},"id":1}`
	benchmarkServe(b, s.handler, body, http.StatusOK)
}

// BenchmarkVerifyMethodCold is session.verify_session_token for tokens never
// verified before: JWT parsing, the signature check, a cache insertion and
// the revocation look-up. Compare with BenchmarkEd25519Verify in token.
func BenchmarkVerifyMethodCold(b *testing.B) {
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
	issuer := issue.New(ring)
	h := rpc.NewHandler(session.New(store, ring), rpc.HandlerOptions{})
	bodies := make([]string, b.N)
	for i := range bodies {
		tok, _, err := issuer.Issue(time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"` + tok + `"},"id":1}`
	}
	rd := new(benchBody)
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Body = rd
	w := &benchWriter{header: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rd.Reset([]byte(bodies[i]))
		req.ContentLength = int64(len(bodies[i]))
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status = %d", w.status)
		}
	}
}

// benchWriter is the least a ResponseWriter can be, so that the benchmark
// measures the handler and not the recorder.
type benchWriter struct {
	header http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// benchBody is a request body that can be rewound without allocating.
type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

// benchmarkServe serves body to h in a loop and checks the status.
func benchmarkServe(b *testing.B, h http.Handler, body string, wantStatus int) {
	b.Helper()
	rd := new(benchBody)
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Body = rd
	req.ContentLength = int64(len(body))
	w := &benchWriter{header: make(http.Header)}
	raw := []byte(body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rd.Reset(raw)
		h.ServeHTTP(w, req)
		if w.status != wantStatus {
			b.Fatalf("status = %d, want %d", w.status, wantStatus)
		}
	}
}
