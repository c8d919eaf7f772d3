package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/session"
)

// example is an OpenRPC example pairing object as session/openrpc.json
// writes it, with its two extensions: "x-token" on a param (the kind of
// token to substitute for the placeholder value) and "x-placeholders" on
// the result (members whose values depend on the token or the server).
type example struct {
	Name   string `json:"name"`
	Params []struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
		Token string          `json:"x-token"`
	} `json:"params"`
	Result struct {
		Value        json.RawMessage `json:"value"`
		Placeholders []string        `json:"x-placeholders"`
	} `json:"result"`
}

// discoverDoc calls rpc.discover on p and returns the methods' examples in
// document order.
func discoverDoc(t *testing.T, p *process) (methods []string, examples map[string][]example) {
	t.Helper()
	var doc struct {
		Methods []struct {
			Name     string    `json:"name"`
			Examples []example `json:"examples"`
		} `json:"methods"`
	}
	if err := p.client.Call(context.Background(), "rpc.discover", nil, &doc); err != nil {
		t.Fatalf("rpc.discover: %v", err)
	}
	examples = map[string][]example{}
	for _, m := range doc.Methods {
		methods = append(methods, m.Name)
		examples[m.Name] = m.Examples
	}
	return methods, examples
}

// exampleToken returns a token of the kind an example's "x-token" names.
func exampleToken(t *testing.T, p *process, kind string) string {
	t.Helper()
	ctx := context.Background()
	var res struct {
		AccessToken string `json:"access_token"`
	}
	params := map[string]any{}
	if kind == "open-subject" {
		params = map[string]any{"expires_in": 3600, "subject": "alice@example.com"}
	}
	if err := p.client.Call(ctx, "session.open_session", params, &res); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "open", "open-subject":
	case "closed":
		if err := p.client.CloseSession(ctx, res.AccessToken); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf(`unknown "x-token": %q (want open, open-subject or closed)`, kind)
	}
	return res.AccessToken
}

// claimsOf decodes the payload of a JWT without verifying it (the server
// just issued it; its answers are what is under test).
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWS", tok)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil {
		t.Fatalf("access token payload: %v", err)
	}
	return claims
}

// Every example of the OpenRPC document, the API document's among them,
// gets the documented answer from the live server, by name and by
// position. A token in an example is a placeholder (the API document's
// 00890640-…): where the param says "x-token", a real token of that kind is
// sent instead; members the result lists in "x-placeholders" must be there
// with a value of the same type, and are checked for what they stand for
// (an access token that verify_session_token calls active, the claims of
// the token sent, the document itself); every other member must be equal.
func TestOpenRPCExamples(t *testing.T) {
	methods, examples := discoverDoc(t, startInProcess(t, dataDir(t)))
	n := 0
	for _, method := range methods {
		// A server per method: close_all_sessions's example closes the
		// sessions of the subject the other examples open.
		p := startInProcess(t, dataDir(t))
		for _, ex := range examples[method] {
			n++
			for _, byPosition := range []bool{false, true} {
				name := method + "/" + ex.Name + "/by name"
				if byPosition {
					name = method + "/" + ex.Name + "/by position"
				}
				t.Run(name, func(t *testing.T) { runExample(t, p, method, ex, byPosition) })
			}
		}
	}
	if n < 11 {
		t.Errorf("the document has %d examples, want at least the 11 written", n)
	}
}

func runExample(t *testing.T, p *process, method string, ex example, byPosition bool) {
	byName := map[string]json.RawMessage{}
	var positional []json.RawMessage
	var sent string // the real token sent, if any
	for _, param := range ex.Params {
		v := param.Value
		if param.Token != "" {
			sent = exampleToken(t, p, param.Token)
			v, _ = json.Marshal(sent)
		}
		byName[param.Name] = v
		positional = append(positional, v)
	}
	var params any = byName
	if byPosition {
		params = positional
	}
	shown, _ := json.Marshal(params)
	var got any
	if err := p.client.Call(context.Background(), method, params, &got); err != nil {
		t.Fatalf("%s(%s): %v", method, shown, err)
	}
	var want any
	if err := json.Unmarshal(ex.Result.Value, &want); err != nil {
		t.Fatalf("example result %s: %v", ex.Result.Value, err)
	}
	if len(ex.Result.Placeholders) > 0 {
		gotObj, ok1 := got.(map[string]any)
		wantObj, ok2 := want.(map[string]any)
		if !ok1 || !ok2 {
			t.Fatalf("%s = %v, want an object like %v", method, got, want)
		}
		for _, key := range ex.Result.Placeholders {
			g, ok := gotObj[key]
			if !ok || reflect.TypeOf(g) != reflect.TypeOf(wantObj[key]) {
				t.Errorf("%s: result member %q = %#v, want one of the type of the placeholder %#v", method, key, g, wantObj[key])
			}
			wantObj[key] = g
		}
		checkPlaceholders(t, p, method, sent, gotObj)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s(%s) = %v, want the documented %v", method, shown, got, want)
	}
}

