// Package publish serves what an offline verifier fetches from sessiond:
// the verification keys as a JWK Set ([JWKSHandler], GET
// /.well-known/jwks.json) and the signed revocation feed
// ([RevocationsHandler], GET /revocations), each with its caching (ETags,
// Cache-Control) and, for the feed, its per-client rate limit.
//
// The handlers are plain [net/http.Handler]s: they never listen on a port
// themselves, and they never see a private key (documents are signed through
// issue.SigningKeys). The JSON-RPC session API is package rpc.
package publish
