package server

// CloseStore closes the server's revocation list under it, as a failing
// store would: for tests of what the server says then.
func CloseStore(s *Server) error { return s.store.Close() }
