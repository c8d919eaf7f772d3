package token

// This file answers whether a token was verified before, for callers that
// ration signature checks.

// Seen reports whether v remembers verifying s before: its signature
// checked and accepted, so that [Verifier.Verify] of s would cost no
// signature check now. It says nothing about whether s is still valid. A
// verifier without a cache (WithCache(0)) has seen nothing.
func (v *Verifier) Seen(s string) bool {
	if v.cache == nil || len(s) > MaxSize {
		return false
	}
	_, ok := v.cache.get(s)
	return ok
}
