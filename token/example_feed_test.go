package token_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/token"
)

// feedServerSide plays sessiond with one closed session: it returns the
// token of that session, the JWK Set, and the signed revocation document
// that GET /revocations would serve at issuedAt, fresh for five minutes.
func feedServerSide() (closedToken string, jwks, doc []byte) {
	k, err := keys.Generate(keys.EdDSA, 0, issuedAt, issuedAt)
	if err != nil {
		log.Fatal(err)
	}
	pub := token.PublicKey{ID: k.ID, Algorithm: string(k.Algorithm), Key: k.Public()}
	if jwks, err = issue.MarshalJWKS([]token.PublicKey{pub}); err != nil {
		log.Fatal(err)
	}
	clock := func() time.Time { return issuedAt }
	closedToken, c, err := issue.New(fixedKey{k}, issue.WithClock(clock)).Issue(24 * time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	doc, err = issue.SignRevocations(fixedKey{k}, &token.RevocationList{
		Issuer: "sessiond", IssuedAt: issuedAt, FreshUntil: issuedAt.Add(5 * time.Minute),
		Epoch: "example", Seq: 1, Snapshot: true,
		Revoked: []token.Revoked{{ID: c.ID, Expires: c.Expires}},
	})
	if err != nil {
		log.Fatal(err)
	}
	return closedToken, jwks, doc
}

// Verify tokens against a JWK Set saved in a file, for a program that never
// reaches the server.
func ExampleLoadJWKS() {
	accessToken, jwksBytes, _ := serverSide(keys.EdDSA)
	file := filepath.Join(os.TempDir(), fmt.Sprintf("example-jwks-%d.json", os.Getpid()))
	if err := os.WriteFile(file, jwksBytes, 0o644); err != nil {
		log.Fatal(err)
	}
	defer os.Remove(file)

	set, err := token.LoadJWKS(file)
	if err != nil {
		log.Fatal(err)
	}
	v := token.NewVerifier(set, token.WithClock(func() time.Time { return issuedAt.Add(time.Hour) }))
	claims, err := v.Verify(context.Background(), accessToken)
	fmt.Println("valid:", err == nil, "until", claims.Expires.Format(time.RFC3339))

	// Output:
	// valid: true until 2026-11-02T12:00:00Z
}

// Refuse sessions closed at the server: WithFeed keeps a copy of its signed
// revocation list (GET /revocations), verified with the Verifier's own
// keys, issuer, leeway and clock. Run syncs it in the background; Verify
// waits for the first sync rather than answer without a list, and fails
// with ErrStale once the list is too old to trust.
func ExampleWithFeed() {
	closedToken, jwks, doc := feedServerSide()
	// Here a test server plays sessiond.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) { w.Write(jwks) })
	mux.HandleFunc("GET /revocations", func(w http.ResponseWriter, _ *http.Request) { w.Write(doc) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	now := issuedAt.Add(time.Minute)
	v := token.NewVerifier(token.NewRemoteJWKS(srv.URL+"/.well-known/jwks.json"),
		token.WithFeed(srv.URL+"/revocations"),
		token.WithClock(func() time.Time { return now }),
	)
	done := make(chan struct{})
	go func() { v.Feed().Run(ctx); close(done) }() // syncs every 10 s until ctx ends
	defer func() { cancel(); <-done }()

	_, err := v.Verify(ctx, closedToken)
	fmt.Println("closed session revoked:", errors.Is(err, token.ErrRevoked))

	now = issuedAt.Add(time.Hour) // no sync since: the list is stale
	_, err = v.Verify(ctx, closedToken)
	fmt.Println("stale list, validity unknown:", errors.Is(err, token.ErrStale), "invalid:", errors.Is(err, token.ErrInvalid))

	// Output:
	// closed session revoked: true
	// stale list, validity unknown: true invalid: false
}

// Start without network: a feed with WithFeedFile keeps the documents it
// receives in a file, and Run (or Load) starts from that file, so that a
// program that restarts while the server is unreachable still has the list
// it had. A list loaded from the file is fresh only until its own
// fresh_until; after that Verify fails with ErrStale, unless
// WithServeStale.
func ExampleRevocationFeed_Load() {
	closedToken, jwksBytes, doc := feedServerSide()
	file := filepath.Join(os.TempDir(), fmt.Sprintf("example-revocations-%d.jws", os.Getpid()))
	if err := os.WriteFile(file, append(doc, '\n'), 0o644); err != nil { // as a feed with WithFeedFile saves it
		log.Fatal(err)
	}
	defer os.Remove(file)
	set, err := token.ParseJWKS(jwksBytes)
	if err != nil {
		log.Fatal(err)
	}

	v := token.NewVerifier(set,
		token.WithFeed("", token.WithFeedFile(file)), // no URL: nothing to reach
		token.WithClock(func() time.Time { return issuedAt.Add(time.Minute) }),
	)
	if err := v.Feed().Load(context.Background(), file); err != nil {
		log.Fatal(err)
	}
	_, err = v.Verify(context.Background(), closedToken)
	fmt.Println("closed session revoked:", errors.Is(err, token.ErrRevoked))
	fmt.Println("ids loaded:", v.Feed().Status().Len)

	// Output:
	// closed session revoked: true
	// ids loaded: 1
}
