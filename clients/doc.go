// Package clients holds sessiond's callers' credentials: who may call which
// session method. Start with [Add], which creates a client and returns its
// secret, and [Registry], which a running server uses to authenticate a
// caller and ask what it may do.
//
// # Clients, secrets and permissions
//
// A [Client] has a name ([ValidName] says which), a set of [Permission]s
// ([Open], [Close], [Verify]; [Client.Allows] maps them to the JSON-RPC
// methods) and a creation time. Its [Secret] is 32 random bytes, shown to
// the operator once, base64url-encoded; the file keeps only its SHA-256.
// A plain hash is the right tool here (not a password hash such as
// Argon2): the secret has 256 bits of entropy, so nobody can guess it or
// search for it from the hash, and a slow hash would only make every
// request slower.
//
// [Set.Authenticate] hashes the secret a caller presents and compares it
// with every client's hash in constant time (crypto/subtle), visiting all
// of them whatever matches, so the time it takes says nothing about which
// names exist or how close a guess came. [Set.Lookup] finds a client by
// name, for callers that a client certificate names (mutual TLS).
//
// # The file
//
// The clients file (DATA_DIR/clients.json by default) is JSON, mode 0600.
// [Load] refuses a symbolic link, a file others can read or write, and
// anything it cannot parse; [Update] changes it under an exclusive lock,
// writing a temporary file that it fsyncs and renames over the old one,
// then fsyncs the directory, so a crash leaves the old file or the new
// one. A missing file holds no clients.
//
// # The caller in a context
//
// Whoever authenticates a request stores the client in its context with
// [NewContext]; [FromContext] and [NameFrom] read it back (a request log,
// an authorization hook).
package clients
