// Package token verifies sessiond's session tokens offline, without the
// server or its storage. A [Verifier] checks a token against a [KeySource]:
// the server's JWK Set from a URL ([NewRemoteJWKS]), a file ([LoadJWKS]) or
// bytes ([ParseJWKS]). [WithFeed] adds a [RevocationFeed], a copy of the
// server's signed revocation list that fails closed once too old to trust:
//
//	keys := token.NewRemoteJWKS(base + "/.well-known/jwks.json")
//	v := token.NewVerifier(keys, token.WithFeed(base+"/revocations"))
//	go v.Feed().Run(ctx) // syncs every 10 s until ctx ends
//	claims, err := v.Verify(ctx, tok)
//
// A token that is not valid gives an error matching [ErrInvalid] and one
// precise reason; any other error means validity is unknown, and the caller
// must reject the token. Issuing is the server's: package issue.
// The token format is described at [Verifier].
package token
