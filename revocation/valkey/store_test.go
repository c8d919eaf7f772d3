package valkey_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/revocation/valkey"
	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/session"
)

var (
	_ server.Store       = (*valkey.Store)(nil)
	_ session.Store      = (*valkey.Store)(nil)
	_ revocation.Store   = (*valkey.Store)(nil)
	_ revocation.Cutoffs = (*valkey.Store)(nil)
	_ revocation.Feed    = (*valkey.Store)(nil)
)

// binaries are the servers the single-server tests run against.
var binaries = []string{"valkey-server", "redis-server"}

// eachServer runs f as a subtest against a fresh server of each binary.
func eachServer(t *testing.T, f func(t *testing.T, srv *valkeytest.Server)) {
	t.Helper()
	for _, bin := range binaries {
		t.Run(bin, func(t *testing.T) {
			f(t, valkeytest.Start(t, valkeytest.Options{Binary: bin}))
		})
	}
}

// open opens a store at url and closes it when the test ends.
func open(tb testing.TB, url string, opts valkey.Options) *valkey.Store {
	tb.Helper()
	s, err := valkey.Open(context.Background(), url, opts)
	if err != nil {
		tb.Fatalf("Open(%s) error = %v", url, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close() = %v", err)
		}
	})
	return s
}

func revoke(tb testing.TB, s *valkey.Store, id uuid.UUID, exp time.Time) {
	tb.Helper()
	if err := s.Revoke(context.Background(), id, exp); err != nil {
		tb.Fatalf("Revoke(%s) = %v", id, err)
	}
}

func wantRevoked(tb testing.TB, s *valkey.Store, id uuid.UUID, want bool) {
	tb.Helper()
	got, err := s.IsRevoked(context.Background(), id)
	if err != nil {
		tb.Fatalf("IsRevoked(%s) error = %v", id, err)
	}
	if got != want {
		tb.Fatalf("IsRevoked(%s) = %v, want %v", id, got, want)
	}
}

// pexpiretime is the record's expiry in Unix ms, as the server keeps it.
func pexpiretime(tb testing.TB, srv *valkeytest.Server, key string) int64 {
	tb.Helper()
	v := srv.MustDo("PEXPIRETIME", key)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		tb.Fatalf("PEXPIRETIME %s = %q", key, v)
	}
	return n
}

func recordKey(id uuid.UUID) string { return "{sessiond}:r:" + id.String() }

func cutKey(subject string) string {
	h := sha256.Sum256([]byte(subject))
	return "{sessiond}:c:" + hex.EncodeToString(h[:])
}

func TestRevoke(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		s := open(t, srv.URL(), valkey.Options{})
		id, other := uuid.New(), uuid.New()
		wantRevoked(t, s, id, false) // cached as absent first
		revoke(t, s, id, time.Now().Add(time.Hour))
		wantRevoked(t, s, id, true)
		wantRevoked(t, s, other, false)
		revoke(t, s, id, time.Now().Add(time.Hour)) // again: harmless
		wantRevoked(t, s, id, true)
	})
}

// TestTTLInstant: the record expires at the instant Badger's TTL would
// use: exp + retention + 1 s, rounded up to the second.
func TestTTLInstant(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		s := open(t, srv.URL(), valkey.Options{Retention: 90 * time.Second})
		exp := time.Unix(time.Now().Unix()+3600, 300_000_000) // .3 s
		id := uuid.New()
		revoke(t, s, id, exp)
		want := (exp.Unix() + 90 + 1 + 1) * 1000 // .3 rounds up
		if got := pexpiretime(t, srv, recordKey(id)); got != want {
			t.Errorf("PEXPIRETIME = %d, want %d (exp + retention + 1 s, rounded up)", got, want)
		}
		whole := time.Unix(time.Now().Unix()+3600, 0)
		id2 := uuid.New()
		revoke(t, s, id2, whole)
		if got, want := pexpiretime(t, srv, recordKey(id2)), (whole.Unix()+91)*1000; got != want {
			t.Errorf("PEXPIRETIME of a whole second = %d, want %d", got, want)
		}
	})
}

