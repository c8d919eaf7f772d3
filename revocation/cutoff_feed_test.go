package revocation_test

import (
	"bytes"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/revocation"
)

// cutoffs returns c's cutoffs by subject hash, failing the test unless
// they are in ascending order of hash, none twice, each within c.Seq.
func cutoffs(tb testing.TB, c revocation.Changes) map[[32]byte]revocation.Cutoff {
	tb.Helper()
	m := make(map[[32]byte]revocation.Cutoff, len(c.Cutoffs))
	for i, k := range c.Cutoffs {
		if i > 0 && bytes.Compare(c.Cutoffs[i-1].Subject[:], k.Subject[:]) >= 0 {
			tb.Fatalf("cutoff %d is out of order or twice", i)
		}
		if k.Seq == 0 || k.Seq > c.Seq {
			tb.Fatalf("cutoff seq %d, Changes.Seq %d", k.Seq, c.Seq)
		}
		m[k.Subject] = k
	}
	return m
}

// wantCutoffs fails the test unless c carries exactly the cutoffs of the
// subjects in want, at the seconds given, under their SHA-256.
func wantCutoffs(tb testing.TB, c revocation.Changes, want map[string]time.Time) {
	tb.Helper()
	got := cutoffs(tb, c)
	if len(got) != len(want) {
		tb.Fatalf("Changes has %d cutoffs, want %d (%v)", len(got), len(want), want)
	}
	for subject, at := range want {
		k, ok := got[sha256.Sum256([]byte(subject))]
		if !ok {
			tb.Fatalf("Changes has no cutoff for the hash of %q", subject)
		}
		if !k.At.Equal(time.Unix(at.Unix(), 0)) {
			tb.Fatalf("cutoff of %q at %s, want %s", subject, k.At, time.Unix(at.Unix(), 0))
		}
	}
}

// Snapshots carry every unexpired cutoff, deltas those written since, by
// hash only; expired ones drop out; they survive a restart with their
// sequence numbers.
func TestChangesCutoffs(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dir := t.TempDir()
	s, err := revocation.OpenBadger(dir, revocation.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(-time.Minute)
	cutOff(t, s, "alice@example.com", at, now.Add(3*time.Hour))
	cutOff(t, s, "bob@example.com", at, now.Add(time.Hour))
	revoke(t, s, now.Add(3*time.Hour), newIDs(4)...)

	snap := changes(t, s, 0)
	if !snap.Snapshot {
		t.Fatalf("Changes(0).Snapshot = false, want true")
	}
	wantCutoffs(t, snap, map[string]time.Time{"alice@example.com": at, "bob@example.com": at})
	for _, k := range snap.Cutoffs {
		if k.Until.Before(now.Add(time.Hour)) || k.Until.Nanosecond() != 0 {
			t.Errorf("cutoff Until = %s, want a whole second after %s", k.Until, now.Add(time.Hour))
		}
	}
	if h, err := s.Head(t.Context(), 0); err != nil || h.Cutoffs != 2 {
		t.Errorf("Head(0) = %+v, %v, want 2 cutoffs", h, err)
	}

	t.Run("delta", func(t *testing.T) {
		later := at.Add(30 * time.Second)
		cutOff(t, s, "carol", at, now.Add(time.Hour))
		cutOff(t, s, "alice@example.com", later, now.Add(time.Hour))
		d := changes(t, s, snap.Seq)
		if d.Snapshot {
			t.Fatalf("Changes(%d).Snapshot = true, want a delta", snap.Seq)
		}
		wantCutoffs(t, d, map[string]time.Time{"carol": at, "alice@example.com": later})
		wantCutoffs(t, changes(t, s, d.Seq), nil)
		// A cutoff that moves nothing is not written, so not in a delta.
		cutOff(t, s, "carol", at.Add(-time.Hour), now.Add(time.Minute))
		wantCutoffs(t, changes(t, s, d.Seq), nil)
	})

	t.Run("expired ones drop out", func(t *testing.T) {
		mu.Lock()
		now = now.Add(2 * time.Hour)
		mu.Unlock()
		wantCutoffs(t, changes(t, s, 0), map[string]time.Time{"alice@example.com": at.Add(30 * time.Second)})
		wantCutoffs(t, changes(t, s, snap.Seq), map[string]time.Time{"alice@example.com": at.Add(30 * time.Second)})
	})

	t.Run("after a restart", func(t *testing.T) {
		before := changes(t, s, 0)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openStore(t, dir, revocation.Options{Now: clock})
		after := changes(t, s, 0)
		if len(after.Cutoffs) != len(before.Cutoffs) || after.Cutoffs[0] != before.Cutoffs[0] {
			t.Fatalf("Cutoffs after reopen = %+v, want %+v", after.Cutoffs, before.Cutoffs)
		}
		wantCutoffs(t, changes(t, s, after.Cutoffs[0].Seq), nil)
		wantCutoffs(t, changes(t, s, after.Cutoffs[0].Seq-1), map[string]time.Time{"alice@example.com": at.Add(30 * time.Second)})
	})
}
