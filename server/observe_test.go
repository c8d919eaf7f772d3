package server_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/server"
)

// observed is a running server with its admin listener and its JSON log.
type observed struct {
	srv       *server.Server
	api       string // base URL
	admin     string // base URL
	dataDir   string
	logs      *syncBuffer
	requestID int
}

func openObserved(t *testing.T) *observed {
	t.Helper()
	logs := new(syncBuffer)
	dir := filepath.Join(t.TempDir(), "data")
	srv := open(t, server.Config{DataDir: dir, AdminListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	return &observed{srv: srv, api: "http://" + srv.Addr() + "/", admin: "http://" + srv.AdminAddr() + "/", dataDir: dir, logs: logs}
}

// rpc posts body to the API and returns the decoded reply (an object or an
// array) and the reply's X-Request-Id.
func (o *observed) rpc(t *testing.T, body string, header ...string) (any, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, o.api, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var reply any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &reply); err != nil {
			t.Fatalf("POST %s: %v in %s", body, err, data)
		}
	}
	return reply, resp.Header.Get(server.RequestIDHeader)
}

// call makes one JSON-RPC call and returns its result, failing on an error
// object unless wantCode says which code to expect.
func (o *observed) call(t *testing.T, method, params string, wantCode ...int) any {
	t.Helper()
	reply, _ := o.rpc(t, fmt.Sprintf(`{"jsonrpc":"2.0","method":%q,"params":%s,"id":1}`, method, params))
	m, _ := reply.(map[string]any)
	if e, ok := m["error"].(map[string]any); ok {
		if len(wantCode) == 0 || e["code"] != float64(wantCode[0]) {
			t.Fatalf("%s(%s) error = %v", method, params, e)
		}
		return nil
	}
	if len(wantCode) > 0 {
		t.Fatalf("%s(%s) = %v, want error %d", method, params, m["result"], wantCode[0])
	}
	return m["result"]
}

func (o *observed) open(t *testing.T, params string) string {
	t.Helper()
	res, _ := o.call(t, "session.open_session", params).(map[string]any)
	tok, _ := res["access_token"].(string)
	if tok == "" {
		t.Fatalf("open_session(%s) = %v, want a token", params, res)
	}
	return tok
}

// scrape reads GET /metrics through the Prometheus text parser.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, admin+"metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s, want 200 text/plain", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: the Prometheus text parser says %v", err)
	}
	return families
}

