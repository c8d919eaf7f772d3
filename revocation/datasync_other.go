//go:build !linux

package revocation

import "os"

// datasync is f.Sync where there is no fdatasync.
func datasync(f *os.File) error { return f.Sync() }
