package revocation_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/revocation"
)

var _ revocation.Cutoffs = (*revocation.Badger)(nil)

// wantCutoff fails the test unless Cutoff(subject) reports the cutoff
// second at (ok false when at is zero) without error.
func wantCutoff(tb testing.TB, s revocation.Cutoffs, subject string, at time.Time) {
	tb.Helper()
	got, ok, err := s.Cutoff(context.Background(), subject)
	if err != nil {
		tb.Fatalf("Cutoff(%q) error = %v", subject, err)
	}
	if want := !at.IsZero(); ok != want {
		tb.Fatalf("Cutoff(%q) ok = %v, want %v", subject, ok, want)
	}
	if ok && !got.Equal(time.Unix(at.Unix(), 0)) {
		tb.Fatalf("Cutoff(%q) = %s, want %s", subject, got, time.Unix(at.Unix(), 0))
	}
}

// cutOff fails the test unless CutOff returns nil.
func cutOff(tb testing.TB, s revocation.Cutoffs, subject string, at, until time.Time) {
	tb.Helper()
	if err := s.CutOff(context.Background(), subject, at, until); err != nil {
		tb.Fatalf("CutOff(%q, %s, %s) = %v", subject, at, until, err)
	}
}

func TestCutOff(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), revocation.Options{})
	at := time.Now()
	until := at.Add(time.Hour)
	cutOff(t, s, "alice@example.com", at, until)

	t.Run("cut off subject", func(t *testing.T) {
		wantCutoff(t, s, "alice@example.com", at)
	})
	t.Run("other subject", func(t *testing.T) {
		wantCutoff(t, s, "bob@example.com", time.Time{})
		wantCutoff(t, s, "Alice@example.com", time.Time{})
	})
	t.Run("whole second", func(t *testing.T) {
		got, _, err := s.Cutoff(ctx, "alice@example.com")
		if err != nil {
			t.Fatalf("Cutoff() error = %v", err)
		}
		if got.Nanosecond() != 0 || got.Unix() != at.Unix() {
			t.Fatalf("Cutoff() = %s, want the whole second %d", got, at.Unix())
		}
	})
	t.Run("not an entry", func(t *testing.T) {
		wantLen(t, s, 0)
	})
	t.Run("later cutoff moves forward", func(t *testing.T) {
		later := at.Add(10 * time.Second)
		cutOff(t, s, "carol", at, until)
		cutOff(t, s, "carol", later, until)
		wantCutoff(t, s, "carol", later)
	})
	t.Run("earlier cutoff never moves back", func(t *testing.T) {
		cutOff(t, s, "dave", at, until)
		cutOff(t, s, "dave", at.Add(-time.Hour), until.Add(time.Hour))
		wantCutoff(t, s, "dave", at)
	})
	t.Run("until in the past writes nothing", func(t *testing.T) {
		cutOff(t, s, "erin", at, at.Add(-time.Second))
		wantCutoff(t, s, "erin", time.Time{})
	})
	t.Run("empty subject", func(t *testing.T) {
		if err := s.CutOff(ctx, "", at, until); err == nil {
			t.Fatal("CutOff(\"\") = nil, want an error")
		}
	})
	t.Run("before 1970", func(t *testing.T) {
		if err := s.CutOff(ctx, "frank", time.Unix(-1, 0), until); err == nil {
			t.Fatal("CutOff(at before 1970) = nil, want an error")
		}
		wantCutoff(t, s, "frank", time.Time{})
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.CutOff(ctx, "grace", at, until); !errors.Is(err, context.Canceled) {
			t.Errorf("CutOff(cancelled ctx) = %v, want %v", err, context.Canceled)
		}
		if _, ok, err := s.Cutoff(ctx, "alice@example.com"); !errors.Is(err, context.Canceled) || !ok {
			t.Errorf("Cutoff(cancelled ctx) = ok %v, error %v; want ok true (fail closed), %v", ok, err, context.Canceled)
		}
	})
}

func TestCutoffDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := revocation.OpenBadger(dir, revocation.Options{})
	if err != nil {
		t.Fatalf("OpenBadger() = %v", err)
	}
	at := time.Now()
	cutOff(t, s, "alice@example.com", at, at.Add(time.Hour))
	cutOff(t, s, "bob", at.Add(-time.Minute), at.Add(time.Hour))
	cutOff(t, s, "bob", at.Add(-2*time.Minute), at.Add(2*time.Hour)) // keeps the later cutoff
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	// Subjects may be e-mail addresses: no file holds one in clear.
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("Glob(%s) = %v, %v", dir, files, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("alice@example.com")) {
			t.Errorf("%s holds the subject in clear", f)
		}
	}
	if _, _, err := s.Cutoff(context.Background(), "alice@example.com"); !errors.Is(err, revocation.ErrClosed) {
		t.Fatalf("Cutoff() after Close error = %v, want %v", err, revocation.ErrClosed)
	}
	if err := s.CutOff(context.Background(), "carol", at, at.Add(time.Hour)); !errors.Is(err, revocation.ErrClosed) {
		t.Fatalf("CutOff() after Close = %v, want %v", err, revocation.ErrClosed)
	}

	s = openStore(t, dir, revocation.Options{})
	wantCutoff(t, s, "alice@example.com", at)
	wantCutoff(t, s, "bob", at.Add(-time.Minute))
	wantCutoff(t, s, "carol", time.Time{})
	wantLen(t, s, 0)
}