// sample returns the value of the series of family name with exactly the
// given labels (name=value pairs): a counter's or gauge's value, a
// histogram's count; ok is false when there is no such series.
func sample(families map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// After a known number of calls of each kind, every counter scraped through
// the Prometheus text parser moved by exactly that number, and the gauges
// say what the server holds.
func TestMetrics(t *testing.T) {
	o := openObserved(t)
	before := scrape(t, o.admin)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "sessiond_build_info",
		"sessiond_rpc_requests_total", "sessiond_rpc_request_duration_seconds", "sessiond_verify_results_total",
		"sessiond_revocations", "sessiond_revocation_writes_total", "sessiond_revocation_commit_batch_size",
		"sessiond_keys", "sessiond_key_next_activation_timestamp_seconds", "sessiond_auth_failures_total"} {
		if before[name] == nil {
			t.Errorf("GET /metrics has no %s", name)
		}
	}
	if v, ok := sample(before, "sessiond_build_info", "version", "devel", "revision", "unknown", "goversion", runtime.Version()); !ok || v != 1 {
		// go test builds without VCS information (-buildvcs is off for tests).
		t.Errorf("sessiond_build_info{version=devel,revision=unknown,goversion=%s} = %v, %v, want 1", runtime.Version(), v, ok)
	}
	for _, reason := range []string{"missing", "invalid", "forbidden"} {
		if v, ok := sample(before, "sessiond_auth_failures_total", "reason", reason); !ok || v != 0 {
			t.Errorf("sessiond_auth_failures_total{reason=%q} = %v, %v, want 0", reason, v, ok)
		}
	}

	const opens, verifies, closes, garbage = 7, 5, 3, 4
	var toks []string
	for range opens {
		toks = append(toks, o.open(t, `{"expires_in":3600}`))
	}
	for i := range verifies {
		o.call(t, "session.verify_session_token", `{"token":"`+toks[i]+`"}`)
	}
	for i := range closes {
		o.call(t, "session.close_session", `{"token":"`+toks[opens-1-i]+`"}`)
	}
	o.call(t, "session.verify_session_token", `{"token":"`+toks[opens-1]+`"}`) // revoked
	for range garbage {
		o.call(t, "session.verify_session_token", `{"token":"garbage"}`) // malformed
	}
	o.call(t, "session.introspect_session_token", `{"token":"`+toks[0]+`"}`)
	o.call(t, "session.close_all_sessions", `{"subject":"alice@example.com"}`)
	o.call(t, "session.open_session", `{"expires_in":0}`, -32602)
	o.call(t, "no.such.method", `{}`, -32601)
	o.rpc(t, `[{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"x"},"id":1},{"jsonrpc":"2.0","method":"nope"},42]`)

	after := scrape(t, o.admin)
	for _, tt := range []struct {
		name   string
		labels []string
		moved  float64
	}{
		{"sessiond_rpc_requests_total", []string{"method", "session.open_session", "code", "ok"}, opens},
		{"sessiond_rpc_requests_total", []string{"method", "session.open_session", "code", "-32602"}, 1},
		{"sessiond_rpc_requests_total", []string{"method", "session.verify_session_token", "code", "ok"}, verifies + 1 + garbage + 1},
		{"sessiond_rpc_requests_total", []string{"method", "session.close_session", "code", "ok"}, closes},
		{"sessiond_rpc_requests_total", []string{"method", "session.introspect_session_token", "code", "ok"}, 1},
		{"sessiond_rpc_requests_total", []string{"method", "session.close_all_sessions", "code", "ok"}, 1},
		{"sessiond_rpc_requests_total", []string{"method", "other", "code", "-32601"}, 2}, // the call and the batch's notification
		{"sessiond_rpc_requests_total", []string{"method", "other", "code", "-32600"}, 1},
		{"sessiond_rpc_request_duration_seconds", []string{"method", "session.open_session"}, opens + 1},
		{"sessiond_rpc_request_duration_seconds", []string{"method", "session.verify_session_token"}, verifies + 1 + garbage + 1},
		{"sessiond_rpc_request_duration_seconds", []string{"method", "session.close_session"}, closes},
		{"sessiond_rpc_request_duration_seconds", []string{"method", "other"}, 3},
		{"sessiond_verify_results_total", []string{"result", "active"}, verifies + 1},
		{"sessiond_verify_results_total", []string{"result", "revoked"}, 1},
		{"sessiond_verify_results_total", []string{"result", "malformed"}, garbage + 1},
		{"sessiond_verify_results_total", []string{"result", "expired"}, 0},
		{"sessiond_verify_results_total", []string{"result", "signature"}, 0},
		{"sessiond_revocation_writes_total", nil, closes + 1},
		{"sessiond_auth_failures_total", []string{"reason", "missing"}, 0},
	} {
		b, _ := sample(before, tt.name, tt.labels...)
		a, ok := sample(after, tt.name, tt.labels...)
		if !ok || a-b != tt.moved {
			t.Errorf("%s%v moved by %v (%v to %v, found %v), want %v", tt.name, tt.labels, a-b, b, a, ok, tt.moved)
		}
	}
	// Every write went through a group commit: the batch sizes add up.
	var batchSum float64
	for _, m := range after["sessiond_revocation_commit_batch_size"].GetMetric() {
		batchSum = m.GetHistogram().GetSampleSum()
	}
	if batchSum != closes+1 {
		t.Errorf("sessiond_revocation_commit_batch_size sum = %v, want %v", batchSum, closes+1)
	}
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sessiond_revocations", nil, closes},
		{"sessiond_keys", []string{"state", "active"}, 1},
		{"sessiond_keys", []string{"state", "next"}, 0},
		{"sessiond_keys", []string{"state", "retired"}, 0},
		{"sessiond_key_next_activation_timestamp_seconds", nil, 0},
	} {
		if v, ok := sample(after, tt.name, tt.labels...); !ok || v != tt.want {
			t.Errorf("%s%v = %v (found %v), want %v", tt.name, tt.labels, v, ok, tt.want)
		}
	}
	o.srv.CountAuthFailure(server.AuthForbidden)
	o.srv.CountAuthFailure("made-up")
	last := scrape(t, o.admin)
	if v, _ := sample(last, "sessiond_auth_failures_total", "reason", "forbidden"); v != 1 {
		t.Errorf("after CountAuthFailure(forbidden): sessiond_auth_failures_total{reason=forbidden} = %v, want 1", v)
	}
	if v, _ := sample(last, "sessiond_auth_failures_total", "reason", "other"); v != 1 {
		t.Errorf("after CountAuthFailure(made-up): sessiond_auth_failures_total{reason=other} = %v, want 1", v)
	}
}

