//go:build !unix

package server

// raiseFileLimit reports need: there is no file limit to raise here.
func raiseFileLimit(need uint64) (uint64, error) { return need, nil }
