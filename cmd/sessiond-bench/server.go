package main

// This file starts and stops the servers under test (sessiond itself, and
// this binary's own floor servers), reads their memory and CPU use from
// /proc, and is the floor server.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/rpc"
)

// buildSessiond builds the sessiond binary into dir, the way this binary was
// built (with -race under go test -race, so that the build shares the
// packages the race-enabled tests compiled).
func buildSessiond(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "sessiond")
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/sessiond/sessiond/cmd/sessiond")
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build sessiond (run from inside the module, or pass --sessiond): %w", err)
	}
	return out, nil
}

// server is a running server process.
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string
	admin   string // sessiond's admin listener (GET /debug/stats); "" for the floor servers
	pid     int
	started time.Time
	// ready is how long it took to serve (and settle); readyRSS its peak RSS
	// then, in MiB.
	ready    time.Duration
	readyRSS float64

	mu   sync.Mutex
	logs []string // its last log lines, for error messages

	exited  chan struct{}
	waitErr error // valid once exited is closed
	stopped bool  // set by stop: the exit is expected
}

// servingLine is the log line that sessiond and the floor servers write once
// they listen.
var servingLine = regexp.MustCompile(`msg=serving addr=(\S+)`)

// adminLine is the log line of sessiond's admin listener, which it writes
// before servingLine.
var adminLine = regexp.MustCompile(`msg="serving admin endpoints" addr=(\S+)`)

// startServer starts argv pinned to cpus (nil: not pinned) and waits for it
// to log the address it serves on. The child gets this process's
// environment without SESSIOND_* variables, so that only the flags
// configure it.
func startServer(ctx context.Context, name string, argv []string, cpus []int, verbose io.Writer) (*server, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SESSIOND_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s := &server{name: name, cmd: cmd, exited: make(chan struct{}), started: time.Now()}
	addrc := make(chan string, 1)
	readDone := make(chan struct{})
	err = startPinned(cmd, cpus, func() {
		<-readDone // Wait must not run before the pipe is drained
		s.waitErr = cmd.Wait()
		close(s.exited)
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s.pid = cmd.Process.Pid
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if verbose != nil {
				fmt.Fprintf(verbose, "  [%s] %s\n", name, line)
			}
			s.mu.Lock()
			if len(s.logs) == 40 {
				s.logs = s.logs[1:]
			}
			s.logs = append(s.logs, line)
			if m := adminLine.FindStringSubmatch(line); m != nil {
				s.admin = m[1]
			}
			s.mu.Unlock()
			if m := servingLine.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()

	timeout := time.NewTimer(60 * time.Second) // a store with a million entries takes a moment
	defer timeout.Stop()
	select {
	case s.addr = <-addrc: // after s.admin is set: the admin line comes first
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("%s exited before serving: %v\n%s", name, s.waitErr, s.lastLogs())
	case <-timeout.C:
		err = fmt.Errorf("%s did not log its address within 60s\n%s", name, s.lastLogs())
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.kill()
	return nil, err
}

// settle waits until the server is idle, until it used under 2% of a CPU
// over a quarter of a second, for at most limit. Badger compacts a store
// that was just filled (verify_hot_1m's) in the background after opening
// it; left alone, that work would land in the measurement. It returns how
// long it waited and whether the server settled.
func (s *server) settle(ctx context.Context, limit time.Duration) (time.Duration, bool) {
	const span = 250 * time.Millisecond
	start := time.Now()
	prev := procRuntime(s.pid)
	for time.Since(start) < limit {
		select {
		case <-time.After(span):
		case <-ctx.Done():
			return time.Since(start), false
		}
		cur := procRuntime(s.pid)
		if cur-prev < span/50 {
			return time.Since(start), true
		}
		prev = cur
	}
	return time.Since(start), false
}

func (s *server) lastLogs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "  " + strings.Join(s.logs, "\n  ")
}

// alive returns an error if the server has exited.
func (s *server) alive() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited: %v\n%s", s.name, s.waitErr, s.lastLogs())
	default:
		return nil
	}
}

func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// stop ends the server with SIGTERM, as an operator would, and waits for
// it; a server that does not exit within 30 seconds is killed. It returns
// an error if the server did not exit cleanly.
func (s *server) stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	if err := s.alive(); err != nil {
		return err
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.kill()
		return fmt.Errorf("%s did not stop within 30s of SIGTERM; killed\n%s", s.name, s.lastLogs())
	}
	if s.waitErr != nil {
		return fmt.Errorf("%s: %v\n%s", s.name, s.waitErr, s.lastLogs())
	}
	return nil
}