// A key scheduled by rotation shows as next, with its activation time.
func TestMetricsNextKey(t *testing.T) {
	o := openObserved(t)
	// Rotate through the key file, as `sessiond keys rotate` does, and let
	// the server pick it up.
	rotateKeyFile(t, o.dataDir, time.Hour)
	o.srv.ReloadKeys()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := scrape(t, o.admin)
		next, _ := sample(m, "sessiond_keys", "state", "next")
		ts, _ := sample(m, "sessiond_key_next_activation_timestamp_seconds")
		if next == 1 {
			if d := time.Until(time.Unix(int64(ts), 0)); d < 50*time.Minute || d > 61*time.Minute {
				t.Errorf("sessiond_key_next_activation_timestamp_seconds = %v, %v from now, want about an hour", ts, d)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessiond_keys{state=next} = %v after 20s, want 1", next)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The operator's endpoints are on the admin listener only; /healthz on both.
func TestAdminEndpoints(t *testing.T) {
	o := openObserved(t)
	for _, tt := range []struct {
		url  string
		want int
	}{
		{o.admin + "metrics", 200}, {o.admin + "healthz", 200}, {o.admin + "readyz", 200},
		{o.admin + "debug/pprof/", 200}, {o.admin + "debug/pprof/goroutine?debug=1", 200},
		{o.admin + "debug/pprof/cmdline", 200}, {o.admin + "debug/stats", 200},
		{o.api + "healthz", 200},
		{o.api + "metrics", 404}, {o.api + "readyz", 404}, {o.api + "debug/pprof/", 404},
		{o.api + "debug/pprof/goroutine", 404}, {o.api + "debug/stats", 404},
	} {
		if got, body := get(t, tt.url); got != tt.want {
			t.Errorf("GET %s = %d %.80q, want %d", tt.url, got, body, tt.want)
		}
	}
	if _, body := get(t, o.admin+"readyz"); body != "ok\n" {
		t.Errorf("GET /readyz body = %q, want \"ok\\n\"", body)
	}
}

// Each JSON-RPC call gets one log line at Info with its method, code,
// duration, request id, client and jti; the request id is the caller's
// X-Request-Id when sane, else a new one, echoed; an internal error is
// logged at Error with its cause and the same request id; no token nor
// key ever reaches the log.
func TestRequestLog(t *testing.T) {
	o := openObserved(t)
	tok := o.open(t, `{"expires_in":3600}`)
	_, id := o.rpc(t, `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"`+tok+`"},"id":1}`,
		server.RequestIDHeader, "trace-42:abc")
	if id != "trace-42:abc" {
		t.Errorf("X-Request-Id echoed = %q, want the caller's trace-42:abc", id)
	}
	for _, bad := range []string{"has space", strings.Repeat("x", 129), "quote\"", "semi;colon"} {
		_, id := o.rpc(t, `{"jsonrpc":"2.0","method":"session.close_session","params":{"token":"`+tok+`"},"id":1}`,
			server.RequestIDHeader, bad)
		if id == bad || len(id) != 36 {
			t.Errorf("X-Request-Id %q: echoed %q, want a new UUID", bad, id)
		}
	}
	_, batchID := o.rpc(t, `[{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"`+tok+`"},"id":1},{"jsonrpc":"2.0","method":"session.verify_session_token","params":{},"id":2},{"jsonrpc":"2.0","method":"session.open_session","params":{"subject":"bob"}}]`)

	lines := o.logLines(t)
	calls := 0
	var verifyLine, batchLines []map[string]any
	for _, l := range lines {
		if l["msg"] != "rpc call" {
			continue
		}
		calls++
		if l["level"] != "INFO" {
			t.Errorf("rpc call logged at %v, want INFO: %v", l["level"], l)
		}
		for _, k := range []string{"method", "code", "duration", "request_id", "client"} {
			if _, ok := l[k]; !ok {
				t.Errorf("rpc call line without %s: %v", k, l)
			}
		}
		if l["request_id"] == "trace-42:abc" {
			verifyLine = append(verifyLine, l)
		}
		if l["request_id"] == batchID {
			batchLines = append(batchLines, l)
		}
	}
	if want := 1 + 1 + 4 + 3; calls != want {
		t.Errorf("%d rpc call lines, want %d:\n%s", calls, want, o.logs)
	}
	jti := jtiOf(t, tok)
	if len(verifyLine) != 1 || verifyLine[0]["method"] != "session.verify_session_token" || verifyLine[0]["code"] != "ok" || verifyLine[0]["jti"] != jti {
		t.Errorf("the verify call's lines = %v, want one with method, code ok and jti %s", verifyLine, jti)
	}
	if len(batchLines) != 3 || batchLines[0]["jti"] != jti || batchLines[1]["jti"] != nil ||
		batchLines[2]["jti"] == jti || batchLines[2]["jti"] == nil || batchLines[2]["notification"] != true {
		t.Errorf("the batch's lines = %v, want three with the same request id, each with its own jti (none for bad params)", batchLines)
	}

	// An internal error: the store is gone.
	closeStoreUnder(t, o)
	_, failID := o.rpc(t, `{"jsonrpc":"2.0","method":"session.verify_session_token","params":{"token":"`+tok+`"},"id":1}`)
	found := false
	for _, l := range o.logLines(t) {
		if l["level"] == "ERROR" && l["request_id"] == failID && strings.Contains(fmt.Sprint(l["err"]), "revocation store is closed") {
			found = true
		}
	}
	if !found {
		t.Errorf("no ERROR line with request id %s and the cause:\n%s", failID, o.logs)
	}
	assertNoSecrets(t, o.logs.String(), o.dataDir, tok)
}

// logLines parses the JSON log.
func (o *observed) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(o.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

// assertNoSecrets fails when the log holds a token, a token's signature or
// a private key of the data directory's key file, in any encoding the key
// file uses.
func assertNoSecrets(t *testing.T, log, dataDir string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		if strings.Contains(log, tok) {
			t.Errorf("the log holds a token")
		}
		if sig := tok[strings.LastIndexByte(tok, '.')+1:]; strings.Contains(log, sig) {
			t.Errorf("the log holds a token's signature")
		}
	}
	data, err := os.ReadFile(filepath.Join(dataDir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Keys []struct {
			Private string `json:"private_key_pkcs8"`
		}
	}
	if err := json.Unmarshal(data, &file); err != nil || len(file.Keys) == 0 {
		t.Fatalf("keys.json: %v, %d keys", err, len(file.Keys))
	}
	for _, k := range file.Keys {
		if k.Private == "" || strings.Contains(log, k.Private) || strings.Contains(log, k.Private[len(k.Private)-24:]) {
			t.Errorf("the log holds a private key (or the key file has none)")
		}
	}
}

// closeStoreUnder closes the running server's revocation list.
func closeStoreUnder(t *testing.T, o *observed) {
	t.Helper()
	if err := server.CloseStore(o.srv); err != nil {
		t.Fatalf("close the store: %v", err)
	}
}

// rotateKeyFile adds a new key to the data directory's key file that
// activates after delay, as `sessiond keys rotate` does.
func rotateKeyFile(t *testing.T, dataDir string, delay time.Duration) {
	t.Helper()
	k, err := keys.Generate(keys.EdDSA, 0, time.Now(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Rotate(filepath.Join(dataDir, "keys.json"), k, delay); err != nil {
		t.Fatalf("keys.Rotate() = %v", err)
	}
}

// jtiOf reads a token's "jti" without verifying it.
func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Jti string }
	if err := json.Unmarshal(payload, &c); err != nil || c.Jti == "" {
		t.Fatalf("token payload %s: %v", payload, err)
	}
	return c.Jti
}

// /readyz is 200 "ok" while the store answers and the server is not
// shutting down; 503 with the reason when the store is closed under it,
// and once Close has begun, while requests in progress are still served.
func TestReadyz(t *testing.T) {
	t.Run("store closed", func(t *testing.T) {
		o := openObserved(t)
		if code, body := get(t, o.admin+"readyz"); code != 200 || body != "ok\n" {
			t.Fatalf("GET /readyz = %d %q, want 200 ok", code, body)
		}
		closeStoreUnder(t, o)
		code, body := get(t, o.admin+"readyz")
		if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "store: ") || !strings.Contains(body, "closed") {
			t.Errorf("GET /readyz with the store closed = %d %q, want 503 \"store: … closed\"", code, body)
		}
		if code, _ := get(t, o.admin+"healthz"); code != 200 {
			t.Errorf("GET /healthz with the store closed = %d, want 200: the process is alive", code)
		}
	})
	t.Run("shutting down", func(t *testing.T) {
		o := openObserved(t)
		// A request in progress: its handler is reading the body (the
		// server says 100 Continue then), so Close waits for it with the
		// admin listener still up.
		conn, err := net.Dial("tcp", o.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		const body = `{"jsonrpc":"2.0","method":"x","id":1}`
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
		r := bufio.NewReader(conn)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("after the headers: %q, %v, want 100 Continue", line, err)
		}
		r.ReadString('\n') // the blank line that ends it
		closed := make(chan error, 1)
		go func() { closed <- o.srv.Close() }()
		var code int
		var got string
		waitFor(t, "condition", func() bool {
			code, got = get(t, o.admin+"readyz")
			return code != 200
		})
		if code != http.StatusServiceUnavailable || got != "shutting down\n" {
			t.Errorf("GET /readyz while shutting down = %d %q, want 503 \"shutting down\"", code, got)
		}
		io.WriteString(conn, body)
		reply, err := io.ReadAll(r)
		if !strings.Contains(string(reply), "method not found") {
			t.Errorf("the request in progress got %q, %v, want its answer", reply, err)
		}
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close() = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not return in 30s")
		}
	})
}
