package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
)

// refused runs `sessiond serve` on dataDir, expects it to exit with a
// failure within 30 s, and returns what it printed. A panic or a Go stack
// trace in the output fails the test: a refusal is a message.
func refused(t *testing.T, dataDir string, extra ...string) string {
	t.Helper()
	out, err := runBinary(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, extra...)...)
	if err == nil {
		t.Fatalf("sessiond serve exited with status 0, want a refusal:\n%s", out)
	}
	noCrash(t, out)
	return out
}

// runBinary runs sessiond with args and returns its combined output and
// exit error.
func runBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("build sessiond: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "SESSIOND_LISTEN=", "SESSIOND_DATA_DIR=")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("sessiond %s did not exit in 30s:\n%s", strings.Join(args, " "), out)
	}
	return string(out), err
}

// noCrash fails the test if out shows a panic, a fatal runtime error or a
// stack trace.
func noCrash(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"panic", "fatal error", "goroutine ", "SIGBUS", "SIGSEGV"} {
		if strings.Contains(out, bad) {
			t.Fatalf("sessiond crashed (%q in its output):\n%s", bad, out)
		}
	}
}

// closedSessions starts a server on dir, opens n sessions and closes them,
// stops the server with SIGTERM and returns the closed tokens.
func closedSessions(t *testing.T, dir string, n int, extra ...string) []string {
	t.Helper()
	p := start(t, dir, extra...)
	ctx := context.Background()
	var toks []string
	for range n {
		res, err := p.client.OpenSession(ctx, time.Hour)
		if err != nil {
			t.Fatalf("open_session: %v", err)
		}
		if err := p.client.CloseSession(ctx, res.AccessToken); err != nil {
			t.Fatalf("close_session: %v", err)
		}
		toks = append(toks, res.AccessToken)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.stderr)
	}
	return toks
}

// A damaged or missing revocation list stops the server from starting, with
// a message that names the problem and both ways out; the data dir is left
// as it was; `sessiond revocations reset` is the explicit way to start
// over, and says what it throws away.
func TestDamagedStoreRefusesToStart(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, store string)
	}{
		{"MANIFEST deleted", func(t *testing.T, store string) {
			if err := os.Remove(filepath.Join(store, "MANIFEST")); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory deleted", func(t *testing.T, store string) {
			if err := os.RemoveAll(store); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := dataDir(t)
			toks := closedSessions(t, dir, 5)
			store := filepath.Join(dir, "revocations")
			tt.damage(t, store)

			out := refused(t, dir)
			for _, want := range []string{"revocation store", "refuses", "backup", "sessiond revocations reset --data-dir " + dir + " --yes"} {
				if !strings.Contains(out, want) {
					t.Errorf("refusal does not say %q:\n%s", want, out)
				}
			}
			// Twice: the refusal changed nothing that would let a second
			// start succeed.
			refused(t, dir)

			out, err := runBinary(t, "revocations", "reset", "--data-dir", dir)
			if err == nil || !strings.Contains(out, "--yes") || !strings.Contains(out, "verify again") {
				t.Fatalf("reset without --yes = %v, output:\n%s\nwant a refusal that says what it throws away and asks for --yes", err, out)
			}
			refused(t, dir)
			out, err = runBinary(t, "revocations", "reset", "--data-dir", dir, "--yes")
			if err != nil || !strings.Contains(out, "discarded") {
				t.Fatalf("reset --yes = %v, output:\n%s", err, out)
			}
			// The reset is what lets the closed sessions verify again: the
			// list is empty now.
			p := start(t, dir)
			active, err := p.client.VerifySessionToken(context.Background(), toks[0])
			if err != nil || !active {
				t.Errorf("after the reset verify = %v, %v; want active (the reset forgot the close)", active, err)
			}
		})
	}
}

