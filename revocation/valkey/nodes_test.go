package valkey_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/revocation/valkey"
)

// waitSeen polls (every 10 ms) until check reports true, failing the test
// if that takes longer than within; then it checks that it stays true.
func waitSeen(t *testing.T, within time.Duration, what string, check func() (bool, error)) {
	t.Helper()
	start := time.Now()
	for {
		ok, err := check()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			break
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not seen within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 20 {
		ok, err := check()
		if err != nil || !ok {
			t.Fatalf("%s: seen, then unseen (%v, %v)", what, ok, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTwoNodes: two Stores on one server are two sessiond nodes. A close
// on one is seen by the other's cached reads within 100 ms, and stays
// seen.
func TestTwoNodes(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		ctx := context.Background()
		a := open(t, srv.URL(), valkey.Options{})
		b := open(t, srv.URL(), valkey.Options{})
		for range 5 {
			id := uuid.New()
			wantRevoked(t, b, id, false) // cached in b as absent
			wantRevoked(t, b, id, false) // from the cache
			revoke(t, a, id, time.Now().Add(time.Hour))
			waitSeen(t, 100*time.Millisecond, "b sees a's revoke", func() (bool, error) { return b.IsRevoked(ctx, id) })
			wantRevoked(t, a, id, true)
		}
		subject := "alice@example.com"
		if _, ok, err := b.Cutoff(ctx, subject); err != nil || ok {
			t.Fatalf("Cutoff before = %v, %v", ok, err)
		}
		at := time.Now()
		if err := a.CutOff(ctx, subject, at, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		waitSeen(t, 100*time.Millisecond, "b sees a's cutoff", func() (bool, error) {
			got, ok, err := b.Cutoff(ctx, subject)
			return ok && got.Unix() == at.Unix(), err
		})
	})
}

// TestKillFailsClosedAndRecovers: SIGKILL the server. Reads of ids cached
// before (revoked or not) become errors within a bounded time, never a
// stale (false, nil); writes fail. Once the server restarts from its AOF
// the store recovers by itself, and every id revoked before the kill is
// still revoked.
func TestKillFailsClosedAndRecovers(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		ctx := context.Background()
		s := open(t, srv.URL(), valkey.Options{WriteTimeout: time.Second})
		revoked := make([]uuid.UUID, 50)
		for i := range revoked {
			revoked[i] = uuid.New()
			revoke(t, s, revoked[i], time.Now().Add(time.Hour))
		}
		if err := s.CutOff(ctx, "alice", time.Now(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		open := uuid.New()
		wantRevoked(t, s, open, false) // cached
		wantRevoked(t, s, revoked[0], true)

		srv.Kill()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, err := s.IsRevoked(ctx, open)
			if err != nil {
				if !got {
					t.Fatalf("IsRevoked error %v with false, want true (fail closed)", err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("IsRevoked of a cached id = %v, nil for 5 s after SIGKILL, want an error", got)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Down: every read errs, never "not revoked" from the cache.
		for range 10 {
			if got, err := s.IsRevoked(ctx, open); err == nil || !got {
				t.Fatalf("IsRevoked while down = %v, %v, want true and an error", got, err)
			}
			if _, ok, err := s.Cutoff(ctx, "alice"); err == nil || !ok {
				t.Fatalf("Cutoff while down = %v, %v, want true and an error", ok, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := s.Revoke(ctx, uuid.New(), time.Now().Add(time.Hour)); err == nil {
			t.Fatal("Revoke while down = nil, want an error")
		}
		if _, err := s.Changes(ctx, 0); err == nil {
			t.Fatal("Changes while down = nil error, want an error")
		}

		srv.Restart()
		deadline = time.Now().Add(15 * time.Second)
		for {
			got, err := s.IsRevoked(ctx, open)
			if err == nil {
				if got {
					t.Fatalf("IsRevoked(never revoked) after restart = true")
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not recovered 15 s after the restart: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, id := range revoked {
			wantRevoked(t, s, id, true)
		}
		if _, ok, err := s.Cutoff(ctx, "alice"); err != nil || !ok {
			t.Fatalf("Cutoff after restart = %v, %v, want the cutoff", ok, err)
		}
		ch, err := s.Changes(ctx, 0)
		if err != nil || len(ch.Entries) != len(revoked) {
			t.Fatalf("Changes after restart: %d entries, %v, want %d", len(ch.Entries), err, len(revoked))
		}
		revoke(t, s, uuid.New(), time.Now().Add(time.Hour))
	})
}

// TestNotDurable: with Options.Replicas 1, a write is acknowledged only
// once a replica has it (WAITAOF on Valkey, WAIT on Redis 7.0); with the
// replica gone it is an error, not a close, and so is an Open.
func TestNotDurable(t *testing.T) {
	for _, bin := range binaries {
		t.Run(bin, func(t *testing.T) {
			testNotDurable(t, bin)
		})
	}
}

func testNotDurable(t *testing.T, bin string) {
	ctx := context.Background()
	srv := valkeytest.Start(t, valkeytest.Options{Binary: bin, Config: []string{"repl-diskless-sync-delay 0"}})
	replica := valkeytest.Start(t, valkeytest.Options{Binary: bin, Config: []string{"replicaof 127.0.0.1 " + strconv.Itoa(srv.Port())}})
	// WAITAOF counts the replica once it has synced and rewritten its AOF
	// after the sync (until then it answers 0 replicas: ErrNotDurable).
	deadline := time.Now().Add(15 * time.Second)
	for {
		repl := replica.MustDo("INFO", "replication")
		pers := replica.MustDo("INFO", "persistence")
		if strings.Contains(repl, "master_link_status:up") && strings.Contains(pers, "aof_rewrite_in_progress:0") &&
			(bin != "valkey-server" || strings.Contains(pers, "aof_rewrites:1")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not sync within 15 s:\n%s\n%s", repl, pers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var s *valkey.Store
	for {
		var err error
		s, err = valkey.Open(ctx, srv.URL(), valkey.Options{Replicas: 1, WriteTimeout: 3 * time.Second})
		if err == nil {
			break
		}
		if !errors.Is(err, valkey.ErrNotDurable) || time.Now().After(deadline) {
			t.Fatalf("Open with a replica: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() { s.Close() })
	id := uuid.New()
	revoke(t, s, id, time.Now().Add(time.Hour))
	replica.Kill()
	start := time.Now()
	err := s.Revoke(ctx, uuid.New(), time.Now().Add(time.Hour))
	if !errors.Is(err, valkey.ErrNotDurable) {
		t.Fatalf("Revoke with Replicas 1 and the replica gone = %v, want ErrNotDurable", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Revoke took %s, want about the write timeout", took)
	}
	if err := s.CutOff(ctx, "a", time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, valkey.ErrNotDurable) {
		t.Fatalf("CutOff with the replica gone = %v, want ErrNotDurable", err)
	}
	if _, err := valkey.Open(ctx, srv.URL(), valkey.Options{Replicas: 1, WriteTimeout: 200 * time.Millisecond}); !errors.Is(err, valkey.ErrNotDurable) {
		t.Fatalf("Open with Replicas 1 and none = %v, want ErrNotDurable", err)
	}
	wantRevoked(t, s, id, true)
}

// TestRetention: a node opened with a larger retention extends every
// record; one with a smaller keeps the stored one; a node still running
// with the smaller one writes with the larger.
func TestRetention(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		ctx := context.Background()
		a := open(t, srv.URL(), valkey.Options{})
		exp := time.Unix(time.Now().Unix()+600, 0)
		id := uuid.New()
		revoke(t, a, id, exp)
		at := time.Now()
		until := time.Unix(at.Unix()+600, 0)
		if err := a.CutOff(ctx, "alice", at, until); err != nil {
			t.Fatal(err)
		}
		if got, want := pexpiretime(t, srv, recordKey(id)), (exp.Unix()+1)*1000; got != want {
			t.Fatalf("PEXPIRETIME = %d, want %d", got, want)
		}

		b := open(t, srv.URL(), valkey.Options{Retention: time.Hour + 500*time.Millisecond})
		if got := b.Retention(); got != time.Hour+500*time.Millisecond {
			t.Fatalf("Retention() = %s, want 1h0m0.5s", got)
		}
		// Extended by the difference rounded up: 3601 s.
		if got, want := pexpiretime(t, srv, recordKey(id)), (exp.Unix()+1+3601)*1000; got != want {
			t.Fatalf("PEXPIRETIME after a larger retention = %d, want %d", got, want)
		}
		if got, want := pexpiretime(t, srv, cutKey("alice")), (until.Unix()+1+3601)*1000; got != want {
			t.Fatalf("cutoff PEXPIRETIME after a larger retention = %d, want %d", got, want)
		}
		ch, err := b.Changes(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Entries) != 1 || ch.Entries[0].ID != id || len(ch.Cutoffs) != 1 || ch.Seq != 4 {
			t.Fatalf("Changes(2) = %+v, want the two extended records (seq 3, 4)", ch)
		}
		if srv.MustDo("EXISTS", "{sessiond}:extend") != "0" {
			t.Fatal("the extension is still pending")
		}

		// a still thinks the retention is 0: its next write learns.
		id2 := uuid.New()
		exp2 := time.Unix(time.Now().Unix()+600, 0)
		revoke(t, a, id2, exp2)
		if got, want := pexpiretime(t, srv, recordKey(id2)), (exp2.Unix()+1+3601)*1000; got != want {
			t.Fatalf("PEXPIRETIME of a write by a node with the old retention = %d, want %d", got, want)
		}
		if got := a.Retention(); got != time.Hour+500*time.Millisecond {
			t.Fatalf("a.Retention() after its write = %s, want 1h0m0.5s", got)
		}

		c := open(t, srv.URL(), valkey.Options{Retention: time.Minute})
		if got := c.Retention(); got != time.Hour+500*time.Millisecond {
			t.Fatalf("Retention() opened with less = %s, want the stored 1h0m0.5s", got)
		}
		if got, want := pexpiretime(t, srv, recordKey(id)), (exp.Unix()+1+3601)*1000; got != want {
			t.Fatalf("PEXPIRETIME after a smaller retention = %d, want %d (never shortened)", got, want)
		}
	})
}

// TestRetentionResumesExtension: an open that raised the retention but
// died before extending every record leaves the extension pending; the
// next open finishes it.
func TestRetentionResumesExtension(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	a := open(t, srv.URL(), valkey.Options{})
	exp := time.Unix(time.Now().Unix()+600, 0)
	id := uuid.New()
	revoke(t, a, id, exp)
	// What retainScript does before the records are extended.
	srv.MustDo("SET", "{sessiond}:retain", "60000000000")
	srv.MustDo("SET", "{sessiond}:extend", "1 60")
	b := open(t, srv.URL(), valkey.Options{})
	if got, want := pexpiretime(t, srv, recordKey(id)), (exp.Unix()+1+60)*1000; got != want {
		t.Fatalf("PEXPIRETIME after resuming = %d, want %d", got, want)
	}
	if got := b.Retention(); got != time.Minute {
		t.Fatalf("Retention() = %s, want 1m", got)
	}
}

func TestOpenRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("unreachable", func(t *testing.T) {
		start := time.Now()
		_, err := valkey.Open(ctx, "redis://127.0.0.1:1", valkey.Options{DialTimeout: time.Second})
		if err == nil {
			t.Fatal("Open of an unreachable store = nil error")
		}
		if want := "could not reach the revocation store at redis://127.0.0.1:1 within 1s"; !strings.Contains(err.Error(), want) {
			t.Errorf("error = %q, want it to contain %q", err, want)
		}
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("Open took %s, want about the 1 s bound", took)
		}
	})
	t.Run("hung server", func(t *testing.T) {
		// Accepts connections (the kernel does) but never answers.
		srv := valkeytest.Start(t, valkeytest.Options{})
		srv.Pause()
		defer srv.Resume()
		start := time.Now()
		_, err := valkey.Open(ctx, srv.URL(), valkey.Options{DialTimeout: 2 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "within 2s") {
			t.Fatalf("Open of a hung server = %v, want a refusal naming the 2 s bound", err)
		}
		if took := time.Since(start); took > 8*time.Second {
			t.Errorf("Open took %s, want the 2 s bound plus at most one 3 s set-up", took)
		}
	})
	t.Run("cluster URL for one server", func(t *testing.T) {
		srv := valkeytest.Start(t, valkeytest.Options{})
		start := time.Now()
		_, err := valkey.Open(ctx, srv.URL()+"?addr="+srv.Addr(), valkey.Options{})
		if err == nil || !strings.Contains(err.Error(), "drop the addr=") {
			t.Fatalf("Open with addr= of a server without cluster = %v, want a refusal naming the fix", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Open took %s, want a refusal at once", took)
		}
	})
	t.Run("no AOF", func(t *testing.T) {
		srv := valkeytest.Start(t, valkeytest.Options{NoAppendOnly: true})
		_, err := valkey.Open(ctx, srv.URL(), valkey.Options{})
		if err == nil || !strings.Contains(err.Error(), "appendonly yes") {
			t.Fatalf("Open without AOF = %v, want a refusal naming appendonly yes", err)
		}
	})
	t.Run("appendfsync no", func(t *testing.T) {
		// WAITAOF never sees an fsync: every write would fail, so Open does.
		srv := valkeytest.Start(t, valkeytest.Options{AppendFsync: "no"})
		_, err := valkey.Open(ctx, srv.URL(), valkey.Options{WriteTimeout: 200 * time.Millisecond})
		if !errors.Is(err, valkey.ErrNotDurable) || !strings.Contains(err.Error(), "appendfsync always") {
			t.Fatalf("Open with appendfsync no = %v, want ErrNotDurable naming appendfsync always", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		srv := valkeytest.Start(t, valkeytest.Options{Password: "right-one"})
		start := time.Now()
		_, err := valkey.Open(ctx, "redis://default:wrong-one@"+srv.Addr(), valkey.Options{DialTimeout: 2 * time.Second})
		if err == nil {
			t.Fatal("Open with a wrong password = nil error")
		}
		if strings.Contains(err.Error(), "wrong-one") || strings.Contains(err.Error(), "right-one") {
			t.Fatalf("error %q prints a password", err)
		}
		if !strings.Contains(err.Error(), "credentials") {
			t.Errorf("error = %q, want it to say the credentials were refused", err)
		}
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("Open took %s", took)
		}
		s := open(t, "redis://default:right-one@"+srv.Addr(), valkey.Options{})
		revoke(t, s, uuid.New(), time.Now().Add(time.Hour))
	})
	t.Run("bad prefix", func(t *testing.T) {
		_, err := valkey.Open(ctx, "redis://127.0.0.1:1", valkey.Options{Prefix: "a{b}"})
		if err == nil || !strings.Contains(err.Error(), "prefix") {
			t.Fatalf("Open with prefix a{b} = %v, want a refusal", err)
		}
	})
	t.Run("negative", func(t *testing.T) {
		if _, err := valkey.Open(ctx, "redis://127.0.0.1:1", valkey.Options{Retention: -1}); err == nil {
			t.Fatal("negative retention accepted")
		}
		if _, err := valkey.Open(ctx, "redis://127.0.0.1:1", valkey.Options{Replicas: -1}); err == nil {
			t.Fatal("negative replicas accepted")
		}
	})
}

func TestBadURLs(t *testing.T) {
	for _, tt := range []struct {
		url, why string
	}{
		{"", "no scheme"},
		{"localhost:6379", "scheme"},
		{"http://127.0.0.1:6379", `unknown scheme "http"`},
		{"redis://", "no host"},
		{"redis:127.0.0.1:6379", "no host"},
		{"redis://127.0.0.1", "not host:port"},
		{"redis://127.0.0.1:0", "port"},
		{"redis://127.0.0.1:99999", "port"},
		{"redis://127.0.0.1:abc", "port"},
		{"redis://:6379", "no host"},
		{"redis://127.0.0.1:6379/x", `database "x" is not a number`},
		{"redis://127.0.0.1:6379/-1", "not a number"},
		{"redis://127.0.0.1:6379/1/2", "not a database number"},
		{"redis://127.0.0.1:6379?db=1", `unknown query parameter "db"`},
		{"redis://127.0.0.1:6379?addr=h2", "not host:port"},
		{"redis://127.0.0.1:6379/2?addr=h2:1", "database 2 with a cluster"},
		{"redis://127.0.0.1:6379#x", "fragment"},
		{"redis://user:s3cret-pw@127.0.0.1:6379?x=1", "unknown query parameter"},
		{"redis://user:s3cret-pw@127.0.0.1:bad", "port"},
		{"redis://user:s3cret pw@127.0.0.1:6379", "not a URL"},
		{"redis://user:s3cret%zz@127.0.0.1:6379", "not a URL"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			_, err := valkey.Open(context.Background(), tt.url, valkey.Options{DialTimeout: time.Second})
			if err == nil {
				t.Fatalf("Open(%q) = nil error, want a refusal", tt.url)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.why) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.why)
			}
			if !strings.Contains(msg, "redis://[user:password@]host:port[/db]") {
				t.Errorf("error = %q, want it to name the expected form", msg)
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error = %q prints the password", msg)
			}
		})
	}
}

// TestHungServerFailsClosed: a server that stops answering without
// closing its connections (SIGSTOP) is given up after the background
// PING goes unanswered; reads of cached ids then fail instead of
// answering from a cache no invalidation can reach. Once it answers again
// the store recovers by itself.
func TestHungServerFailsClosed(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	s := open(t, srv.URL(), valkey.Options{})
	id, never := uuid.New(), uuid.New()
	revoke(t, s, id, time.Now().Add(time.Hour))
	wantRevoked(t, s, never, false) // cached
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := s.IsRevoked(ctx, never)
		cancel()
		if err != nil {
			if !got {
				t.Fatalf("IsRevoked error %v with false, want true", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("IsRevoked of a cached id answered from the cache 15 s into a hung server, want an error")
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Resume()
	resumed = true
	deadline = time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		got, err := s.IsRevoked(ctx, id)
		cancel()
		if err == nil {
			if !got {
				t.Fatal("IsRevoked(revoked) after resume = false")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 20 s after resume: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantRevoked(t, s, never, false)
}

// TestTLS: rediss:// with the server's CA works; with the system roots
// (which do not hold the test's CA) Open refuses within its bound; a TLS
// configuration for a redis:// URL is refused rather than ignored.
func TestTLS(t *testing.T) {
	for _, bin := range binaries {
		t.Run(bin, func(t *testing.T) {
			ctx := context.Background()
			srv := valkeytest.Start(t, valkeytest.Options{Binary: bin, TLS: true})
			s := open(t, srv.URL(), valkey.Options{TLSConfig: &tls.Config{RootCAs: srv.CAs()}})
			id := uuid.New()
			wantRevoked(t, s, id, false)
			revoke(t, s, id, time.Now().Add(time.Hour))
			wantRevoked(t, s, id, true)

			_, err := valkey.Open(ctx, srv.URL(), valkey.Options{DialTimeout: time.Second})
			if err == nil || !strings.Contains(err.Error(), "certificate is not trusted") {
				t.Fatalf("Open over TLS with the system roots = %v, want a certificate error", err)
			}
			plain := "redis://" + strings.TrimPrefix(srv.URL(), "rediss://")
			if _, err := valkey.Open(ctx, plain, valkey.Options{TLSConfig: &tls.Config{RootCAs: srv.CAs()}}); err == nil || !strings.Contains(err.Error(), "rediss://") {
				t.Fatalf("Open(redis://, TLSConfig) = %v, want a refusal naming rediss://", err)
			}
		})
	}
}
