package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
)

// openRPCDoc is the part of an OpenRPC document these tests read.
type openRPCDoc struct {
	OpenRPC string `json:"openrpc"`
	Methods []struct {
		Name   string            `json:"name"`
		Errors []json.RawMessage `json:"errors"`
	} `json:"methods"`
	Components struct {
		Errors map[string]rpc.Error `json:"errors"`
	} `json:"components"`
}

// decodeOpenRPC parses doc, failing the test on anything but valid JSON.
func decodeOpenRPC(t *testing.T, doc []byte) openRPCDoc {
	t.Helper()
	var d openRPCDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("OpenRPC document: %v", err)
	}
	return d
}

// errorsOf returns the errors the document lists for each method, with
// references (#/components/errors/NAME) resolved.
func errorsOf(t *testing.T, d openRPCDoc) map[string][]rpc.Error {
	t.Helper()
	out := map[string][]rpc.Error{}
	for _, m := range d.Methods {
		for _, raw := range m.Errors {
			var e struct {
				rpc.Error
				Ref string `json:"$ref"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("%s: error %s: %v", m.Name, raw, err)
			}
			if e.Ref != "" {
				ref, ok := d.Components.Errors[strings.TrimPrefix(e.Ref, "#/components/errors/")]
				if !ok || !strings.HasPrefix(e.Ref, "#/components/errors/") {
					t.Fatalf("%s: error reference %q resolves to nothing", m.Name, e.Ref)
				}
				e.Error = ref
			}
			out[m.Name] = append(out[m.Name], e.Error)
		}
	}
	return out
}

// discoverStore is the faultStore that can also refuse Revoke as a full
// disk does.
type discoverStore struct {
	*faultStore
	revokeDiskFull bool
}

func (s *discoverStore) Revoke(ctx context.Context, id uuid.UUID, until time.Time) error {
	if s.revokeDiskFull {
		return fmt.Errorf("revoke: %w", revocation.ErrDiskFull)
	}
	return s.faultStore.Revoke(ctx, id, until)
}

// post sends one request to url and returns its raw result and error.
func post(t *testing.T, url, method, params string) (json.RawMessage, *rpc.Error) {
	t.Helper()
	body := `{"jsonrpc":"2.0","method":"` + method + `","id":1`
	if params != "" {
		body += `,"params":` + params
	}
	resp, err := http.Post(url, "application/json", strings.NewReader(body+"}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *rpc.Error      `json:"error"`
	}
	if err := json.Unmarshal(data, &reply); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d %s: %v", body, resp.StatusCode, data, err)
	}
	return reply.Result, reply.Error
}

// rpc.discover answers with the embedded document, which names exactly the
// methods of the table, each once.
func TestDiscoverServesTheDocument(t *testing.T) {
	s := newService(t)
	result, rpcErr := post(t, s.url, "rpc.discover", "")
	if rpcErr != nil {
		t.Fatalf("rpc.discover error = %v", rpcErr)
	}
	var got, want bytes.Buffer
	json.Compact(&got, result)
	json.Compact(&want, session.OpenRPC(0))
	if got.String() != want.String() {
		t.Errorf("rpc.discover = %s\nwant session.OpenRPC(0) = %s", got.String(), want.String())
	}
	d := decodeOpenRPC(t, result)
	if d.OpenRPC != "1.3.2" {
		t.Errorf(`"openrpc" = %q, want "1.3.2"`, d.OpenRPC)
	}
	var documented []string
	for _, m := range d.Methods {
		documented = append(documented, m.Name)
	}
	var served []string
	for name := range session.New(nil, nil) {
		served = append(served, name)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Errorf("the document describes %q, the method table serves %q", documented, served)
	}
}

// With --max-expires-in shorter than the default, the document says the
// maximum the server enforces, in the schema and in the very message
// open_session answers.
func TestDiscoverMaxExpiresIn(t *testing.T) {
	s := newServiceMax(t, time.Hour)
	result, rpcErr := post(t, s.url, "rpc.discover", "[]")
	if rpcErr != nil {
		t.Fatalf("rpc.discover error = %v", rpcErr)
	}
	var d struct {
		Methods []struct {
			Name   string `json:"name"`
			Params []struct {
				Name   string `json:"name"`
				Schema struct {
					Maximum *int64 `json:"maximum"`
				} `json:"schema"`
			} `json:"params"`
		} `json:"methods"`
	}
	if err := json.Unmarshal(result, &d); err != nil {
		t.Fatal(err)
	}
	if p := d.Methods[0].Params[0]; d.Methods[0].Name != "session.open_session" || p.Name != "expires_in" || p.Schema.Maximum == nil || *p.Schema.Maximum != 3600 {
		t.Errorf("%s(%s) schema maximum = %v, want 3600", d.Methods[0].Name, p.Name, p.Schema.Maximum)
	}
	_, got := post(t, s.url, "session.open_session", `{"expires_in":3601}`)
	documented := errorsOf(t, decodeOpenRPC(t, result))["session.open_session"]
	if got == nil || !slices.ContainsFunc(documented, func(e rpc.Error) bool { return e.Code == got.Code && e.Message == got.Message }) {
		t.Errorf("open_session(3601) error = %v, want one of the documented %v", got, documented)
	}
}

// Every error the document lists is one the server answers, code and
// message byte for byte, provoked here through the HTTP edge (the store's
// failures injected); and every provoked error is listed.
func TestDiscoverErrorsAreAnswered(t *testing.T) {
	dir := t.TempDir()
	real, err := revocation.OpenBadger(filepath.Join(dir, "revocations"), revocation.Options{})
	if err != nil {
		t.Fatalf("OpenBadger() error = %v", err)
	}
	t.Cleanup(func() { real.Close() })
	store := &discoverStore{faultStore: &faultStore{real: real}}
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: session.DefaultMaxExpiresIn}, keys.KeyringOptions{})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	srv := httptest.NewServer(rpc.NewHandler(session.New(store, ring), rpc.HandlerOptions{}))
	t.Cleanup(srv.Close)
	open := func(t *testing.T) string {
		result, rpcErr := post(t, srv.URL, "session.open_session", `{"subject":"alice@example.com"}`)
		var res session.OpenResult
		if rpcErr != nil || json.Unmarshal(result, &res) != nil {
			t.Fatalf("open_session = %s, %v", result, rpcErr)
		}
		return `{"token":"` + res.AccessToken + `"}`
	}

	type fault int
	const (
		none fault = iota
		reads
		writes
		revokeDiskFull
		cutOffDiskFull
		overBudget // the caller spent its budget of failed signature checks
	)
	type provoke struct {
		params string // "TOKEN": a token just opened
		fault  fault
	}
	// By method and message. An internal error of open_session is
	// documented but not provoked: only a broken key ring makes signing fail.
	tests := map[string]map[string]provoke{
		"session.open_session": {
			"expires_in must be null or a whole number of seconds from 1 to 31536000":                      {params: `{"expires_in":0}`},
			"subject must be null or a string of 1 to 256 bytes of valid UTF-8 without control characters": {params: `{"subject":""}`},
			`unknown parameter "expires", allowed: "expires_in", "subject"`:                                {params: `{"expires":60}`},
			`too many parameters: got 3, the method takes at most 2 ("expires_in", "subject")`:             {params: `[null,null,null]`},
		},
		"rpc.discover": {
			`unknown parameter "version", the method takes no parameters`: {params: `{"version":1}`},
			"too many parameters: got 1, the method takes none":           {params: `[1]`},
		},
		"session.close_all_sessions": {
			"subject is required: a string of 1 to 256 bytes of valid UTF-8 without control characters":                   {params: `{}`},
			"subject must be a string of 1 to 256 bytes of valid UTF-8 without control characters":                        {params: `{"subject":7}`},
			`unknown parameter "sub", allowed: "subject"`:                                                                 {params: `{"sub":"alice@example.com"}`},
			`too many parameters: got 2, the method takes at most 1 ("subject")`:                                          {params: `["a","b"]`},
			"internal error: the revocation list cannot be written (disk full); the sessions are not closed, retry later": {params: `{"subject":"alice@example.com"}`, fault: cutOffDiskFull},
			"internal error": {params: `{"subject":"alice@example.com"}`, fault: writes},
		},
	}
	tokenErrors := map[string]provoke{
		"token is required":                                                {params: `{}`},
		"token must be a string":                                           {params: `{"token":7}`},
		`unknown parameter "tok", allowed: "token"`:                        {params: `{"tok":"x"}`},
		`too many parameters: got 2, the method takes at most 1 ("token")`: {params: `["a","b"]`},
	}
	for _, m := range []string{"session.verify_session_token", "session.close_session", "session.introspect_session_token"} {
		tests[m] = maps.Clone(tokenErrors)
		tests[m]["internal error"] = provoke{params: "TOKEN", fault: reads}
	}
	tests["session.close_session"]["internal error"] = provoke{params: "TOKEN", fault: writes}
	for _, m := range []string{"session.verify_session_token", "session.introspect_session_token"} {
		tests[m]["too many invalid tokens, retry later"] = provoke{params: "TOKEN", fault: overBudget}
	}
	tests["session.close_session"]["internal error: the revocation list cannot be written (disk full); the session is not closed, retry later"] = provoke{params: "TOKEN", fault: revokeDiskFull}

	documented := errorsOf(t, decodeOpenRPC(t, session.OpenRPC(0)))
	for method, errs := range documented {
		for _, e := range errs {
			t.Run(method+"/"+e.Message, func(t *testing.T) {
				p, ok := tests[method][e.Message]
				if !ok {
					if method == "session.open_session" && e.Code == rpc.CodeInternalError && e.Message == "internal error" {
						return
					}
					if e.Code == -32001 || e.Code == -32003 {
						return // the server's, with callers' credentials: server/auth_wiring_test.go provokes them
					}
					t.Fatalf("documented error %d %q has no request that provokes it here", e.Code, e.Message)
				}
				delete(tests[method], e.Message)
				params := p.params
				if params == "TOKEN" {
					params = open(t)
				}
				store.failReads.Store(p.fault == reads)
				store.failWrites.Store(p.fault == writes)
				store.cutOffDiskFull.Store(p.fault == cutOffDiskFull)
				store.revokeDiskFull = p.fault == revokeDiskFull
				defer func() {
					store.failReads.Store(false)
					store.failWrites.Store(false)
					store.cutOffDiskFull.Store(false)
					store.revokeDiskFull = false
				}()
				url := srv.URL
				if p.fault == overBudget { // the same service with a budget of one failed signature check
					rationed := httptest.NewServer(rpc.NewHandler(session.New(store, ring, session.WithInvalidTokenBudget(1, nil, nil)), rpc.HandlerOptions{}))
					defer rationed.Close()
					url = rationed.URL
					forged := params[:len(params)-4] + "AAAA\"}" // another signature
					if _, rpcErr := post(t, url, "session.verify_session_token", forged); rpcErr != nil {
						t.Fatalf("forged token within the budget: %v", rpcErr)
					}
				}
				result, got := post(t, url, method, params)
				if got == nil || got.Code != e.Code || got.Message != e.Message || got.Data != nil {
					t.Errorf("%s(%s) = %s, error %v, want the documented %d %q", method, params, result, got, e.Code, e.Message)
				}
			})
		}
	}
	for method, left := range tests {
		for msg := range left {
			t.Errorf("%s answers %q, which the document does not list", method, msg)
		}
	}
}