// A cutoff that CutOff acknowledged survives a SIGKILL of the process in the
// middle of writes, and the store opens (the seal counts cutoff writes).
func TestCutoffDurableAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	t.Parallel()
	dir := t.TempDir()
	cmd, stdout := startCrashHelperMode(t, dir, "cutoff")

	const want = 300
	acked := make(map[string]int64, want)
	sc := bufio.NewScanner(stdout)
	deadline := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	for len(acked) < want && sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "CUT "); ok {
			sec, subject, _ := strings.Cut(rest, " ")
			at, err := strconv.ParseInt(sec, 10, 64)
			if err != nil || subject == "" {
				t.Fatalf("helper printed %q", line)
			}
			acked[subject] = at
		} else if strings.HasPrefix(line, "ERR ") {
			t.Fatalf("helper: %s", line)
		}
	}
	deadline.Stop()
	// SIGKILL in the middle of the writes: no Close, no flush.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("Kill() = %v", err)
	}
	_ = cmd.Wait()
	if len(acked) < want {
		t.Fatalf("helper acknowledged %d cutoffs before it stopped, want %d", len(acked), want)
	}

	s := openStore(t, dir, revocation.Options{})
	for subject, at := range acked {
		wantCutoff(t, s, subject, time.Unix(at, 0))
	}
	wantLen(t, s, 0)
}

// A cutoff lasts until its until and vanishes soon after, from memory and
// from disk. Badger expires records by the wall clock, so the test uses it.
func TestCutoffExpiry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := revocation.OpenBadger(dir, revocation.Options{})
	if err != nil {
		t.Fatalf("OpenBadger() = %v", err)
	}
	defer s.Close()
	at := time.Now()
	until := at.Add(2 * time.Second)
	cutOff(t, s, "alice", at, until)
	cutOff(t, s, "bob", at, at.Add(time.Hour))
	wantCutoff(t, s, "alice", at)

	// The margin: rounded up to a whole second, plus one.
	giveUp := until.Truncate(time.Second).Add(4 * time.Second)
	for {
		before := time.Now()
		_, ok, err := s.Cutoff(context.Background(), "alice")
		if err != nil {
			t.Fatalf("Cutoff() error = %v", err)
		}
		if !ok {
			if before.Before(until) {
				t.Fatalf("Cutoff() ok = false at %v, before until %v", before, until)
			}
			break
		}
		if before.After(giveUp) {
			t.Fatalf("Cutoff() ok = true at %v, want false after %v", before, until)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Reclaim(); err != nil {
		t.Fatalf("Reclaim() = %v", err)
	}
	wantCutoff(t, s, "alice", time.Time{})
	wantCutoff(t, s, "bob", at)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	s = openStore(t, dir, revocation.Options{})
	wantCutoff(t, s, "alice", time.Time{})
	wantCutoff(t, s, "bob", at)
}

// Raising the retention extends cutoff records as it extends entries.
func TestRetentionExtendsCutoffs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, revocation.Options{})
	at := time.Now()
	until := at.Add(2 * time.Second)
	cutOff(t, s, "alice", at, until)
	closeStore(t, s)

	s = openStore(t, dir, revocation.Options{Retention: time.Hour})
	closeStore(t, s)

	s = openStore(t, dir, revocation.Options{})
	time.Sleep(time.Until(until.Truncate(time.Second).Add(2500 * time.Millisecond)))
	// Past the record's own expiry, within the hour of leeway a verifier
	// may now allow: the cutoff must still be there, in memory and on disk.
	wantCutoff(t, s, "alice", at)
	closeStore(t, s)
	s = openStore(t, dir, revocation.Options{})
	wantCutoff(t, s, "alice", at)
}

// BenchmarkCutoff measures the lookup on the verify path with 100,000
// subjects cut off: hits and misses, subjects longer than 32 bytes (the
// conversion to hash them must not allocate either).
func BenchmarkCutoff(b *testing.B) {
	const n = 100_000
	s := openStore(b, b.TempDir(), revocation.Options{})
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("someone.with.a.long.name-%06d@example.com", i)
	}
	at := time.Now()
	var wg sync.WaitGroup
	const writers = 256
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				if err := s.CutOff(context.Background(), subjects[i], at, at.Add(time.Hour)); err != nil {
					b.Errorf("CutOff() = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	misses := make([]string, 1024)
	for i := range misses {
		misses[i] = fmt.Sprintf("someone.else.with.a.long.name-%06d@example.com", i)
	}
	ctx := context.Background()

	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok, err := s.Cutoff(ctx, subjects[i%n]); !ok || err != nil {
				b.Fatalf("Cutoff() = %v, %v; want a cutoff", ok, err)
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok, err := s.Cutoff(ctx, misses[i%len(misses)]); ok || err != nil {
				b.Fatalf("Cutoff() = %v, %v; want none", ok, err)
			}
			i++
		}
	})
}
