package rpc_test

import (
	"context"
	"net/http"
	"testing"
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
