package keys_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/keys"
)

// lockedBuffer is a log destination safe for Run's goroutine and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type reloadSignal struct{}

func (reloadSignal) String() string { return "reload" }
func (reloadSignal) Signal()        {}

// A running keyring logs at Info each key whose state changes: added,
// activated, retired, and removed once pruned; never a private key.
func TestKeyringLogsStateChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	var now atomic.Int64
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	logs := new(lockedBuffer)
	ring, err := keys.OpenKeyring(path, policy, keys.KeyringOptions{Now: clock,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatalf("OpenKeyring() error = %v", err)
	}
	first, _, _, _ := ring.SigningKey()
	reload := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ring.Run(ctx, time.Hour, reload); close(done) }()
	defer func() { cancel(); <-done }()

	// step moves the clock, has Run look, and waits for the lines.
	step := func(to time.Time, want ...string) {
		t.Helper()
		now.Store(to.UnixNano())
		reload <- reloadSignal{}
		deadline := time.Now().Add(20 * time.Second)
		for {
			missing := ""
			for _, w := range want {
				if !strings.Contains(logs.String(), w) {
					missing = w
				}
			}
			if missing == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no log line with %s after 20s:\n%s", missing, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	next := generate(t, keys.EdDSA, t0.Add(time.Hour))
	if _, err := keys.Update(path, func(s *keys.Set) error { s.Add(next); return nil }); err != nil {
		t.Fatal(err)
	}
	step(t0, `"msg":"signing key added","key":{"kid":"`+next.ID+`","alg":"EdDSA"},"state":"next"`)
	step(t0.Add(time.Hour),
		`"msg":"signing key activated","key":{"kid":"`+next.ID+`"`,
		`"msg":"signing key retired","key":{"kid":"`+first+`"`)
	step(t0.Add(time.Hour+policy.MaxTokenLifetime+policy.Leeway),
		`"msg":"pruned expired signing keys"`,
		`"msg":"signing key removed","kid":"`+first+`"`)

	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l["level"] != "INFO" {
			t.Errorf("logged at %v, want INFO: %s", l["level"], line)
		}
	}
	if n := strings.Count(logs.String(), "signing key activated"); n != 1 {
		t.Errorf("%d activation lines, want 1 (a state is logged once, when it changes)", n)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Keys []struct {
			Private string `json:"private_key_pkcs8"`
		}
	}
	json.Unmarshal(data, &file)
	for _, k := range file.Keys {
		if k.Private == "" || strings.Contains(logs.String(), k.Private[len(k.Private)-24:]) {
			t.Errorf("the log holds a private key (or the key file has none)")
		}
	}
}
