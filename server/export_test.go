package server

import "net/http"

// CloseStore closes the server's revocation list under it, as a failing
// store would: for tests of what the server says then.
func CloseStore(s *Server) error { return s.store.Close() }

// Handler is the API listener's handler, for benchmarks of the stack
// without a socket.
func Handler(s *Server) http.Handler { return s.handler() }
