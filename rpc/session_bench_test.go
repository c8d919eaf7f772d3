package rpc_test

import (
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
	"github.com/sessiond/sessiond/token"
)

// BenchmarkVerifyMethod is session.verify_session_token through the whole
// handler for a token verified before (the hot path: cache hit plus a
// revocation look-up in Badger), for comparison with BenchmarkHandlerSingle.
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
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: rpc.DefaultMaxExpiresIn}, keys.KeyringOptions{})
	if err != nil {
		b.Fatal(err)
	}
	issuer := issue.New(ring)
	sessions := &rpc.Sessions{Issuer: issuer, Verifier: token.NewVerifier(ring), Revoker: store}
	h := rpc.NewHandler(sessions.Methods(), rpc.HandlerOptions{})
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
