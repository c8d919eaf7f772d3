package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/rpc"
	"github.com/sessiond/sessiond/session"
	"github.com/sessiond/sessiond/token"
)

// faultStore is a revocation store that fails on purpose. It wraps a real
// Badger on disk and fails writes, reads or both while the flags are set;
// the third fault, a store closed underneath, is the real Badger's Close.
type faultStore struct {
	real       *revocation.Badger
	failWrites atomic.Bool
	failReads  atomic.Bool
	// failCutoffs fails Cutoff alone, so that IsRevoked still answers.
	failCutoffs atomic.Bool
	// cutOffDiskFull fails CutOff as a full disk does.
	cutOffDiskFull atomic.Bool
}

var _ revocation.Store = (*faultStore)(nil)

// errFault is the injected failure. Its text must reach the log and never a
// client.
var errFault = errors.New("injected store fault: disk on fire")

func (f *faultStore) Revoke(ctx context.Context, id uuid.UUID, until time.Time) error {
	if f.failWrites.Load() {
		return fmt.Errorf("revoke %s: %w", id, errFault)
	}
	return f.real.Revoke(ctx, id, until)
}

// IsRevoked fails with a boolean that says "not revoked", so that only the
// caller's handling of the error can keep the answer closed.
func (f *faultStore) IsRevoked(ctx context.Context, id uuid.UUID) (bool, error) {
	if f.failReads.Load() {
		return false, fmt.Errorf("is revoked %s: %w", id, errFault)
	}
	return f.real.IsRevoked(ctx, id)
}

func (f *faultStore) CutOff(ctx context.Context, subject string, at, until time.Time) error {
	if f.failWrites.Load() {
		return fmt.Errorf("cut off: %w", errFault)
	}
	if f.cutOffDiskFull.Load() {
		return fmt.Errorf("cut off sessions: %w", revocation.ErrDiskFull)
	}
	return f.real.CutOff(ctx, subject, at, until)
}

// Cutoff fails with "no cutoff", so that only the caller's handling of the
// error can keep the answer closed.
func (f *faultStore) Cutoff(ctx context.Context, subject string) (time.Time, bool, error) {
	if f.failReads.Load() || f.failCutoffs.Load() {
		return time.Time{}, false, fmt.Errorf("cutoff: %w", errFault)
	}
	return f.real.Cutoff(ctx, subject)
}

// faultService is the session API over HTTP with a faultStore as both the
// Revoker and the Verifier's revocation check.
type faultService struct {
	url      string
	dir      string // the Badger directory
	store    *faultStore
	verifier *token.Verifier
	logs     syncBuffer
}

