package rpc

// The results of the session methods as Client decodes them. The server's
// own definitions are session.OpenResult and session.VerifyResult (package
// session imports rpc, so Client cannot use those); these go wherever the
// client goes.

// OpenResult is the result of session.open_session.
type OpenResult struct {
	AccessToken string `json:"access_token"`
	// ExpiresIn is the granted lifetime in seconds.
	ExpiresIn int64 `json:"expires_in"`
}

// VerifyResult is the result of session.verify_session_token.
type VerifyResult struct {
	Active bool `json:"active"`
}
