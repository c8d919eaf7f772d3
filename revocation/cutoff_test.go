package revocation_test

import (
	"context"
	"errors"
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