func newFaultService(t *testing.T) *faultService {
	t.Helper()
	dir := t.TempDir()
	s := &faultService{dir: filepath.Join(dir, "revocations")}
	real, err := revocation.OpenBadger(s.dir, revocation.Options{})
	if err != nil {
		t.Fatalf("OpenBadger() error = %v", err)
	}
	t.Cleanup(func() { real.Close() })
	s.store = &faultStore{real: real}
	ring, err := keys.OpenKeyring(filepath.Join(dir, "keys.json"), keys.Policy{MaxTokenLifetime: session.DefaultMaxExpiresIn}, keys.KeyringOptions{})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	s.verifier = token.NewVerifier(ring) // to read the claims of a token, as the server's own verifier does
	log := slog.New(slog.NewTextHandler(&s.logs, nil))
	srv := httptest.NewServer(rpc.NewHandler(session.New(s.store, ring), rpc.HandlerOptions{Logger: log}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// faultReply is one JSON-RPC response.
type faultReply struct {
	Result json.RawMessage `json:"result"`
	Error  *rpc.Error      `json:"error"`
}

// send posts body and returns the JSON-RPC response(s) as raw JSON. It
// reports, rather than fails on, anything but HTTP 200 and a body that
// leaks the injected fault, so that goroutines can use it.
func (s *faultService) send(body string) (json.RawMessage, error) {
	resp, err := http.Post(s.url, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d %s, want 200", resp.StatusCode, data)
	}
	if bytes.Contains(data, []byte("disk on fire")) {
		return nil, fmt.Errorf("reply %s leaks the internal error", data)
	}
	return data, nil
}

// call sends one request and decodes its reply.
func (s *faultService) call(method, tok string) (faultReply, error) {
	params := `{"token":` + jsonQuote(tok) + `}`
	if method == "session.open_session" {
		params = `{"expires_in":3600}`
	}
	data, err := s.send(`{"jsonrpc":"2.0","method":"` + method + `","params":` + params + `,"id":1}`)
	if err != nil {
		return faultReply{}, err
	}
	var r faultReply
	if err := json.Unmarshal(data, &r); err != nil {
		return faultReply{}, fmt.Errorf("reply %s: %v", data, err)
	}
	return r, nil
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// open opens a session and returns its token.
func (s *faultService) open(t *testing.T) string {
	t.Helper()
	r, err := s.call("session.open_session", "")
	if err != nil || r.Error != nil {
		t.Fatalf("open_session = %+v, %v", r, err)
	}
	var res session.OpenResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatalf("open_session result %s: %v", r.Result, err)
	}
	return res.AccessToken
}

// want checks the reply to method(tok): result want, or, for want "",
// exactly the internal error.
func (s *faultService) want(t *testing.T, method, tok, want string) {
	t.Helper()
	r, err := s.call(method, tok)
	switch {
	case err != nil:
		t.Errorf("%s: %v", method, err)
	case want == "" && (r.Error == nil || r.Error.Code != rpc.CodeInternalError || r.Error.Message != "internal error"):
		t.Errorf("%s = %s, error %v, want internal error (-32603)", method, r.Result, r.Error)
	case want != "" && (r.Error != nil || string(r.Result) != want):
		t.Errorf("%s = %s, error %v, want %s", method, r.Result, r.Error, want)
	}
}

// id returns the token's id (jti), read without the store.
func (s *faultService) id(t *testing.T, tok string) uuid.UUID {
	t.Helper()
	c, err := s.verifier.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	return c.ID
}

// stored reports whether the real store holds id, and how many entries it has.
func (s *faultService) stored(t *testing.T, id uuid.UUID) (bool, int) {
	t.Helper()
	ctx := context.Background()
	revoked, err := s.store.real.IsRevoked(ctx, id)
	if err != nil {
		t.Fatalf("real IsRevoked() error = %v", err)
	}
	n, err := s.store.real.Len(ctx)
	if err != nil {
		t.Fatalf("real Len() error = %v", err)
	}
	return revoked, n
}

const (
	faultVerify   = "session.verify_session_token"
	faultClose    = "session.close_session"
	faultActive   = `{"active":true}`
	faultInactive = `{"active":false}`
	faultInternal = "" // for want: the internal error
)

// When the store cannot be read, verify answers -32603 for every authentic
// token, open or closed, also one the verifier has cached, and never
// active: true. Close needs no read, so it still works.
func TestStoreFaultReads(t *testing.T) {
	s := newFaultService(t)
	open, closed := s.open(t), s.open(t)
	s.want(t, faultVerify, open, faultActive) // now in the verifier's cache
	s.want(t, faultClose, closed, "true")

	s.store.failReads.Store(true)
	s.want(t, faultVerify, open, faultInternal)
	s.want(t, faultVerify, closed, faultInternal)
	// Forged and garbage tokens fail before the store is asked.
	s.want(t, faultVerify, open[:len(open)-4]+"AAAA", faultInactive)
	s.want(t, faultVerify, "garbage", faultInactive)
	// A batch: each verify fails on its own, the open still works.
	data, err := s.send(`[{"jsonrpc":"2.0","method":"` + faultVerify + `","params":[` + jsonQuote(open) + `],"id":1},` +
		`{"jsonrpc":"2.0","method":"` + faultVerify + `","params":[` + jsonQuote(closed) + `],"id":2},` +
		`{"jsonrpc":"2.0","method":"session.open_session","id":3}]`)
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	var batch []faultReply
	if err := json.Unmarshal(data, &batch); err != nil || len(batch) != 3 {
		t.Fatalf("batch reply %s: %v, want 3 replies", data, err)
	}
	for i, r := range batch[:2] {
		if r.Error == nil || r.Error.Code != rpc.CodeInternalError || bytes.Contains(r.Result, []byte("true")) {
			t.Errorf("batch reply %d = %s, %v, want internal error", i, r.Result, r.Error)
		}
	}
	if batch[2].Error != nil {
		t.Errorf("batch open_session error = %v, want a session", batch[2].Error)
	}
	// Closing writes, and writes work.
	closedLater := s.open(t)
	s.want(t, faultClose, closedLater, "true")
	if revoked, _ := s.stored(t, s.id(t, closedLater)); !revoked {
		t.Errorf("close answered true while reads failed, but the store does not hold the token")
	}

	s.store.failReads.Store(false)
	s.want(t, faultVerify, open, faultActive)
	s.want(t, faultVerify, closed, faultInactive)
	s.want(t, faultVerify, closedLater, faultInactive)
	if !strings.Contains(s.logs.String(), "disk on fire") {
		t.Errorf("the log does not have the store's error:\n%s", s.logs.String())
	}
}

// When the store cannot be written, close answers -32603, never true, and
// nothing is written; the session stays open, as the client was told, and a
// retry once the store works closes it.
func TestStoreFaultWrites(t *testing.T) {
	s := newFaultService(t)
	tok, other := s.open(t), s.open(t)
	id := s.id(t, tok)

	s.store.failWrites.Store(true)
	s.want(t, faultClose, tok, faultInternal)
	data, err := s.send(`[{"jsonrpc":"2.0","method":"` + faultClose + `","params":[` + jsonQuote(tok) + `],"id":1},` +
		`{"jsonrpc":"2.0","method":"` + faultClose + `","params":[` + jsonQuote(other) + `],"id":2}]`)
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	var batch []faultReply
	if err := json.Unmarshal(data, &batch); err != nil || len(batch) != 2 {
		t.Fatalf("batch reply %s: %v, want 2 replies", data, err)
	}
	for i, r := range batch {
		if r.Error == nil || r.Error.Code != rpc.CodeInternalError || r.Result != nil {
			t.Errorf("batch reply %d = %s, %v, want internal error", i, r.Result, r.Error)
		}
	}
	// A forged token is closed already: true, with or without a store.
	s.want(t, faultClose, tok[:len(tok)-4]+"AAAA", "true")
	if revoked, n := s.stored(t, id); revoked || n != 0 {
		t.Errorf("after failed closes the store holds the token: %v, Len() = %d, want nothing written", revoked, n)
	}
	s.want(t, faultVerify, tok, faultActive)

	s.store.failWrites.Store(false)
	s.want(t, faultClose, tok, "true")
	s.want(t, faultVerify, tok, faultInactive)
	s.want(t, faultVerify, other, faultActive)
	if revoked, n := s.stored(t, id); !revoked || n != 1 {
		t.Errorf("after the retry: stored %v, Len() = %d, want the token and nothing else", revoked, n)
	}
}

// The Badger closed underneath a serving handler, while clients open, close
// and verify: every reply is a result or -32603 (HTTP 200 always), a close
// answered true is on disk when the directory is opened again, and a token
// whose close was answered true never verifies as active. Once the store is
// closed, verify and close answer -32603 and open still works.
func TestStoreFaultClosedUnderneath(t *testing.T) {
	s := newFaultService(t)
	before := s.open(t)
	closedBefore := s.open(t)
	s.want(t, faultClose, closedBefore, "true")

	var (
		mu        sync.Mutex
		confirmed []string // closes answered true
		failed    atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	check := func(method string, r faultReply, err error) bool {
		switch {
		case err != nil:
			t.Errorf("%s: %v", method, err)
		case r.Error != nil && r.Error.Code != rpc.CodeInternalError:
			t.Errorf("%s error = %v, want a result or internal error", method, r.Error)
		case r.Error != nil:
			failed.Add(1)
		default:
			return true
		}
		return false
	}
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.call("session.open_session", "")
				if !check("open_session", r, err) {
					return
				}
				var res session.OpenResult
				if err := json.Unmarshal(r.Result, &res); err != nil {
					t.Errorf("open_session result %s: %v", r.Result, err)
					return
				}
				r, err = s.call(faultClose, res.AccessToken)
				if !check(faultClose, r, err) {
					continue
				}
				if string(r.Result) != "true" {
					t.Errorf("close_session = %s, want true or internal error", r.Result)
					return
				}
				mu.Lock()
				confirmed = append(confirmed, res.AccessToken)
				mu.Unlock()
				r, err = s.call(faultVerify, res.AccessToken)
				if check(faultVerify, r, err) && string(r.Result) != faultInactive {
					t.Errorf("verify after a close answered true = %s, want inactive or internal error", r.Result)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	if err := s.store.real.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d closes answered true, %d calls answered internal error", len(confirmed), failed.Load())
	if len(confirmed) == 0 {
		t.Fatal("no close succeeded before the store closed: the test exercised nothing")
	}

	s.want(t, faultVerify, before, faultInternal)
	s.want(t, faultVerify, closedBefore, faultInternal)
	s.want(t, faultClose, before, faultInternal)
	s.open(t) // issuing needs no store

	// Every close answered true is on disk; the failed close of before is not.
	reopened, err := revocation.OpenBadger(s.dir, revocation.Options{})
	if err != nil {
		t.Fatalf("reopen: OpenBadger() error = %v", err)
	}
	defer reopened.Close()
	ctx := context.Background()
	for _, tok := range append(confirmed, closedBefore) {
		if revoked, err := reopened.IsRevoked(ctx, s.id(t, tok)); !revoked || err != nil {
			t.Errorf("a close answered true is not on disk: IsRevoked() = %v, %v", revoked, err)
		}
	}
	if revoked, err := reopened.IsRevoked(ctx, s.id(t, before)); revoked || err != nil {
		t.Errorf("a close answered -32603 was written: IsRevoked() = %v, %v", revoked, err)
	}
}