// checkPlaceholders checks what the placeholders of a result stand for.
func checkPlaceholders(t *testing.T, p *process, method, sent string, got map[string]any) {
	t.Helper()
	switch method {
	case "session.open_session":
		tok, _ := got["access_token"].(string)
		if active, err := p.client.VerifySessionToken(context.Background(), tok); !active || err != nil {
			t.Errorf("the access token open_session answered: active = %v, %v, want true", active, err)
		}
	case "session.introspect_session_token":
		claims := claimsOf(t, sent)
		for _, key := range []string{"exp", "iat", "jti"} {
			if got[key] != claims[key] {
				t.Errorf("introspect %q = %v, want the token's %v", key, got[key], claims[key])
			}
		}
	case "rpc.discover":
		var doc map[string]any
		json.Unmarshal(session.OpenRPC(0), &doc)
		if !reflect.DeepEqual(map[string]any(got), doc) {
			t.Errorf("rpc.discover is not the embedded document")
		}
	}
}

// The OpenRPC project's own validator (@open-rpc/schema-utils-js, pinned in
// interop/package-lock.json) accepts the document rpc.discover serves from
// the running binary, and every example's params and result fit their
// schemas; a document with a broken method is refused, so the check can
// fail.
func TestOpenRPCValidator(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node is not installed: install Node.js 20 or later, then run `npm ci --prefix interop`")
	}
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "@open-rpc", "schema-utils-js", "package.json")); err != nil {
		skipOrFail(t, "interop/node_modules/@open-rpc/schema-utils-js is missing: run `npm ci --prefix interop`")
	}
	validate := func(url string) result {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, filepath.Join(interopDir, "openrpc.mjs"), url)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			r.code = exit.ExitCode()
		case err != nil:
			t.Fatalf("node: %v", err)
		}
		return r
	}

	p := start(t, dataDir(t))
	r := validate(p.url)
	if r.code != 0 {
		t.Fatalf("node openrpc.mjs %s: exit %d\n%s%s", p.url, r.code, r.stdout, r.stderr)
	}
	var summary struct {
		OpenRPC  string
		Methods  []string
		Examples int
	}
	if err := json.Unmarshal([]byte(r.stdout), &summary); err != nil || summary.OpenRPC != "1.3.2" || len(summary.Methods) != 6 || summary.Examples < 11 {
		t.Errorf("validator summary %q (%v), want openrpc 1.3.2, 6 methods, at least 11 examples", r.stdout, err)
	}

	// Controls: a method without a name; an example whose result does not
	// fit the result schema.
	broken := func(change func(doc map[string]any)) string {
		var doc map[string]any
		json.Unmarshal(session.OpenRPC(0), &doc)
		change(doc)
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "result": doc, "id": 1})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	method := func(doc map[string]any, i int) map[string]any { return doc["methods"].([]any)[i].(map[string]any) }
	for name, change := range map[string]func(map[string]any){
		"a method without a name": func(doc map[string]any) { delete(method(doc, 0), "name") },
		"a result example of the wrong type": func(doc map[string]any) {
			ex := method(doc, 1)["examples"].([]any)[0].(map[string]any)
			ex["result"].(map[string]any)["value"] = map[string]any{"active": "yes"}
		},
	} {
		if r := validate(broken(change)); r.code != 1 {
			t.Errorf("validator on %s: exit %d, want 1\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}
}

// skipOrFail skips the test with why, except under CI (CI=true), where what
// it needs must be installed (.ci/run installs it).
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
