// Package token verifies sessiond's session tokens offline: a Go program
// imports it to check a token without the server or its storage.
//
// # Start here
//
// A [Verifier] checks a token against a [KeySource]: the server's JWK Set
// fetched over HTTP ([NewRemoteJWKS]), read from a file ([LoadJWKS]) or
// from bytes ([ParseJWKS]). [NewVerifier] takes options for the issuer,
// clock-skew leeway and clock, and for revocation: [WithFeed] keeps a copy
// of the server's revocation list from its signed feed (GET /revocations),
// answered from memory, which fails closed once it is too old to trust;
// [WithRevocation] takes any other [RevocationChecker].
//
//	keys := token.NewRemoteJWKS(base + "/.well-known/jwks.json")
//	v := token.NewVerifier(keys, token.WithFeed(base+"/revocations"))
//	go v.Feed().Run(ctx) // syncs every 10 s until ctx ends
//	claims, err := v.Verify(ctx, tok)
//
// Issuing tokens and signing documents is the server's business: package
// issue.
//
// # Token format
//
// A session token is a JWS compact-serialised JWT (RFC 7519):
//
//	header:  {"alg":"EdDSA","kid":"<RFC 7638 thumbprint>","typ":"session+jwt"}
//	claims:  {"iss":"sessiond","exp":1767225600,"iat":1764633600,"jti":"<UUID>"}
//
// Verification pins the algorithm to the key the "kid" names, whatever the
// header's "alg" says, and never follows "jku", "x5u" or "jwk" headers.
// Revocation documents ("typ" revocations+jwt, see [RevocationList]) go
// through the same check, and neither kind passes for the other.
//
// # Errors
//
// Every reason a token is not valid matches [ErrInvalid] with errors.Is, and
// also one precise reason ([ErrExpired], [ErrSignature], …). Any other error
// from [Verifier.Verify] means validity is unknown ([ErrKeysUnavailable],
// [ErrStale], …), and a caller must fail closed. All are in errors.go.
package token
