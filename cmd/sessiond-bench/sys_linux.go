//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// pinSupported reports whether this platform can pin processes to CPUs.
const pinSupported = true

func cpuSet(cpus []int) *unix.CPUSet {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return &set
}

// allowedCPUs returns the CPUs this process may run on, in order.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// pinProcess confines every thread of this process to cpus. On Linux the
// affinity mask belongs to a thread, and a new thread inherits the mask of
// the thread that creates it, so once every existing thread is moved the
// whole process stays on cpus. A second pass catches a thread started
// during the first.
func pinProcess(cpus []int) error {
	set := cpuSet(cpus)
	for range 2 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("pin to CPUs %v: %w", cpus, err)
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin to CPUs %v: sched_setaffinity: %w", cpus, err)
			}
		}
	}
	return nil
}

// startPinned starts cmd confined to cpus (nil: wherever this process runs)
// and calls wait, in the goroutine that started it, once it has started.
//
// The child inherits the affinity mask of the thread that forks it, the way
// taskset(1) works: a goroutine locks itself to a thread, narrows that
// thread's mask, and starts the child. The goroutine keeps the thread until
// wait returns and never unlocks it, so the thread, with its narrowed mask,
// exits with the goroutine instead of returning to the scheduler; keeping it
// alive until then also keeps the child's parent-death signal (which Linux
// sends when the forking thread exits) from firing early.
func startPinned(cmd *exec.Cmd, cpus []int, wait func()) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// A server must not outlive the benchmark, whatever kills it.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		if cpus != nil {
			if err := unix.SchedSetaffinity(0, cpuSet(cpus)); err != nil {
				started <- fmt.Errorf("pin to CPUs %v: sched_setaffinity: %w", cpus, err)
				return
			}
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		wait()
	}()
	return <-started
}

// isTmpfs reports whether dir is on a tmpfs, where fsync costs nothing.
func isTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}
