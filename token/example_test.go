package token_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/issue"
	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/publish"
	"github.com/sessiond/sessiond/token"
)

// The examples play both sides: what the server does (generate a key,
// publish its JWK Set, issue a token) happens in serverSide, and the rest is
// what a program that verifies offline writes. They run on a fixed clock so
// that their output is always the same.
var issuedAt = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fixedKey is an issue.SigningKeys with one key, standing in for the
// server's keyring.
type fixedKey struct{ k *keys.Key }

func (f fixedKey) SigningKey() (kid, alg string, key crypto.Signer, err error) {
	return f.k.ID, string(f.k.Algorithm), f.k.Signer(), nil
}

// serverSide returns a session token valid for a day from issuedAt, and the
// JWK Set that sessiond would serve at /.well-known/jwks.json.
func serverSide(alg keys.Algorithm) (accessToken string, jwks []byte, pub token.PublicKey) {
	k, err := keys.Generate(alg, 0, issuedAt, issuedAt)
	if err != nil {
		log.Fatal(err)
	}
	pub = token.PublicKey{ID: k.ID, Algorithm: string(k.Algorithm), Key: k.Public()}
	jwks, err = issue.MarshalJWKS([]token.PublicKey{pub})
	if err != nil {
		log.Fatal(err)
	}
	clock := func() time.Time { return issuedAt }
	accessToken, _, err = issue.New(fixedKey{k}, issue.WithIssuer("sessiond"), issue.WithClock(clock)).Issue(24 * time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	return accessToken, jwks, pub
}

// Verify a token against a JWK Set held in bytes (token.LoadJWKS reads one
// from a file). Every reason a token is not valid matches token.ErrInvalid,
// and one precise reason such as token.ErrExpired.
func ExampleNewVerifier() {
	accessToken, jwksBytes, _ := serverSide(keys.EdDSA)

	set, err := token.ParseJWKS(jwksBytes)
	if err != nil {
		log.Fatal(err)
	}
	now := issuedAt.Add(time.Hour)
	v := token.NewVerifier(set, token.WithIssuer("sessiond"), token.WithClock(func() time.Time { return now }))

	claims, err := v.Verify(context.Background(), accessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("issuer:", claims.Issuer)
	fmt.Println("issued at:", claims.IssuedAt)
	fmt.Println("expires:", claims.Expires)
	fmt.Println("token id is a v4 UUID:", claims.ID.Version() == 4)

	// A day later the same token has expired.
	now = issuedAt.Add(25 * time.Hour)
	_, err = v.Verify(context.Background(), accessToken)
	fmt.Println("expired:", errors.Is(err, token.ErrExpired))
	fmt.Println("invalid:", errors.Is(err, token.ErrInvalid))

	// Output:
	// issuer: sessiond
	// issued at: 2026-11-01 12:00:00 +0000 UTC
	// expires: 2026-11-02 12:00:00 +0000 UTC
	// token id is a v4 UUID: true
	// expired: true
	// invalid: true
}

// Verify tokens against the keys a running sessiond publishes. The remote
// key source fetches the set on first use, caches it per Cache-Control,
// and fetches again (at most every 10 s by default) when a token names a
// key it does not know yet, such as a key that was just rotated in.
func ExampleNewRemoteJWKS() {
	accessToken, _, pub := serverSide(keys.ES256)
	// Here a test server plays sessiond; in a program the URL is that of
	// the real service, e.g. http://127.0.0.1:8080/.well-known/jwks.json.
	published := func() []token.PublicKey { return []token.PublicKey{pub} }
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/jwks.json", publish.NewJWKSHandler(published, 5*time.Minute, nil))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	keySource := token.NewRemoteJWKS(srv.URL + "/.well-known/jwks.json")
	v := token.NewVerifier(keySource,
		token.WithIssuer("sessiond"),
		token.WithLeeway(5*time.Second), // allow for clock skew
		token.WithClock(func() time.Time { return issuedAt.Add(time.Minute) }),
	)
	claims, err := v.Verify(context.Background(), accessToken)
	switch {
	case errors.Is(err, token.ErrInvalid):
		fmt.Println("not valid:", err)
	case err != nil:
		fmt.Println("cannot tell, reject:", err) // e.g. the keys are unreachable
	default:
		fmt.Println("valid until", claims.Expires.Format(time.RFC3339))
		fmt.Println("signed by the published key:", claims.KeyID == pub.ID)
	}

	// A token with a made-up signature is rejected.
	_, err = v.Verify(context.Background(), accessToken[:len(accessToken)-4]+"AAAA")
	fmt.Println("bad signature:", errors.Is(err, token.ErrSignature))

	// Output:
	// valid until 2026-11-02T12:00:00Z
	// signed by the published key: true
	// bad signature: true
}

// closedSessions is a program's own revocation list: the ids of the tokens
// whose sessions it has closed. Anything with an IsRevoked method will do,
// a database table for instance.
type closedSessions map[uuid.UUID]bool

func (c closedSessions) IsRevoked(_ context.Context, id uuid.UUID) (bool, error) {
	return c[id], nil
}

// Offline verification does not see the sessions closed at the server. A
// program that keeps its own list of revoked token ids plugs it in with
// WithRevocation; Verify consults it for every token that is otherwise
// valid, and an error from it makes Verify fail (closed).
func ExampleWithRevocation() {
	accessToken, jwksBytes, _ := serverSide(keys.EdDSA)
	set, err := token.ParseJWKS(jwksBytes)
	if err != nil {
		log.Fatal(err)
	}

	closed := closedSessions{}
	v := token.NewVerifier(set,
		token.WithRevocation(closed),
		token.WithClock(func() time.Time { return issuedAt.Add(time.Hour) }),
	)
	claims, err := v.Verify(context.Background(), accessToken)
	fmt.Println("before closing:", err)

	closed[claims.ID] = true // the program closes the session
	_, err = v.Verify(context.Background(), accessToken)
	fmt.Println("after closing:", err)
	fmt.Println("revoked:", errors.Is(err, token.ErrRevoked))

	// Output:
	// before closing: <nil>
	// after closing: token is revoked
	// revoked: true
}
