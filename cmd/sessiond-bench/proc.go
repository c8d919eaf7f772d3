//go:build linux

package main

// This file starts and stops the servers under test (sessiond, this binary's
// floor servers, Valkey) as processes pinned to the server's CPU, knows that
// sessiond and the floors are ready when their --addr-file names them and
// GET /healthz answers 200, pins this process, and reads memory and CPU use
// from /proc.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/rpc"
	sessiond "github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/session"
	"golang.org/x/sys/unix"
)

// goBuild runs the go command with args, its output to stderr.
func goBuild(ctx context.Context, stderr io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (run from inside the module, or pass --sessiond): %w", strings.Join(args, " "), err)
	}
	return nil
}

// server is a running server process.
type server struct {
	name, addr, admin string // admin: sessiond's admin listener, "" for the others
	cmd               *exec.Cmd
	pid               int
	logFile           string
	exited            chan struct{}
	waitErr           error // valid once exited is closed
}

// pidOr0 is s's pid, 0 for no server.
func (s *server) pidOr0() int {
	if s == nil {
		return 0
	}
	return s.pid
}

// log returns the last 8 KiB of the server's output, for error messages.
func (s *server) log() string {
	data, _ := os.ReadFile(s.logFile)
	return string(data[max(0, len(data)-8<<10):])
}

// spawn starts argv pinned to cpus (nil: not pinned), its output in logFile
// (the end of which every error about it quotes), with this process's
// environment minus SESSIOND_* (only the flags configure it).
func spawn(name, logFile string, argv []string, cpus []int) (*server, error) {
	s := &server{name: name, cmd: exec.Command(argv[0], argv[1:]...), logFile: logFile, exited: make(chan struct{})}
	logf, err := os.Create(s.logFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SESSIOND_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := startPinned(s.cmd, cpus, func() { s.waitErr = s.cmd.Wait(); close(s.exited) }); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s.pid = s.cmd.Process.Pid
	return s, nil
}

// startServer spawns argv --addr-file addrFile, its log in addrFile.log,
// and waits, for a minute at most (a store with a million entries takes a
// moment), until the address file names the server's addresses and
// GET /healthz answers 200.
func startServer(ctx context.Context, name, addrFile string, argv []string, cpus []int) (*server, error) {
	s, err := spawn(name, addrFile+".log", append(argv, "--addr-file", addrFile), cpus)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: time.Second}
	err = s.waitReady(ctx, func() bool {
		data, err := os.ReadFile(addrFile)
		if addrs := strings.Fields(string(data)); err == nil && len(addrs) > 0 {
			s.addr, s.admin = addrs[0], append(addrs, "")[1]
			if resp, err := hc.Get("http://" + s.addr + "/healthz"); err == nil {
				return resp.Body.Close() == nil && resp.StatusCode == http.StatusOK
			}
		}
		return false
	})
	return s, err
}

// waitReady polls ready every 50ms for a minute at most; it kills the
// server when it fails.
func (s *server) waitReady(ctx context.Context, ready func() bool) error {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if ready() {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before serving: %v\n%s", s.name, s.waitErr, s.log())
		case <-ctx.Done():
			s.kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.kill()
	return fmt.Errorf("%s: not serving within a minute\n%s", s.name, s.log())
}

// settle waits until the server used under 2% of a CPU over a quarter of a
// second, for at most limit: Badger compacts a store that was just filled
// in the background, work that must not land in the measurement. It
// returns how long it waited and whether the server settled.
func (s *server) settle(ctx context.Context, limit time.Duration) (time.Duration, bool) {
	const span = 250 * time.Millisecond
	start, prev := time.Now(), procRuntime(s.pid)
	for time.Since(start) < limit && ctx.Err() == nil {
		time.Sleep(span)
		if cur := procRuntime(s.pid); cur-prev < span/50 {
			return time.Since(start), true
		} else {
			prev = cur
		}
	}
	return time.Since(start), false
}

// alive returns an error if the server has exited.
func (s *server) alive() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited: %v\n%s", s.name, s.waitErr, s.log())
	default:
		return nil
	}
}

func (s *server) kill() { s.cmd.Process.Kill(); <-s.exited }

// stop ends the server with SIGTERM, as an operator would; one that does
// not exit within 30 seconds is killed. It fails unless the exit is clean.
func (s *server) stop() error {
	if err := s.alive(); err != nil {
		return err
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.kill()
		return fmt.Errorf("%s did not stop within 30s of SIGTERM; killed\n%s", s.name, s.log())
	}
	if s.waitErr != nil {
		return fmt.Errorf("%s: %v\n%s", s.name, s.waitErr, s.log())
	}
	return nil
}

// procField returns a field of /proc/PID/status, "" when it lacks it.
func procField(pid int, name string) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// procMiB returns a memory field of /proc/PID/status (VmHWM, VmRSS) in MiB,
// 0 when unknown.
func procMiB(pid int, name string) float64 {
	kb, _ := strconv.ParseFloat(strings.TrimSuffix(procField(pid, name), " kB"), 64)
	return kb / 1024
}

const clockTicks = 100 // USER_HZ, the unit of /proc times on every Linux Go supports

