//go:build unix

package server

import "syscall"

// raiseFileLimit raises the soft limit on open files to need, or as far as
// the hard limit allows, and returns the soft limit it leaves. (The Go
// runtime already raises it to the hard limit at start on most systems; this
// makes the need explicit and checks it.)
func raiseFileLimit(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= need {
		return lim.Cur, nil
	}
	old := lim.Cur
	lim.Cur = min(need, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return old, err
	}
	return lim.Cur, nil
}