func TestLaterExpiryExtendsEarlierNeverShortens(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		s := open(t, srv.URL(), valkey.Options{})
		id := uuid.New()
		exp := time.Unix(time.Now().Unix()+3600, 0)
		revoke(t, s, id, exp)
		first := pexpiretime(t, srv, recordKey(id))
		revoke(t, s, id, exp.Add(time.Hour))
		if got, want := pexpiretime(t, srv, recordKey(id)), first+3600_000; got != want {
			t.Fatalf("after a later expiry PEXPIRETIME = %d, want %d", got, want)
		}
		revoke(t, s, id, exp.Add(-30*time.Minute))
		if got, want := pexpiretime(t, srv, recordKey(id)), first+3600_000; got != want {
			t.Fatalf("after an earlier expiry PEXPIRETIME = %d, want %d (never shortened)", got, want)
		}
		ch, err := s.Changes(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Entries) != 1 || ch.Entries[0].ID != id || ch.Entries[0].Until.Unix() != first/1000+3600 || ch.Entries[0].Seq != 2 {
			t.Fatalf("Changes(0).Entries = %+v, want one entry of %s until %d, seq 2", ch.Entries, id, first/1000+3600)
		}
	})
}

func TestRevokePastWritesNothing(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		now := time.Now()
		s := open(t, srv.URL(), valkey.Options{Retention: time.Minute, Now: func() time.Time { return now }})
		id := uuid.New()
		revoke(t, s, id, now.Add(-time.Minute)) // until = now: past
		wantRevoked(t, s, id, false)
		if got := srv.MustDo("EXISTS", recordKey(id)); got != "0" {
			t.Fatalf("EXISTS = %s, want 0", got)
		}
		if got := srv.MustDo("GET", "{sessiond}:seq"); got != "" {
			t.Fatalf("seq = %q, want none", got)
		}
		revoke(t, s, id, time.Unix(-5, 0)) // before 1970
		wantRevoked(t, s, id, false)
	})
}

func TestCutOff(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		ctx := context.Background()
		s := open(t, srv.URL(), valkey.Options{})
		at := time.Now()
		until := at.Add(time.Hour)
		wantCutoff := func(subject string, want time.Time) {
			t.Helper()
			got, ok, err := s.Cutoff(ctx, subject)
			if err != nil {
				t.Fatalf("Cutoff(%q) error = %v", subject, err)
			}
			if ok != !want.IsZero() || (ok && got.Unix() != want.Unix()) || got.Nanosecond() != 0 {
				t.Fatalf("Cutoff(%q) = %s, %v, want %s", subject, got, ok, want)
			}
		}
		wantCutoff("alice", time.Time{})
		if err := s.CutOff(ctx, "alice", at, until); err != nil {
			t.Fatal(err)
		}
		wantCutoff("alice", at)
		wantCutoff("bob", time.Time{})
		// Forward only; the expiry never shortens.
		if err := s.CutOff(ctx, "alice", at.Add(-time.Hour), until.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		wantCutoff("alice", at)
		if got, want := pexpiretime(t, srv, cutKey("alice")), (expSec(until.Add(time.Hour).Add(time.Second)))*1000; got != want {
			t.Fatalf("PEXPIRETIME = %d, want %d (the later until + 1 s, rounded up)", got, want)
		}
		if err := s.CutOff(ctx, "alice", at.Add(10*time.Second), until); err != nil {
			t.Fatal(err)
		}
		wantCutoff("alice", at.Add(10*time.Second))
		if got, want := pexpiretime(t, srv, cutKey("alice")), (expSec(until.Add(time.Hour).Add(time.Second)))*1000; got != want {
			t.Fatalf("PEXPIRETIME after an earlier until = %d, want %d (never shortened)", got, want)
		}
		if err := s.CutOff(ctx, "", at, until); err == nil {
			t.Fatal("CutOff of an empty subject = nil, want an error")
		}
		if err := s.CutOff(ctx, "carol", time.Unix(-1, 0), until); err == nil {
			t.Fatal("CutOff before 1970 = nil, want an error")
		}
		// Past: nothing written.
		if err := s.CutOff(ctx, "dave", at, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		wantCutoff("dave", time.Time{})
		// A record is none from its expiry on by Options.Now.
		later := open(t, srv.URL(), valkey.Options{Now: func() time.Time { return until.Add(2 * time.Hour).Add(2 * time.Second) }})
		if _, ok, err := later.Cutoff(ctx, "alice"); err != nil || ok {
			t.Fatalf("Cutoff after its expiry = %v, %v, want none", ok, err)
		}
		ch, err := s.Changes(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Cutoffs) != 1 || ch.Cutoffs[0].Subject != sha256.Sum256([]byte("alice")) || ch.Cutoffs[0].At.Unix() != at.Unix()+10 {
			t.Fatalf("Changes(0).Cutoffs = %+v, want alice's only", ch.Cutoffs)
		}
	})
}

