//go:build !linux

// Command sessiond-bench needs Linux: it pins processes to CPUs and reads
// their memory and CPU time from /proc.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "sessiond-bench: needs Linux (CPU pinning with sched_setaffinity, /proc); see docs/benchmarks.md")
	os.Exit(2)
}
