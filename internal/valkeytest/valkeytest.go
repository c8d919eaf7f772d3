// Package valkeytest starts real Valkey (or Redis) servers for tests: one
// server with [Start], a cluster with [StartCluster]. Each server runs in
// its own process group on a free loopback port, keeps its files (config,
// log, AOF, cluster config) in t.TempDir(), and is stopped by t.Cleanup.
//
// A missing binary skips the test with a message saying what to install,
// except under CI (CI=true), where it fails the test: CI installs the
// servers, and a skip there would hide that it did not.
//
// The package talks to the servers itself over RESP (PING, AUTH, CLUSTER
// INFO, ...: see [Server.Do]); only [StartCluster] runs valkey-cli, for
// "--cluster create".
package valkeytest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultBinary is the server [Start] runs when Options.Binary is empty.
const DefaultBinary = "valkey-server"

// readyTimeout bounds every wait for a server to answer (start, restart,
// cluster state).
const readyTimeout = 10 * time.Second

// Options configures [Start]. The zero value starts valkey-server with
// appendonly yes and appendfsync always.
type Options struct {
	// Binary is the server to run, a name looked up in PATH or a path:
	// "valkey-server" (the default) or "redis-server".
	Binary string
	// AppendFsync is the appendfsync setting: "always" (the default),
	// "everysec" or "no".
	AppendFsync string
	// NoAppendOnly turns the AOF off (appendonly no); by default it is on.
	NoAppendOnly bool
	// Password, when set, is the default user's password (requirepass).
	Password string
	// Config holds more configuration lines ("cluster-node-timeout 1000").
	Config []string
}

// Server is one running server. Its methods may be called from any
// goroutine; they fail the test on error.
type Server struct {
	t      testing.TB
	binary string
	dir    string
	port   int
	opts   Options

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the running process has been waited for.
	exited chan struct{}
}