// procCPU returns the CPU seconds process pid has used, exited threads
// included, 0 when pid is 0 or unknown. The command name (field 2) may hold
// spaces; utime and stime are the 12th and 13th fields after its ')'.
func procCPU(pid int) float64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(data, ')')
	if f := strings.Fields(string(data[i+1:])); pid != 0 && i >= 0 && len(f) >= 13 {
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		return (utime + stime) / clockTicks
	}
	return 0
}

// procRuntime returns the CPU time of every live thread of process pid to
// the nanosecond (from /proc/PID/task/*/schedstat).
func procRuntime(pid int) (sum time.Duration) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		ns, _ := strconv.ParseInt(strings.Fields(string(data) + " 0")[0], 10, 64)
		sum += time.Duration(ns)
	}
	return sum
}

// cpuBusy returns the CPU seconds the given CPUs (nil: all) have spent busy
// since boot, from /proc/stat: all but idle and iowait, steal included.
func cpuBusy(cpus []int) (busy float64) {
	data, _ := os.ReadFile("/proc/stat")
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if n, err := strconv.Atoi(f[0][3:]); cpus == nil && f[0] != "cpu" || cpus != nil && (err != nil || !slices.Contains(cpus, n)) {
			continue
		}
		for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
			if t, _ := strconv.ParseFloat(v, 64); i != 3 && i != 4 {
				busy += t
			}
		}
	}
	return busy / clockTicks
}

// selfCPU returns the CPU seconds this process has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func setAffinity(tid int, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
		return fmt.Errorf("pin to CPUs %v: sched_setaffinity: %w", cpus, err)
	}
	return nil
}

// allowedCPUs returns the CPUs this process may run on, in order.
func allowedCPUs() (cpus []int, err error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	for c := range len(set) * 64 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// pinProcess confines every thread of this process to cpus. The affinity
// mask belongs to a thread and a new thread inherits its creator's, so once
// every thread is moved the process stays on cpus; a second pass catches a
// thread started during the first.
func pinProcess(cpus []int) error {
	for range 2 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("pin to CPUs %v: %w", cpus, err)
		}
		for _, e := range ents {
			tid, _ := strconv.Atoi(e.Name())
			if err := setAffinity(tid, cpus); err != nil {
				return err
			}
		}
	}
	return nil
}

// startPinned starts cmd confined to cpus (nil: wherever this process runs)
// and calls wait, in the goroutine that started it, once it has started.
//
// The child inherits the mask of the thread that forks it, as with
// taskset(1): a goroutine locks itself to a thread, narrows that thread's
// mask and starts the child. It never unlocks the thread, so the thread
// exits with the goroutine instead of returning to the scheduler with its
// narrowed mask; living until wait returns also keeps the child's
// parent-death signal (sent when the forking thread exits) from firing early.
func startPinned(cmd *exec.Cmd, cpus []int, wait func()) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the benchmark
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		err := error(nil)
		if cpus != nil {
			err = setAffinity(0, cpus)
		}
		if err == nil {
			err = cmd.Start()
		}
		if started <- err; err == nil {
			wait()
		}
	}()
	return <-started
}

// isTmpfs reports whether dir is on a tmpfs, where fsync costs nothing.
func isTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// This file is the hidden "serve-floor" command: the floor servers that
// http_floor and rpc_floor measure, on sessiond's own http.Server settings
// (server.NewHTTPServer), so that they differ from sessiond only in what
// they do per request.

// floorReply is the reply of a successful session.verify_session_token, so
// that the load generator checks the floors like sessiond.
var floorReply = []byte(`{"jsonrpc":"2.0","result":{"active":true},"id":1}`)

// serveFloor (serve-floor KIND --addr-file FILE) answers every POST / with
// floorReply, either straight from an http.Handler (KIND http, the HTTP
// limit) or through the project's JSON-RPC layer with a method that does
// nothing (rpc: verify_hot's requests byte for byte), and GET /healthz with
// 200, until ctx ends. It writes its address to FILE once listening.
func serveFloor(ctx context.Context, args []string) error {
	if len(args) != 3 || args[1] != "--addr-file" || args[0] != "http" && args[0] != "rpc" {
		return fmt.Errorf("usage: serve-floor http|rpc --addr-file FILE, not %q", args)
	}
	// Read the body as sessiond does, and answer with the headers its
	// JSON-RPC layer sets.
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(floorReply))}
		w.Write(floorReply)
	})
	if args[0] == "rpc" {
		nop := rpc.Method{Params: []string{"token"}, Call: func(context.Context, rpc.Params) (any, error) { return session.VerifyResult{Active: true}, nil }}
		h = rpc.NewHandler(map[string]rpc.Method{"session.verify_session_token": nop}, rpc.HandlerOptions{})
	}
	mux := http.NewServeMux()
	mux.Handle("/{$}", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	// In one rename, so that a reader sees all or nothing.
	if err = os.WriteFile(args[2]+".tmp", []byte(ln.Addr().String()+"\n"), 0o644); err == nil {
		err = os.Rename(args[2]+".tmp", args[2])
	}
	srv := sessiond.NewHTTPServer(mux, slog.Default())
	shut := make(chan error, 1)
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- srv.Shutdown(sctx)
	})
	if err == nil {
		if err = srv.Serve(ln); errors.Is(err, http.ErrServerClosed) {
			err = <-shut
		}
	}
	return err
}
