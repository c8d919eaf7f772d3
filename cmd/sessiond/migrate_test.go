package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/valkeytest"
)

// migration is a Badger data dir with sessions closed and open, and a
// subject cut off, ready to export; its server is stopped.
type migration struct {
	dir            string
	keyFile        string
	closed, opened []string
	cutOff         string // a token of the subject cut off
}

func newMigration(t *testing.T) *migration {
	t.Helper()
	m := &migration{dir: dataDir(t)}
	m.keyFile = filepath.Join(m.dir, "keys.json")
	p := startInProcess(t, m.dir)
	ctx := context.Background()
	for i := range 6 {
		res, err := p.client.OpenSession(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := p.client.CloseSession(ctx, res.AccessToken); err != nil {
				t.Fatal(err)
			}
			m.closed = append(m.closed, res.AccessToken)
		} else {
			m.opened = append(m.opened, res.AccessToken)
		}
	}
	m.cutOff = openSubject(t, p, "alice@example.com")
	if got := rpcCall(t, p, "session.close_all_sessions", `{"subject":"alice@example.com"}`); got != "true" {
		t.Fatalf("close_all_sessions = %s, want true", got)
	}
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return m
}

// runWithInput runs the binary with stdin.
func runWithInput(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd, stdout, stderr := command(t, commandEnv(), args...)
	cmd.Stdin = strings.NewReader(stdin)
	return finish(t, cmd.Run(), stdout, stderr)
}