// lookBinary returns the path of the binary name, or skips (fails under
// CI) when it is not installed.
func lookBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not installed (%v): install it (Debian: apt-get install valkey-server valkey-tools, or redis-server) to run this test", name, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Start starts a server on a free loopback port and stops it when the test
// ends. It returns once the server answers PING (at most 10 s).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = DefaultBinary
	}
	if opts.AppendFsync == "" {
		opts.AppendFsync = "always"
	}
	s := &Server{t: t, binary: lookBinary(t, opts.Binary), dir: t.TempDir(), opts: opts}
	t.Cleanup(s.stop)
	// A port found free may be taken before the server binds it: retry.
	var err error
	for range 5 {
		s.port, err = freePort()
		if err != nil {
			continue
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start %s: %v", opts.Binary, err)
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// config is the server's configuration file.
func (s *Server) config() string {
	appendonly := "yes"
	if s.opts.NoAppendOnly {
		appendonly = "no"
	}
	lines := []string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(s.port),
		"dir " + s.dir,
		"logfile " + filepath.Join(s.dir, "server.log"),
		"daemonize no",
		`save ""`,
		"appendonly " + appendonly,
		"appendfsync " + s.opts.AppendFsync,
	}
	if s.opts.Password != "" {
		lines = append(lines, "requirepass "+s.opts.Password)
	}
	lines = append(lines, s.opts.Config...)
	return strings.Join(lines, "\n") + "\n"
}

// start writes the configuration and runs the server, and waits until it
// answers PING. On error the process is gone.
func (s *Server) start() error {
	conf := filepath.Join(s.dir, "server.conf")
	if err := os.WriteFile(conf, []byte(s.config()), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(s.binary, conf)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start: %s", s.opts.Binary, s.logTail())
		default:
		}
		if err := s.ping(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("%s on %s did not answer PING within %s: %v; log: %s", s.opts.Binary, s.Addr(), readyTimeout, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping checks that the server answers PING with PONG (not LOADING).
func (s *Server) ping() error {
	got, err := s.Do("PING")
	if err != nil {
		return err
	}
	if got != "PONG" {
		return fmt.Errorf("PING = %q, want PONG", got)
	}
	return nil
}

// logTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Addr returns the server's address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// Dir returns the server's directory (its AOF, log and config).
func (s *Server) Dir() string { return s.dir }

// URL returns "redis://127.0.0.1:PORT" (with the password when there is
// one).
func (s *Server) URL() string {
	if s.opts.Password != "" {
		return "redis://:" + s.opts.Password + "@" + s.Addr()
	}
	return "redis://" + s.Addr()
}

// Kill sends SIGKILL to the server's process group and waits until the
// process is gone. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(readyTimeout):
		s.t.Errorf("%s (pid %d) still running %s after SIGKILL", s.opts.Binary, cmd.Process.Pid, readyTimeout)
	}
}

// Restart starts the server again (after [Server.Kill]) on the same port
// with the same directory, so it replays its AOF, and waits until it
// answers PING, which it does only once the AOF is loaded.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	// The port may take a moment to be free again.
	for range 3 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("restart %s on %s: %v", s.opts.Binary, s.Addr(), err)
}

func (s *Server) stop() { s.Kill() }

// Do sends one command and returns its reply as text: a simple string,
// bulk string or integer as is, an array as its elements one per line
// (nested arrays flattened), a nil as "". An error reply is an error. It
// authenticates first when the server has a password.
func (s *Server) Do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if s.opts.Password != "" {
		if _, err := roundTrip(conn, r, "AUTH", s.opts.Password); err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	return roundTrip(conn, r, args...)
}

// MustDo is [Server.Do] that fails the test on error.
func (s *Server) MustDo(args ...string) string {
	s.t.Helper()
	got, err := s.Do(args...)
	if err != nil {
		s.t.Fatalf("%s %s: %v", s.Addr(), args[0], err)
	}
	return got
}

func roundTrip(conn net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(r)
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		parts := make([]string, 0, max(n, 0))
		for range n {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// Cluster is a running Valkey Cluster on loopback ports.
type Cluster struct {
	t     testing.TB
	nodes []*Server
}

// StartCluster starts masters*(1+replicasPerMaster) valkey-server nodes
// (cluster-enabled, cluster-node-timeout 1000 ms, AOF always), joins them
// with "valkey-cli --cluster create ... --cluster-replicas
// replicasPerMaster", and returns once every node reports cluster_state:ok
// and knows every other node. It needs at least 3 masters. The nodes are
// stopped when the test ends.
func StartCluster(t testing.TB, masters, replicasPerMaster int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("StartCluster: %d masters, want at least 3 (Valkey's minimum)", masters)
	}
	bin := lookBinary(t, DefaultBinary)
	cli := lookBinary(t, "valkey-cli")
	c := &Cluster{t: t}
	total := masters * (1 + replicasPerMaster)
	used := make(map[int]bool)
	for range total {
		s := &Server{t: t, binary: bin, dir: t.TempDir(), opts: Options{Binary: DefaultBinary, AppendFsync: "always", Config: []string{
			"cluster-enabled yes",
			"cluster-config-file nodes.conf",
			"cluster-node-timeout 1000",
			// A replica may take over however long it was cut off.
			"cluster-replica-validity-factor 0",
		}}}
		t.Cleanup(s.stop)
		var err error
		for range 10 {
			s.port, err = clusterPort(used)
			if err != nil {
				continue
			}
			if err = s.start(); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("start cluster node: %v", err)
		}
		used[s.port] = true
		c.nodes = append(c.nodes, s)
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.nodes {
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("valkey-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.WaitOK()
	return c
}

// clusterPort returns a port below 55000 that is free, and whose cluster
// bus port (port+10000) is free too, and not in used. The range is below
// Linux's default ephemeral ports (32768-60999) for the bus port too, so
// outgoing connections do not take them.
func clusterPort(used map[int]bool) (int, error) {
	for range 50 {
		p := 12000 + rand.IntN(10000)
		if used[p] || used[p+10000] {
			continue
		}
		a, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p, nil
	}
	return 0, errors.New("no free port pair (port, port+10000) found")
}

// Node returns the i-th node, in the order given to --cluster create (so
// the first masters ones start as masters).
func (c *Cluster) Node(i int) *Server { return c.nodes[i] }

// Len returns the number of nodes.
func (c *Cluster) Len() int { return len(c.nodes) }

// URL returns "redis://h:p?addr=h2:p2&addr=h3:p3" with the first three
// nodes as seeds.
func (c *Cluster) URL() string {
	u := "redis://" + c.nodes[0].Addr()
	for i, s := range c.nodes[1:min(len(c.nodes), 3)] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + s.Addr()
	}
	return u
}

// alive reports whether node i runs.
func (c *Cluster) alive(i int) bool {
	s := c.nodes[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// WaitOK waits (at most 10 s) until every running node reports
// cluster_state:ok and knows every node of the cluster.
func (c *Cluster) WaitOK() {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		var why string
		for i, s := range c.nodes {
			if !c.alive(i) {
				continue
			}
			info, err := s.Do("CLUSTER", "INFO")
			switch {
			case err != nil:
				why = fmt.Sprintf("%s: %v", s.Addr(), err)
			case !strings.Contains(info, "cluster_state:ok"):
				why = fmt.Sprintf("%s: not cluster_state:ok", s.Addr())
			case !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(c.nodes))+"\r"):
				why = fmt.Sprintf("%s: does not know all %d nodes yet", s.Addr(), len(c.nodes))
			}
			if why != "" {
				break
			}
		}
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not ready within %s: %s", readyTimeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MasterOf returns the index of the node that serves key's hash slot as a
// master, as the first running node sees it.
func (c *Cluster) MasterOf(key string) int {
	c.t.Helper()
	for i, s := range c.nodes {
		if !c.alive(i) {
			continue
		}
		slot := s.MustDo("CLUSTER", "KEYSLOT", key)
		m, err := c.masterOfSlot(s, slot)
		if err != nil {
			c.t.Fatal(err)
		}
		return m
	}
	c.t.Fatal("MasterOf: no node is running")
	return -1
}

// masterOfSlot asks s which node is master of slot, by CLUSTER NODES.
func (c *Cluster) masterOfSlot(s *Server, slot string) (int, error) {
	n, err := strconv.Atoi(slot)
	if err != nil {
		return -1, err
	}
	nodes, err := s.Do("CLUSTER", "NODES")
	if err != nil {
		return -1, err
	}
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, _ := strings.Cut(r, "-")
			if hi == "" {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || n < a || n > b {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			for i, x := range c.nodes {
				if x.Addr() == addr {
					return i, nil
				}
			}
		}
	}
	return -1, fmt.Errorf("no master of slot %d in CLUSTER NODES of %s", n, s.Addr())
}

// WaitFailover waits (at most 10 s plus the failure detection) until a
// running node other than old is master of key's slot on every running
// node's view and the cluster is ok again, and returns its index. Call it
// after killing node old.
func (c *Cluster) WaitFailover(key string, old int) int {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout + 5*time.Second)
	for {
		m, why := -1, ""
		for i, s := range c.nodes {
			if !c.alive(i) {
				continue
			}
			slot, err := s.Do("CLUSTER", "KEYSLOT", key)
			if err != nil {
				why = err.Error()
				break
			}
			got, err := c.masterOfSlot(s, slot)
			switch {
			case err != nil:
				why = err.Error()
			case got == old:
				why = fmt.Sprintf("%s still sees the old master", s.Addr())
			case m != -1 && got != m:
				why = "nodes disagree on the new master"
			}
			if why != "" {
				break
			}
			m = got
			info, err := s.Do("CLUSTER", "INFO")
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				why = fmt.Sprintf("%s: not cluster_state:ok", s.Addr())
				break
			}
		}
		if why == "" && m >= 0 {
			return m
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no failover from node %d within %s: %s", old, readyTimeout+5*time.Second, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
