//go:build !linux

package main

import (
	"errors"
	"os/exec"
	"runtime"
)

// pinSupported reports whether this platform can pin processes to CPUs.
const pinSupported = false

var errNoPin = errors.New("CPU pinning needs Linux")

func allowedCPUs() ([]int, error) {
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return cpus, nil
}

func pinProcess([]int) error { return errNoPin }

func startPinned(cmd *exec.Cmd, cpus []int, wait func()) error {
	if cpus != nil {
		return errNoPin
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go wait()
	return nil
}

func isTmpfs(string) bool { return false }
