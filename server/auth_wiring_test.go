package server_test

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/clients"
	"github.com/sessiond/sessiond/server"
)

// With callers' credentials, the metrics count each kind of refusal
// exactly, the request log names the client of each call (never its
// secret), and the budget of failed signature checks is the client's: one
// client flooding forged tokens spends its own, not another's on the same
// address.
func TestCredentialsWiredToMetricsLogsAndBudget(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	billing := addClient(t, dir, "billing", clients.Open, clients.Verify)
	web := addClient(t, dir, "web-1", clients.Verify)
	logs := new(syncBuffer)
	srv := open(t, server.Config{DataDir: dir, AdminListen: "127.0.0.1:0", InvalidTokenBudget: 2,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	o := &observed{srv: srv, api: "http://" + srv.Addr() + "/", admin: "http://" + srv.AdminAddr() + "/", dataDir: dir, logs: logs}

	for range 2 {
		call(t, nil, o.api, "", `{"jsonrpc":"2.0","method":"session.verify_session_token","params":["x"],"id":1}`)
	}
	for range 3 {
		call(t, nil, o.api, "wrong-secret", `{"jsonrpc":"2.0","method":"session.verify_session_token","params":["x"],"id":1}`)
	}
	if _, _, body := call(t, nil, o.api, web, `{"jsonrpc":"2.0","method":"session.open_session","id":1}`); !strings.Contains(body, "-32003") {
		t.Fatalf("open_session by web-1 = %s, want -32003", body)
	}
	families := scrape(t, o.admin)
	for reason, want := range map[string]float64{server.AuthMissing: 2, server.AuthInvalid: 3, server.AuthForbidden: 1} {
		if got, _ := sample(families, "sessiond_auth_failures_total", "reason", reason); got != want {
			t.Errorf("sessiond_auth_failures_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}

	_, _, body := call(t, nil, o.api, billing, `{"jsonrpc":"2.0","method":"session.open_session","id":1}`)
	tok := body[strings.Index(body, `"access_token":"`)+len(`"access_token":"`):]
	tok = tok[:strings.IndexByte(tok, '"')]
	verify := func(secret, tok string) string {
		_, _, body := call(t, nil, o.api, secret, `{"jsonrpc":"2.0","method":"session.verify_session_token","params":["`+tok+`"],"id":1}`)
		return body
	}
	for i := range 2 {
		if got := verify(billing, forge(tok, i)); !strings.Contains(got, `"active":false`) {
			t.Fatalf("billing's forged token %d = %s, want inactive", i, got)
		}
	}
	if got := verify(billing, forge(tok, 2)); !strings.Contains(got, "-32005") {
		t.Errorf("billing past its budget = %s, want -32005", got)
	}
	if got := verify(web, tok); !strings.Contains(got, `"active":true`) {
		t.Errorf("web-1, same address, a token never verified = %s, want active: the budget is per client", got)
	}

	var named bool
	for _, l := range o.logLines(t) {
		if l["msg"] == "rpc call" && l["client"] == "web-1" && l["method"] == "session.verify_session_token" {
			named = true
		}
	}
	if !named {
		t.Errorf("no rpc call line names client web-1:\n%s", logs.String())
	}
	assertNoSecrets(t, logs.String(), dir, tok)
	for _, secret := range []string{billing, web} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds a client's secret")
		}
	}
}

// Every -32001 and -32003 the OpenRPC document lists (rpc.discover) is what
// a real caller gets: each method without credentials, and each method a
// client lacks the permission for.
func TestDiscoverDocumentsAuthErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	reader := addClient(t, dir, "reader", clients.Open) // may not close or verify
	srv := open(t, server.Config{DataDir: dir})
	api := "http://" + srv.Addr() + "/"
	_, _, body := call(t, nil, api, reader, `{"jsonrpc":"2.0","method":"rpc.discover","id":1}`)
	var doc struct {
		Result struct {
			Methods []struct {
				Name   string            `json:"name"`
				Errors []json.RawMessage `json:"errors"`
			} `json:"methods"`
			Components struct {
				Errors map[string]struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"errors"`
			} `json:"components"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Result.Methods) == 0 {
		t.Fatalf("rpc.discover = %.200s: %v", body, err)
	}
	checked := 0
	for _, m := range doc.Result.Methods {
		for _, raw := range m.Errors {
			var ref struct {
				Ref string `json:"$ref"`
			}
			json.Unmarshal(raw, &ref)
			e, ok := doc.Result.Components.Errors[strings.TrimPrefix(ref.Ref, "#/components/errors/")]
			if !ok || e.Code != -32001 && e.Code != -32003 {
				continue
			}
			req := `{"jsonrpc":"2.0","method":"` + m.Name + `","params":{},"id":1}`
			if e.Code == -32003 && m.Name == "session.open_session" {
				continue // reader may open; its -32003 is provoked for the others
			}
			secret, wantStatus, want := "", 401, `"code":-32001,"message":"unauthorized"`
			if e.Code == -32003 {
				secret, wantStatus = reader, 200
				msg := strings.NewReplacer("NAME", "reader", "METHOD", m.Name).Replace(e.Message)
				want = `"code":-32003,"message":"` + msg + `"`
			}
			status, _, got := call(t, nil, api, secret, req)
			if status != wantStatus || !strings.Contains(got, want) {
				t.Errorf("%s (documented %d %q) = HTTP %d %s, want HTTP %d with %s", m.Name, e.Code, e.Message, status, got, wantStatus, want)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("checked %d documented auth errors, want every method's but reader's own (10)", checked)
	}
}
