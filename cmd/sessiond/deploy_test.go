package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// unitFile is the systemd unit the repository ships.
var unitFile = filepath.Join("..", "..", "deploy", "sessiond.service")

// unitSettings returns the unit's KEY=VALUE lines, by key, in order.
func unitSettings(t *testing.T, unit string) map[string][]string {
	t.Helper()
	settings := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("unit line %q is not KEY=VALUE", line)
		}
		settings[k] = append(settings[k], v)
	}
	return settings
}

// deploy/sessiond.service runs sessiond serve under its own user, with its
// data in the state directory (mode 0700, as sessiond requires), restarts
// it on failure, and hardens it; its ExecStart is a command line sessiond
// accepts.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	s := unitSettings(t, unit)
	for key, want := range map[string]string{
		"DynamicUser": "yes", "StateDirectory": "sessiond", "StateDirectoryMode": "0700", "Restart": "on-failure",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"KillSignal": "SIGTERM", "ExecReload": "/bin/kill -HUP $MAINPID", "UMask": "0077",
	} {
		if got := s[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %s=%s", key, got, key, want)
		}
	}
	if n, err := strconv.Atoi(strings.Join(s["LimitNOFILE"], "")); err != nil || n < 4096+1024 {
		t.Errorf("LimitNOFILE=%q, want at least %d (--max-connections 4096 + 1024)", s["LimitNOFILE"], 4096+1024)
	}
	exec := strings.Fields(strings.Join(s["ExecStart"], ""))
	if len(exec) < 2 || exec[0] != "/usr/local/bin/sessiond" || exec[1] != "serve" || !regexp.MustCompile(`--data-dir /var/lib/sessiond\b`).MatchString(strings.Join(exec, " ")) {
		t.Fatalf("ExecStart=%q, want /usr/local/bin/sessiond serve --data-dir /var/lib/sessiond", exec)
	}
	if _, err := parseServe(exec[2:], io.Discard); err != nil {
		t.Errorf("sessiond serve refuses the unit's flags %q: %v", exec[2:], err)
	}
}

// systemd's own checker accepts the unit without a complaint, and rates its
// exposure at most 2.0 ("OK"); skipped where systemd-analyze is not
// installed (CI need not have it).
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the unit is not checked")
	}
	bin, err := binary()
	if err != nil {
		t.Fatalf("build sessiond: %v", err)
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart is executable: point it at the binary
	// under test.
	unit := filepath.Join(t.TempDir(), "sessiond.service")
	os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/sessiond", bin)), 0o644)
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security --offline=yes --threshold=20 (exposure above 2.0): %v\n%s", err, out)
	}

	// A control: a misspelt setting is reported, which the test counts.
	bad := filepath.Join(t.TempDir(), "sessiond.service")
	os.WriteFile(bad, []byte(strings.ReplaceAll(strings.ReplaceAll(string(data), "/usr/local/bin/sessiond", bin), "ProtectSystem=", "ProtectSytem=")), 0o644)
	if out, _ := exec.Command(analyze, "verify", bad).CombinedOutput(); !strings.Contains(string(out), "ProtectSytem") {
		t.Errorf("systemd-analyze verify of a unit with a misspelt key said %q, want a complaint", out)
	}
}
