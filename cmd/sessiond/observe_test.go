package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// goVersionM reads a binary's build info with the Go toolchain's own
// reader (go version -m): the Go version, the main module's version and
// the build settings.
func goVersionM(t *testing.T, bin string) (goVersion, modVersion string, settings map[string]string) {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	settings = map[string]string{}
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), "\t")
		switch {
		case i == 0:
			goVersion = strings.TrimSpace(line[strings.LastIndex(line, " ")+1:])
		case len(f) >= 3 && f[0] == "mod":
			modVersion = f[2]
		case len(f) >= 2 && f[0] == "build":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				settings[k] = v
			}
		}
	}
	return goVersion, modVersion, settings
}

// wantVersionOutput is what `sessiond version` must print for a binary,
// from go version -m.
func wantVersionOutput(t *testing.T, bin string) string {
	t.Helper()
	gover, mod, settings := goVersionM(t, bin)
	if mod == "" || mod == "(devel)" {
		mod = "devel"
	}
	rev := settings["vcs.revision"]
	switch {
	case rev == "":
		rev = "unknown (built without VCS information)"
	case settings["vcs.modified"] == "true":
		rev += " (modified)"
	}
	return "sessiond " + mod + "\nrevision: " + rev + "\ngo: " + gover + "\n"
}

// `sessiond version` and `sessiond --version` print the version, the VCS
// revision and the Go version the build recorded, as the Go toolchain
// reads them from the binary; a stray argument is a usage error.
func TestVersion(t *testing.T) {
	bin, err := binary()
	if err != nil {
		t.Fatalf("build sessiond: %v", err)
	}
	want := wantVersionOutput(t, bin)
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || string(out) != want {
			t.Errorf("sessiond %s = %q, %v, want %q", strings.Join(args, " "), out, err, want)
		}
	}
	if !strings.Contains(want, "go: "+runtime.Version()+"\n") {
		t.Errorf("sessiond version = %q, want the Go version %s", want, runtime.Version())
	}
	cmd := exec.Command(bin, "version", "extra")
	out, err := cmd.CombinedOutput()
	if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), `unexpected argument "extra"`) {
		t.Errorf("sessiond version extra = %v %q, want exit 2 naming the argument", err, out)
	}
}

// A binary built with VCS stamping (as go build does by default in a Git
// work tree) says its revision, and whether the tree was modified.
func TestVersionRevision(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a Git work tree with git installed (%v): nothing to stamp", err)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !info.IsDir() {
		// A linked work tree (git worktree add) has a .git file, which the
		// go command does not take for a repository: it stamps nothing.
		t.Skipf("%s/.git is not a directory (a linked work tree?): go build stamps no revision here", strings.TrimSpace(string(top)))
	}
	bin := filepath.Join(t.TempDir(), "sessiond")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := wantVersionOutput(t, bin); string(out) != want {
		t.Errorf("sessiond version = %q, want %q", out, want)
	}
	if !strings.Contains(string(out), "revision: "+strings.TrimSpace(string(head))) {
		t.Errorf("sessiond version = %q, want revision %s", out, head)
	}
}

// --log-format and --log-level take only the values they list, and say
// which, from a flag or the environment, before anything is created.
func TestLogFlagsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"format flag", []string{"--log-format", "xml"}, "", "the log format must be text or json"},
		{"level flag", []string{"--log-level", "loud"}, "", "the log level must be debug, info, warn or error"},
		{"format env", nil, "SESSIOND_LOG_FORMAT=yaml", `invalid SESSIOND_LOG_FORMAT="yaml": the log format must be text or json`},
		{"level env", nil, "SESSIOND_LOG_LEVEL=verbose", `invalid SESSIOND_LOG_LEVEL="verbose": the log level must be debug, info, warn or error`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				k, v, _ := strings.Cut(tt.env, "=")
				t.Setenv(k, v)
			}
			dir := dataDir(t)
			var stderr strings.Builder
			err := run(context.Background(), append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir}, tt.args...), io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Errorf("serve %v (%s) = %v, stderr %q, want a refusal saying %q", tt.args, tt.env, err, stderr.String(), tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused serve created the data dir")
			}
		})
	}
	var f logFlags
	f.flags(newFlagSet("x", "", io.Discard))
	for _, v := range []string{"debug", "INFO", "warn", "error"} {
		if err := f.level.Set(v); err != nil {
			t.Errorf("--log-level %s = %v, want it taken", v, err)
		}
	}
}

// The real binary with --log-format json logs one JSON object a line, an
// "rpc call" line per call without the token, and its admin listener
// serves metrics a Prometheus parser reads and /readyz.
func TestServeObserved(t *testing.T) {
	p := start(t, dataDir(t), "--log-format", "json", "--log-level", "debug")
	ctx := context.Background()
	res, err := p.client.OpenSession(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if active, err := p.client.VerifySessionToken(ctx, res.AccessToken); !active || err != nil {
		t.Fatalf("verify = %v, %v", active, err)
	}
	resp, err := http.Get(p.admin + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	found := false
	for _, m := range families["sessiond_rpc_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["method"] == "session.verify_session_token" && labels["code"] == "ok" {
			found = m.GetCounter().GetValue() == 1
		}
	}
	if !found || families["sessiond_build_info"] == nil || families["process_resident_memory_bytes"] == nil {
		t.Errorf("GET /metrics of the binary: want one verify call, build info and process metrics; got %d families", len(families))
	}
	if resp, err := http.Get(p.admin + "readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /readyz = %v, %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.stderr.String(), `"msg":"rpc call"`) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no two rpc call lines after 20s:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("log line %q is not JSON: %v", sc.Text(), err)
		}
	}
	if strings.Contains(p.stderr.String(), res.AccessToken[strings.LastIndexByte(res.AccessToken, '.')+1:]) {
		t.Error("the log holds a token's signature")
	}
}