// exportLines runs revocations export on dir and returns its lines, sorted.
func exportLines(t *testing.T, dir string) []string {
	t.Helper()
	r := sessiond(t, commandEnv(), "revocations", "export", "--data-dir", dir)
	if r.code != 0 {
		t.Fatalf("revocations export: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	slices.Sort(lines)
	return lines
}

// export writes the live revocations and the cutoff, with their expiries,
// and import into another Badger data dir gives them back, the cutoff too
// (written by its hash): a server on it (with the same keys) refuses the
// closed sessions and the session of the subject cut off, accepts the open
// ones and a session of that subject opened after the cutoff, and its
// export is the same. --skip-cutoffs imports the revocations only.
func TestExportImportBadger(t *testing.T) {
	m := newMigration(t)
	lines := exportLines(t, m.dir)
	var jtis, cutoffs int
	hash := sha256.Sum256([]byte("alice@example.com"))
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, `{"jti":"`) && strings.Contains(l, `"until":`):
			jtis++
		case strings.HasPrefix(l, `{"cutoff":"`+hex.EncodeToString(hash[:])+`","at":`):
			cutoffs++
		default:
			t.Errorf("export line %q, want a jti or the cutoff of alice@example.com", l)
		}
	}
	if jtis != len(m.closed) || cutoffs != 1 {
		t.Fatalf("export: %d revocations and %d cutoffs, want %d and 1:\n%s", jtis, cutoffs, len(m.closed), strings.Join(lines, "\n"))
	}
	input := strings.Join(lines, "\n") + "\n"

	skipped := dataDir(t)
	r := runWithInput(t, input, "revocations", "import", "--data-dir", skipped, "--skip-cutoffs")
	if r.code != 0 || !strings.Contains(r.stdout, "imported 3 revocations and 0 subject cutoffs") {
		t.Fatalf("import --skip-cutoffs: exit %d, %s%s", r.code, r.stdout, r.stderr)
	}
	want := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return strings.HasPrefix(l, `{"cutoff"`) })
	if got := exportLines(t, skipped); !slices.Equal(got, want) {
		t.Errorf("export after import --skip-cutoffs = \n%s\nwant the revocations only:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	target := dataDir(t)
	r = runWithInput(t, input, "revocations", "import", "--data-dir", target)
	if r.code != 0 || !strings.Contains(r.stdout, "imported 3 revocations and 1 subject cutoffs") {
		t.Fatalf("import: exit %d, %s%s; want the revocations and the cutoff imported", r.code, r.stdout, r.stderr)
	}
	if got := exportLines(t, target); !slices.Equal(got, lines) {
		t.Errorf("export after import = \n%s\nwant the same revocations, cutoff and expiries:\n%s", strings.Join(got, "\n"), strings.Join(lines, "\n"))
	}
	// Importing again changes nothing.
	if r := runWithInput(t, input, "revocations", "import", "--data-dir", target); r.code != 0 {
		t.Fatalf("second import: exit %d\n%s", r.code, r.stderr)
	}
	if got := exportLines(t, target); !slices.Equal(got, lines) {
		t.Errorf("export after a second import = %q, want %q", got, lines)
	}
	p := startInProcess(t, target, "--keys-file", m.keyFile)
	checkMigrated(t, "Badger", p, m, lines)
}

// checkMigrated checks that node p, on the store m's export lines were
// imported into, refuses m's closed sessions and the session of the
// subject cut off, and accepts m's open sessions and a session of that
// subject opened after the cutoff.
func checkMigrated(t *testing.T, name string, p *process, m *migration, lines []string) {
	t.Helper()
	ctx := context.Background()
	for _, tok := range m.closed {
		if active, err := p.client.VerifySessionToken(ctx, tok); active || err != nil {
			t.Errorf("%s: a session closed before the move: active = %v, %v, want false", name, active, err)
		}
	}
	for _, tok := range m.opened {
		if active, err := p.client.VerifySessionToken(ctx, tok); !active || err != nil {
			t.Errorf("%s: a session open before the move: active = %v, %v, want true", name, active, err)
		}
	}
	if active, err := p.client.VerifySessionToken(ctx, m.cutOff); active || err != nil {
		t.Errorf("%s: a session of the subject cut off, issued before the cutoff: active = %v, %v, want false", name, active, err)
	}
	// A session issued after the cutoff second: wait (at most the second
	// or two left) until the clock is past it.
	at := cutoffAt(t, lines)
	for time.Now().Unix() <= at {
		time.Sleep(100 * time.Millisecond)
	}
	later := openSubject(t, p, "alice@example.com")
	if active, err := p.client.VerifySessionToken(ctx, later); !active || err != nil {
		t.Errorf("%s: a session of the subject cut off, issued after the cutoff: active = %v, %v, want true", name, active, err)
	}
}

// cutoffAt returns the at of the one cutoff in export lines.
func cutoffAt(t *testing.T, lines []string) int64 {
	t.Helper()
	for _, l := range lines {
		var v struct {
			Cutoff string `json:"cutoff"`
			At     int64  `json:"at"`
		}
		if json.Unmarshal([]byte(l), &v) == nil && v.Cutoff != "" {
			return v.At
		}
	}
	t.Fatalf("no cutoff in the export %q", lines)
	return 0
}

// export refuses a list a server holds, with the message of the other
// revocations commands, and a data dir without one.
func TestExportRefusals(t *testing.T) {
	dir := dataDir(t)
	startInProcess(t, dir)
	r := sessiond(t, commandEnv(), "revocations", "export", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "in use by another process: stop the server first") || r.stdout != "" {
		t.Errorf("export while serving: exit %d, stdout %q, stderr %q; want exit 1 saying to stop the server", r.code, r.stdout, r.stderr)
	}
	empty := dataDir(t)
	r = sessiond(t, commandEnv(), "revocations", "export", "--data-dir", empty)
	if r.code != 1 || !strings.Contains(r.stderr, "no revocation list at") {
		t.Errorf("export of no list: exit %d, stderr %q; want exit 1 saying there is none", r.code, r.stderr)
	}
	if _, err := os.Lstat(empty); !os.IsNotExist(err) {
		t.Errorf("export created the data dir: %v", err)
	}
}

// import checks every line before it writes anything: a bad line is
// refused with its number, and nothing is created.
func TestImportRefusesBadLines(t *testing.T) {
	good := `{"jti":"0f38a2d0-307b-4aee-bb83-4cb619ee888a","until":4102444800}`
	cut := `{"cutoff":"` + strings.Repeat("ab", 32) + `","at":1796126209,"until":4102444800}`
	tests := []struct {
		name, input, want string
	}{
		{"not JSON", good + "\nnope\n", "input line 2:"},
		{"unknown member", good + "\n\n" + `{"jti":"0f38a2d0-307b-4aee-bb83-4cb619ee888b","until":4102444800,"x":1}`, "input line 3:"},
		{"bad uuid", `{"jti":"0f38a2d0","until":4102444800}`, "input line 1: jti"},
		{"uuid not canonical", `{"jti":"0F38A2D0-307B-4AEE-BB83-4CB619EE888A","until":4102444800}`, "input line 1: jti"},
		{"no until", `{"jti":"0f38a2d0-307b-4aee-bb83-4cb619ee888a"}`, "input line 1: until"},
		{"negative until", `{"jti":"0f38a2d0-307b-4aee-bb83-4cb619ee888a","until":-5}`, "input line 1: until"},
		{"until a string", `{"jti":"0f38a2d0-307b-4aee-bb83-4cb619ee888a","until":"soon"}`, "input line 1:"},
		{"both kinds", `{"jti":"0f38a2d0-307b-4aee-bb83-4cb619ee888a","cutoff":"` + strings.Repeat("ab", 32) + `","at":1,"until":4102444800}`, "input line 1: neither"},
		{"cutoff without at", `{"cutoff":"` + strings.Repeat("ab", 32) + `","until":4102444800}`, "input line 1: neither"},
		{"short hash", `{"cutoff":"abcd","at":1,"until":4102444800}`, "input line 1: cutoff"},
		{"at after until", `{"cutoff":"` + strings.Repeat("ab", 32) + `","at":4102444801,"until":4102444800}`, "input line 1: at"},
		{"two values", good + good, "input line 1: more than one"},
		{"array", `[` + good + `]`, "input line 1:"},
		{"too long", cut + "\n" + strings.Repeat(" ", 5000) + good, "input line 2: longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := dataDir(t)
			r := runWithInput(t, tt.input, "revocations", "import", "--data-dir", dir)
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "sessiond revocations export writes") {
				t.Errorf("exit %d, stderr %q; want exit 1 with %q and the expected form", r.code, r.stderr, tt.want)
			}
			if _, err := os.Lstat(dir); !os.IsNotExist(err) {
				t.Errorf("a refused import created the data dir: %v", err)
			}
		})
	}
}