// Raising --leeway between runs never lets a closed token verify: the
// records already stored are extended to the new leeway.
func TestRaisedLeewayKeepsClosedSessionsClosed(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	p := start(t, dir)
	ctx := context.Background()
	res, err := p.client.OpenSession(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.client.CloseSession(ctx, res.AccessToken); err != nil {
		t.Fatal(err)
	}
	p.stop(t, syscall.SIGTERM)

	p = start(t, dir, "--leeway", "1h")
	// Past the token's exp (3 s) and the second Badger rounds up to.
	time.Sleep(5 * time.Second)
	active, err := p.client.VerifySessionToken(ctx, res.AccessToken)
	if err != nil || active {
		t.Fatalf("verify of a closed token past exp with --leeway 1h = %v, %v, want inactive", active, err)
	}
}

// A fault-injection run: the crash-safety rounds, with 32 closers, end
// with a restart on a store whose memtable logs (the writes since the last
// flush) and journal (those since the last checkpoint) are gone. That
// restart must refuse; with the files put back, everything acknowledged is
// there. (Without the memtable logs alone, the restart may also succeed:
// the journal then holds what they lost since the last checkpoint;
// revocation's TestJournalReplaysLostWrites tests that.)
func TestCrashThenDamagedRestart(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	closed, _ := crashRounds(t, dir, 3, 32)
	store := filepath.Join(dir, "revocations")
	mems, _ := filepath.Glob(filepath.Join(store, "*.mem"))
	if len(mems) == 0 {
		t.Fatal("no memtable file after the kills")
	}
	lost := append(mems, store+".journal")
	saved := t.TempDir()
	for _, m := range lost {
		if err := os.Rename(m, filepath.Join(saved, filepath.Base(m))); err != nil {
			t.Fatal(err)
		}
	}
	out := refused(t, dir)
	if !strings.Contains(out, "acknowledged") && !strings.Contains(out, "journal") {
		t.Errorf("refusal of a store that lost writes does not say so:\n%s", out)
	}
	for _, m := range lost {
		if err := os.Rename(filepath.Join(saved, filepath.Base(m)), m); err != nil {
			t.Fatal(err)
		}
	}
	p := start(t, dir)
	checkSessions(t, p.client, closed, false, 99)
}

// A revocation store on a file system with little room: closes are refused
// with -32603 (never true) while the disk cannot take them, opens and
// verifies go on, nothing crashes, and closes work again once space is
// freed, without a restart. A start on a full disk is refused with a
// message about disk space. Needs root (it mounts a tmpfs).
func TestFullDisk(t *testing.T) {
	t.Parallel()
	mnt := smallFS(t, 64)
	dir := filepath.Join(mnt, "data")
	p := start(t, dir)
	ctx := context.Background()
	closed := openClose(t, p.client, 5)
	keep, err := p.client.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	filler := filepath.Join(mnt, "filler")
	fill(t, filler, 8<<20) // leave 8 MiB: below the store's reserve
	fullDiskLoad(t, p, keep.AccessToken)
	checkSessions(t, p.client, closed, false, 0)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	after := openClose(t, p.client, 5)

	// Full to the last byte while serving: a write into Badger's mapped
	// memtable would now be a SIGBUS.
	fill(t, filler, 0)
	fullDiskLoad(t, p, keep.AccessToken)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	after = append(after, openClose(t, p.client, 5)...)
	checkSessions(t, p.client, after, false, 0)
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.stderr)
	}
	noCrash(t, p.stderr.String())

	// Full to the last byte: a start is refused, saying why.
	fill(t, filler, 0)
	out := refused(t, dir)
	if !strings.Contains(out, "disk space") {
		t.Errorf("start on a full disk: want a message about disk space:\n%s", out)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p = start(t, dir)
	checkSessions(t, p.client, append(closed, after...), false, 1)
}

// fullDiskLoad opens, closes and verifies sessions on a server whose disk
// is full: every close must be refused with -32603, everything else served.
func fullDiskLoad(t *testing.T, p *process, keep string) {
	t.Helper()
	ctx := context.Background()
	for i := range 100 {
		res, err := p.client.OpenSession(ctx, time.Hour)
		if err != nil {
			t.Fatalf("open_session on a full disk: %v\n%s", err, p.stderr)
		}
		err = p.client.CloseSession(ctx, res.AccessToken)
		if rpcErr, ok := errors.AsType[*client.Error](err); !ok || rpcErr.Code != -32603 || !strings.Contains(rpcErr.Message, "disk full") {
			t.Fatalf("close %d on a full disk = %v, want error -32603\n%s", i, err, p.stderr)
		}
		if active, err := p.client.VerifySessionToken(ctx, res.AccessToken); err != nil || !active {
			t.Fatalf("verify of a session whose close was refused = %v, %v, want active", active, err)
		}
		if active, err := p.client.VerifySessionToken(ctx, keep); err != nil || !active {
			t.Fatalf("verify of an open session on a full disk = %v, %v", active, err)
		}
	}
	noCrash(t, p.stderr.String())
}

// openClose opens n sessions, closes each and returns them.
func openClose(t *testing.T, c *client.Client, n int) []string {
	t.Helper()
	ctx := context.Background()
	var toks []string
	for range n {
		res, err := c.OpenSession(ctx, time.Hour)
		if err != nil {
			t.Fatalf("open_session: %v", err)
		}
		if err := c.CloseSession(ctx, res.AccessToken); err != nil {
			t.Fatalf("close_session: %v", err)
		}
		toks = append(toks, res.AccessToken)
	}
	return toks
}

// smallFS mounts a tmpfs of sizeMiB and returns its path; it skips the
// test where mounting is not allowed.
func smallFS(t *testing.T, sizeMiB int) string {
	t.Helper()
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(sizeMiB)+"m,mode=0700", "tmpfs", mnt).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" && os.Geteuid() == 0 {
			t.Fatalf("mount tmpfs as root: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (run as root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// fill writes zeros to path until the file system has at most leave bytes
// free (0: until it is full).
func fill(t *testing.T, path string, leave int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		var st syscall.Statfs_t
		if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
			t.Fatal(err)
		}
		free := int64(st.Bavail) * int64(st.Bsize)
		if free <= leave {
			return
		}
		n := int64(len(chunk))
		if leave > 0 {
			n = min(n, free-leave)
		}
		if _, err := f.Write(chunk[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) && leave == 0 {
				return
			}
			t.Fatal(err)
		}
	}
}

// `sessiond revocations new-epoch` (after a restore) keeps every close and
// refuses to run beside the server.
func TestRevocationsNewEpoch(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	toks := closedSessions(t, dir, 3)
	p := start(t, dir)
	if out, err := runBinary(t, "revocations", "new-epoch", "--data-dir", dir); err == nil || !strings.Contains(out, "stop the server first") {
		t.Errorf("new-epoch beside a running server = %v:\n%s\nwant a refusal that says to stop the server", err, out)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if out, err := runBinary(t, "revocations", "new-epoch", "--data-dir", dir); err != nil || !strings.Contains(out, "new epoch") {
		t.Fatalf("new-epoch = %v:\n%s", err, out)
	}
	p = start(t, dir)
	checkSessions(t, p.client, toks, false, 0)
}