func expSec(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

func TestChangesAndHead(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		ctx := context.Background()
		a := open(t, srv.URL(), valkey.Options{})
		b := open(t, srv.URL(), valkey.Options{}) // another node
		if a.Epoch() == "" || a.Epoch() != b.Epoch() {
			t.Fatalf("epochs %q and %q, want one non-empty epoch", a.Epoch(), b.Epoch())
		}
		empty, err := a.Changes(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !empty.Snapshot || empty.Seq != 0 || len(empty.Entries) != 0 || empty.Epoch != a.Epoch() {
			t.Fatalf("Changes(0) of an empty store = %+v", empty)
		}
		ids := make([]uuid.UUID, 10)
		exp := time.Now().Add(time.Hour)
		for i := range ids {
			ids[i] = uuid.New()
			node := a
			if i%2 == 1 {
				node = b
			}
			revoke(t, node, ids[i], exp)
		}
		for _, node := range []*valkey.Store{a, b} {
			full, err := node.Changes(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !full.Snapshot || full.Seq != 10 || len(full.Entries) != 10 {
				t.Fatalf("Changes(0) = seq %d, snapshot %v, %d entries, want 10, true, 10", full.Seq, full.Snapshot, len(full.Entries))
			}
			for i, e := range full.Entries {
				if e.ID != ids[i] || e.Seq != uint64(i+1) {
					t.Fatalf("entry %d = %+v, want %s seq %d", i, e, ids[i], i+1)
				}
			}
			delta, err := node.Changes(ctx, 7)
			if err != nil {
				t.Fatal(err)
			}
			if delta.Snapshot || delta.Seq != 10 || len(delta.Entries) != 3 || delta.Entries[0].ID != ids[7] {
				t.Fatalf("Changes(7) = %+v, want a delta of ids 8..10", delta)
			}
			h, err := node.Head(ctx, 7)
			if err != nil {
				t.Fatal(err)
			}
			if want := (revocation.Head{Epoch: a.Epoch(), Seq: 10, Total: 10, Entries: 3}); h != want {
				t.Fatalf("Head(7) = %+v, want %+v", h, want)
			}
			for _, since := range []uint64{0, 11, 2} { // 0, after the head, more than half
				c, err := node.Changes(ctx, since)
				if err != nil {
					t.Fatal(err)
				}
				h, err := node.Head(ctx, since)
				if err != nil {
					t.Fatal(err)
				}
				if !c.Snapshot || len(c.Entries) != 10 || !h.Snapshot || h.Entries != 10 {
					t.Fatalf("since %d: Changes snapshot %v (%d entries), Head %+v, want snapshots", since, c.Snapshot, len(c.Entries), h)
				}
			}
			up, err := node.Changes(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if up.Snapshot || len(up.Entries) != 0 {
				t.Fatalf("Changes(10) = %+v, want an empty delta", up)
			}
		}
	})
}

func TestChangesSkipsExpired(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	ctx := context.Background()
	s := open(t, srv.URL(), valkey.Options{})
	short, long := uuid.New(), uuid.New()
	now := time.Now()
	revoke(t, s, short, now.Add(time.Second))
	revoke(t, s, long, now.Add(time.Hour))
	later := open(t, srv.URL(), valkey.Options{Now: func() time.Time { return now.Add(time.Minute) }})
	ch, err := later.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Entries) != 1 || ch.Entries[0].ID != long {
		t.Fatalf("Changes(0) at +1 min = %+v, want %s only", ch.Entries, long)
	}
	// Once the server expired it, Trim drops its index members.
	deadline := time.Now().Add(10 * time.Second)
	for srv.MustDo("EXISTS", recordKey(short)) != "0" {
		if time.Now().After(deadline) {
			t.Fatal("record did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.MustDo("ZCARD", "{sessiond}:rseq"); got != "1" {
		t.Fatalf("ZCARD rseq after Trim = %s, want 1", got)
	}
}

func TestEpoch(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	ctx := context.Background()
	a := open(t, srv.URL(), valkey.Options{})
	epoch := a.Epoch()
	a.Close()
	b := open(t, srv.URL(), valkey.Options{})
	if b.Epoch() != epoch {
		t.Fatalf("epoch after reopen = %q, want %q", b.Epoch(), epoch)
	}
	other := open(t, srv.URL(), valkey.Options{Prefix: "other"})
	if other.Epoch() == epoch {
		t.Fatal("another prefix has the same epoch, want its own list")
	}
	id := uuid.New()
	revoke(t, b, id, time.Now().Add(time.Hour))
	wantRevoked(t, other, id, false)

	// The server loses its data: reads fail closed, writes refuse.
	wantRevoked(t, b, id, true)
	srv.MustDo("FLUSHALL")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := b.IsRevoked(ctx, id)
		if errors.Is(err, valkey.ErrReplaced) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("IsRevoked after FLUSHALL error = %v, want ErrReplaced", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Revoke(ctx, uuid.New(), time.Now().Add(time.Hour)); !errors.Is(err, valkey.ErrReplaced) {
		t.Fatalf("Revoke after FLUSHALL = %v, want ErrReplaced", err)
	}
	if _, err := b.Changes(ctx, 0); !errors.Is(err, valkey.ErrReplaced) {
		t.Fatalf("Changes after FLUSHALL = %v, want ErrReplaced", err)
	}
	if _, _, err := b.Cutoff(ctx, "alice"); !errors.Is(err, valkey.ErrReplaced) {
		t.Fatalf("Cutoff after FLUSHALL = %v, want ErrReplaced", err)
	}
}

func TestClosed(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	ctx := context.Background()
	s, err := valkey.Open(ctx, srv.URL(), valkey.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close() = %v, want nil", err)
	}
	id := uuid.New()
	if got, err := s.IsRevoked(ctx, id); !errors.Is(err, revocation.ErrClosed) || !got {
		t.Errorf("IsRevoked after Close = %v, %v, want true, ErrClosed", got, err)
	}
	if err := s.Revoke(ctx, id, time.Now().Add(time.Hour)); !errors.Is(err, revocation.ErrClosed) {
		t.Errorf("Revoke after Close = %v, want ErrClosed", err)
	}
	if _, ok, err := s.Cutoff(ctx, "a"); !errors.Is(err, revocation.ErrClosed) || !ok {
		t.Errorf("Cutoff after Close = %v, %v, want true, ErrClosed", ok, err)
	}
	if err := s.CutOff(ctx, "a", time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, revocation.ErrClosed) {
		t.Errorf("CutOff after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Changes(ctx, 0); !errors.Is(err, revocation.ErrClosed) {
		t.Errorf("Changes after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Head(ctx, 0); !errors.Is(err, revocation.ErrClosed) {
		t.Errorf("Head after Close = %v, want ErrClosed", err)
	}
}
