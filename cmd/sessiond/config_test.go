package main

import (
	"net"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// commandsWithFlags is every command line that parses flags.
var commandsWithFlags = [][]string{
	{"serve"}, {"verify"},
	{"keys", "init"}, {"keys", "rotate"}, {"keys", "list"}, {"keys", "prune"}, {"keys", "remove"},
	{"revocations", "reset"}, {"revocations", "new-epoch"},
	{"session", "open"}, {"session", "verify"}, {"session", "introspect"}, {"session", "close"}, {"session", "close-all"},
}

var flagLineRE = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)(?: (\S+))?$`)

// flagsOf returns the flags the command's --help lists, with their kind
// ("duration", "string", "" for a boolean, …).
func flagsOf(t *testing.T, cmd []string) map[string]string {
	t.Helper()
	r := sessiond(t, commandEnv(), append(slices.Clone(cmd), "--help")...)
	flags := map[string]string{}
	for _, m := range flagLineRE.FindAllStringSubmatch(r.stdout+r.stderr, -1) {
		flags[m[1]] = m[2]
	}
	if len(flags) == 0 {
		t.Fatalf("sessiond %s --help lists no flags:\n%s%s", strings.Join(cmd, " "), r.stdout, r.stderr)
	}
	return flags
}

func envName(flag string) string {
	return "SESSIOND_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Every duration flag of every command, given a bad value on the command
// line or in its environment variable, says what a duration looks like,
// with an example, and names the setting; nothing else is printed.
func TestDurationFlagsSayTheFormat(t *testing.T) {
	for _, cmd := range commandsWithFlags {
		flags := flagsOf(t, cmd)
		for flag, kind := range flags {
			if kind != "duration" {
				continue
			}
			name := strings.Join(cmd, " ") + " --" + flag
			t.Run(name, func(t *testing.T) {
				args := slices.Clone(cmd)
				if _, ok := flags["data-dir"]; ok {
					args = append(args, "--data-dir", dataDir(t))
				}
				args = append(args, "--"+flag+"=abc")
				r := sessiond(t, commandEnv(), args...)
				if r.code != 2 || !strings.Contains(r.stderr, "--"+flag) || !strings.Contains(r.stderr, `"abc"`) || !strings.Contains(r.stderr, "such as 30s") {
					t.Errorf("sessiond %s=abc: exit %d, stderr %q; want exit 2 naming --%s and \"abc\", with an example (30s)", name, r.code, r.stderr, flag)
				}
				if strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
					t.Errorf("sessiond %s=abc: stderr %q, want the message and at most a hint, not the whole usage", name, r.stderr)
				}
				env := envName(flag)
				r = sessiond(t, commandEnv(env+"=xyz"), args[:len(args)-1]...)
				if r.code == 0 || !strings.Contains(r.stderr, env+`="xyz"`) || !strings.Contains(r.stderr, "such as 30s") {
					t.Errorf("%s=xyz sessiond %s: exit %d, stderr %q; want a failure naming %s=\"xyz\", with an example (30s)", env, strings.Join(cmd, " "), r.code, r.stderr, env)
				}
			})
		}
	}
}

// A port in use names the flag and the environment variable that change
// it, for the API's listener and the admin listener.
func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	for _, tt := range []struct{ flag, env string }{{"--listen", "SESSIOND_LISTEN"}, {"--admin-listen", "SESSIOND_ADMIN_LISTEN"}} {
		t.Run(tt.flag, func(t *testing.T) {
			args := []string{"serve", "--data-dir", dataDir(t), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}
			args = append(args, tt.flag, busy)
			r := sessiond(t, commandEnv(), args...)
			if r.code != 1 || !strings.Contains(r.stderr, busy) || !strings.Contains(r.stderr, "in use") ||
				!strings.Contains(r.stderr, tt.flag+" ("+tt.env+")") {
				t.Errorf("serve %s %s (in use): exit %d, stderr %q; want exit 1 saying the address is in use and naming %s (%s)", tt.flag, busy, r.code, r.stderr, tt.flag, tt.env)
			}
		})
	}
}

// An unknown SESSIOND_* variable is warned about when serve starts, with
// the likely one when it is close; the variables of other commands are
// known, not warned about.
func TestServeWarnsOfUnknownEnvironment(t *testing.T) {
	t.Setenv("SESSIOND_LEEWAYY", "1s")
	t.Setenv("SESSIOND_DATADIR", "/tmp/nowhere")
	t.Setenv("SESSIOND_FROBNICATE", "1")
	t.Setenv("SESSIOND_SERVER", "http://127.0.0.1:1") // sessiond session's
	t.Setenv("SESSIOND_JWKS", "x")                    // sessiond verify's
	p := start(t, dataDir(t))
	p.stop(t, syscall.SIGTERM)
	log := p.stderr.String()
	for _, want := range []string{
		`level=WARN msg="unknown environment variable, ignored" name=SESSIOND_LEEWAYY did_you_mean=SESSIOND_LEEWAY`,
		`level=WARN msg="unknown environment variable, ignored" name=SESSIOND_DATADIR did_you_mean=SESSIOND_DATA_DIR`,
		`level=WARN msg="unknown environment variable, ignored" name=SESSIOND_FROBNICATE` + "\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("serve's log lacks %q:\n%s", want, log)
		}
	}
	for _, known := range []string{"SESSIOND_SERVER", "SESSIOND_JWKS", "SESSIOND_ADMIN_LISTEN"} {
		if strings.Contains(log, "name="+known+" ") || strings.Contains(log, "name="+known+"\n") {
			t.Errorf("serve warned of %s, which a command reads:\n%s", known, log)
		}
	}
}

// The variables serve knows besides its own flags are exactly those of the
// other commands' flags.
func TestKnownEnvironment(t *testing.T) {
	want := map[string]bool{}
	for _, cmd := range commandsWithFlags {
		for flag := range flagsOf(t, cmd) {
			want[envName(flag)] = true
		}
	}
	for _, name := range knownEnv {
		if !want[name] {
			t.Errorf("knownEnv lists %s, which no command's flag reads", name)
		}
		delete(want, name)
	}
	serveFlags := flagsOf(t, []string{"serve"})
	for name := range want {
		if _, ok := serveFlags[strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "SESSIOND_"), "_", "-"))]; !ok {
			t.Errorf("%s is read by a command but missing from knownEnv (serve would warn of it)", name)
		}
	}
}

// Flags may come after the positional argument: the command runs as if
// they came first, and after -- every word is an argument.
func TestFlagsAfterArguments(t *testing.T) {
	dir := dataDir(t)
	keysCmd(t, dir, "init")
	kid := rotate(t, dir)
	for i := 0; i < 8 && strings.HasPrefix(kid, "-"); i++ {
		// A kid that begins with - must go after --, at the end.
		r := sessiond(t, commandEnv(), "keys", "remove", kid, "--data-dir", dir)
		if r.code != 2 || !strings.Contains(r.stderr, "goes after --, last: sessiond keys remove [flags] -- ARG") {
			t.Errorf("keys remove -KID --data-dir D: exit %d, stderr %q, want a usage error that says to write -- first", r.code, r.stderr)
		}
		kid = rotate(t, dir)
	}
	if r := sessiond(t, commandEnv(), "keys", "remove", "-abc", "--data-dir", dir); r.code != 2 || !strings.Contains(r.stderr, "goes after --, last: sessiond keys remove [flags] -- ARG") {
		t.Errorf("keys remove -abc --data-dir D: exit %d, stderr %q, want a usage error that says to write -- first", r.code, r.stderr)
	}
	r := sessiond(t, commandEnv(), "keys", "remove", kid, "--data-dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, kid) {
		t.Fatalf("keys remove KID --data-dir D: exit %d\n%s%s, want the key removed", r.code, r.stdout, r.stderr)
	}
	if list := keysCmd(t, dir, "list"); strings.Contains(list.stdout, kid) {
		t.Errorf("keys list after remove still shows %s:\n%s", kid, list.stdout)
	}
	r = sessiond(t, commandEnv(), "keys", "remove", "--data-dir", dir, "--", kid, "--json")
	if r.code != 2 || !strings.Contains(r.stderr, "want 1 argument(s), have 2") {
		t.Errorf("keys remove -- KID --json: exit %d, stderr %q, want a usage error counting 2 arguments", r.code, r.stderr)
	}

	p := startInProcess(t, dataDir(t))
	server := strings.TrimSuffix(p.url, "/")
	open := sessiond(t, commandEnv(), "session", "open", "--server", server)
	tok := strings.SplitN(open.stdout, "\n", 2)[0]
	r = sessiond(t, commandEnv(), "session", "verify", tok, "--server", server, "--json")
	if r.code != 0 || r.stdout != `{"active":true}`+"\n" {
		t.Errorf("session verify TOKEN --server URL --json: exit %d, stdout %q, stderr %q; want 0 and {\"active\":true}", r.code, r.stdout, r.stderr)
	}
}