// procMemory returns a process's peak and current resident set size in MiB
// (VmHWM and VmRSS).
func procMemory(pid int) (peak, cur float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	field := func(name string) float64 {
		i := bytes.Index(data, []byte("\n"+name+":"))
		if i < 0 {
			return 0
		}
		line, _, _ := bytes.Cut(data[i+len(name)+2:], []byte("\n"))
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(string(line)), " kB"), 64)
		return kb / 1024
	}
	peak, cur = field("VmHWM"), field("VmRSS")
	if peak == 0 {
		return 0, 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return peak, cur, nil
}

// procCPUsAllowed returns the Cpus_allowed_list of a process, e.g. "0".
func procCPUsAllowed(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procCPU returns the user and system CPU seconds process pid has used, or
// 0 when pid is 0 or unknown.
func procCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// procRuntime returns the CPU time of every thread of process pid, to the
// nanosecond (from /proc/PID/task/*/schedstat; /proc/PID/stat counts in
// 10 ms ticks).
func procRuntime(pid int) time.Duration {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, _ := os.ReadDir(dir)
	var sum time.Duration
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(data), " ")
		ns, _ := strconv.ParseInt(first, 10, 64)
		sum += time.Duration(ns)
	}
	return sum
}

// cpuBusy returns the CPU seconds the given CPUs (nil: all) have spent busy
// since boot, from /proc/stat: everything but idle and iowait, steal
// included (time the hypervisor gave to someone else).
func cpuBusy(cpus []int) float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	var busy float64
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if cpus == nil {
			if f[0] != "cpu" {
				continue
			}
		} else if n, err := strconv.Atoi(f[0][3:]); err != nil || !slices.Contains(cpus, n) {
			continue
		}
		for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
			if i == 3 || i == 4 {
				continue
			}
			t, _ := strconv.ParseFloat(v, 64)
			busy += t
		}
	}
	return busy / clockTicks
}

// selfCPU returns the user and system CPU seconds this process has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// floorReply is what the floor servers answer, the reply of a successful
// session.verify_session_token, so that the load generator checks them like
// sessiond.
var floorReply = []byte(`{"jsonrpc":"2.0","result":{"active":true},"id":1}`)

// serveFloor is the hidden "serve-floor" command: a server on the same
// net/http configuration as sessiond (the same ServeMux route and
// http.Server settings, copied from newHTTPServer in
// cmd/sessiond/httpserver.go, which cannot be imported) that answers every
// POST / with floorReply, either straight from an http.Handler
// (--kind http, the HTTP limit) or through the project's JSON-RPC layer
// with a method that does nothing (--kind rpc). Like sessiond, it logs
// "msg=serving addr=…" once it listens and stops on SIGTERM.
func serveFloor(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sessiond-bench serve-floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", "http", "http: a bare handler; rpc: rpc.NewHandler with a method that does nothing")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve HTTP on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	var h http.Handler
	switch *kind {
	case "http":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Read the body as sessiond does (it is discarded here), and
			// answer with the headers sessiond's JSON-RPC layer sets.
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			hdr := w.Header()
			hdr["Content-Type"] = []string{"application/json"}
			hdr["Content-Length"] = []string{strconv.Itoa(len(floorReply))}
			w.WriteHeader(http.StatusOK)
			w.Write(floorReply)
		})
	case "rpc":
		// The method sessiond serves, with the same parameter, doing
		// nothing: the requests are those of verify_hot byte for byte.
		nop := rpc.Method{
			Params: []string{"token"},
			Call: func(context.Context, rpc.Params) (any, error) {
				return rpc.VerifyResult{Active: true}, nil
			},
		}
		h = rpc.NewHandler(map[string]rpc.Method{"session.verify_session_token": nop}, rpc.HandlerOptions{Logger: log})
	default:
		return fmt.Errorf("--kind must be http or rpc, not %q", *kind)
	}
	mux := http.NewServeMux()
	mux.Handle("/{$}", h)
	srv := &http.Server{ // as newHTTPServer in cmd/sessiond/httpserver.go
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log.Info("serving", "addr", ln.Addr().String(), "kind", *kind)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
