package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

// rpcCall posts one JSON-RPC request with params (JSON) to the server and
// returns its result; an error reply fails the test.
func rpcCall(t *testing.T, p *process, method, params string) string {
	t.Helper()
	resp, err := http.Post(p.url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"`+method+`","params":`+params+`,"id":1}`))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &reply); err != nil || reply.Error != nil {
		t.Fatalf("%s(%s) = %s, %v", method, params, data, err)
	}
	return string(reply.Result)
}

// openSubject opens a session of subject on p and returns its token.
func openSubject(t *testing.T, p *process, subject string) string {
	t.Helper()
	var res struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal([]byte(rpcCall(t, p, "session.open_session", `{"expires_in":3600,"subject":"`+subject+`"}`)), &res)
	if res.AccessToken == "" {
		t.Fatal("open_session gave no token")
	}
	return res.AccessToken
}

// The real binary: close_all_sessions answered true is on disk before the
// reply, so a SIGKILL right after it loses nothing; the sessions of the
// subject stay closed on verify and introspect after the restart, and
// another subject's stay open.
func TestCloseAllSessionsSurvivesSIGKILL(t *testing.T) {
	dir := dataDir(t)
	p := start(t, dir)
	var alice, bob []string
	for range 10 {
		alice = append(alice, openSubject(t, p, "alice@example.com"))
	}
	for range 3 {
		bob = append(bob, openSubject(t, p, "bob@example.com"))
	}
	if got := rpcCall(t, p, "session.close_all_sessions", `{"subject":"alice@example.com"}`); got != "true" {
		t.Fatalf("close_all_sessions = %s, want true", got)
	}
	p.stop(t, syscall.SIGKILL)

	p = start(t, dir)
	check := func(toks []string, verify, introspect string) {
		t.Helper()
		for _, tok := range toks {
			params := `{"token":"` + tok + `"}`
			if got := rpcCall(t, p, "session.verify_session_token", params); got != verify {
				t.Errorf("verify after SIGKILL = %s, want %s", got, verify)
			}
			if got := rpcCall(t, p, "session.introspect_session_token", params); !strings.HasPrefix(got, introspect) {
				t.Errorf("introspect after SIGKILL = %s, want %s…", got, introspect)
			}
		}
	}
	check(alice, `{"active":false}`, `{"active":false}`)
	check(bob, `{"active":true}`, `{"active":true,"sub":"bob@example.com",`)
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: exit %v\n%s", err, p.stderr)
	}
}

// sessiond verify --revocations sees close_all_sessions: the feed carries
// the subject's cutoff, and a closed subject's token is invalid (exit 1)
// while another subject's verifies (exit 0).
func TestVerifyCommandSeesCloseAll(t *testing.T) {
	t.Parallel()
	p := startInProcess(t, dataDir(t))
	closed := openSubject(t, p, "carol@example.com")
	open := openSubject(t, p, "dave@example.com")
	if got := rpcCall(t, p, "session.close_all_sessions", `{"subject":"carol@example.com"}`); got != "true" {
		t.Fatalf("close_all_sessions = %s, want true", got)
	}
	feed := p.url + "revocations"
	if code, out := runVerify(t, "--jwks", p.jwksURL(), "--revocations", feed, closed); code != 1 || !strings.Contains(out, "subject") {
		t.Errorf("verify --revocations of a closed subject's token = exit %d %q, want exit 1 saying its subject was closed", code, out)
	}
	if code, out := runVerify(t, "--jwks", p.jwksURL(), "--revocations", feed, open); code != 0 {
		t.Errorf("verify --revocations of another subject's token = exit %d %q, want 0", code, out)
	}
}