// Moving a Badger data dir's list into Valkey: import with
// --revocation-store keeps each revocation's and the cutoff's expiry (the
// key's PEXPIRETIME is the exported until), and nodes on the Valkey store
// refuse the closed sessions and the session of the subject cut off, and
// accept the open ones and a session of that subject opened after the
// cutoff; the store's feed (export's source on Badger) has the cutoff as
// exported.
func TestExportImportValkey(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	m := newMigration(t)
	lines := exportLines(t, m.dir)
	input := strings.Join(lines, "\n") + "\n"
	r := runWithInput(t, input, "revocations", "import", "--revocation-store", srv.URL())
	if r.code != 0 || !strings.Contains(r.stdout, "imported 3 revocations and 1 subject cutoffs") {
		t.Fatalf("import into Valkey: exit %d, %s%s; want the revocations and the cutoff imported", r.code, r.stdout, r.stderr)
	}
	hash := sha256.Sum256([]byte("alice@example.com"))
	for _, l := range lines {
		var v exportLine
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		key := "{sessiond}:r:" + v.JTI
		if v.Cutoff != "" {
			if v.Cutoff != hex.EncodeToString(hash[:]) {
				t.Fatalf("export line %q: want the cutoff of alice@example.com", l)
			}
			key = "{sessiond}:c:" + v.Cutoff
			val := srv.MustDo("GET", key)
			if f := strings.Fields(val); len(f) != 3 || f[0] != strconv.FormatInt(*v.At, 10) || f[1] != strconv.FormatInt(v.Until, 10) {
				t.Errorf("cutoff in Valkey = %q, want \"%d %d seq\" (the exported at and until)", val, *v.At, v.Until)
			}
		}
		if got, want := srv.MustDo("PEXPIRETIME", key), strconv.FormatInt(v.Until, 10)+"000"; got != want {
			t.Errorf("%s expires at %s ms in Valkey, want %s (the exported until)", key, got, want)
		}
	}
	nodes := startNodes(t, 2, "--keys-file", m.keyFile, "--revocation-store", srv.URL())
	for i, p := range nodes {
		checkMigrated(t, fmt.Sprintf("node %d on Valkey", i), p, m, lines)
	}
}
