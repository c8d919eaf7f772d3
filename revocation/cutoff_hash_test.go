package revocation_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/sessiond/sessiond/revocation"
)

// A cutoff moves from one list into another by its hash, as the feed gives
// it: CutOffHash with the feed's At and Until stores the same record (the
// second CutOff adds is in Until already, not added twice), so the second
// list's feed gives it back unchanged and its Cutoff answers for the
// subject. CutOff and CutOffHash are one write: CutOffHash keeps the later
// cutoff and expiry of a record CutOff wrote, and the other way round.
func TestCutOffHash(t *testing.T) {
	ctx := context.Background()
	from := openStore(t, t.TempDir(), revocation.Options{})
	to := openStore(t, t.TempDir(), revocation.Options{})
	at := time.Now()
	until := at.Add(time.Hour)
	cutOff(t, from, "alice@example.com", at, until)
	ch, err := from.Changes(ctx, 0)
	if err != nil {
		t.Fatalf("Changes() error = %v", err)
	}
	if len(ch.Cutoffs) != 1 {
		t.Fatalf("Changes().Cutoffs = %+v, want alice's", ch.Cutoffs)
	}
	c := ch.Cutoffs[0]
	if err := to.CutOffHash(ctx, c.Subject, c.At, c.Until); err != nil {
		t.Fatalf("CutOffHash() = %v", err)
	}
	wantCutoff(t, to, "alice@example.com", at)
	wantCutoff(t, to, "bob@example.com", time.Time{})
	got, err := to.Changes(ctx, 0)
	if err != nil {
		t.Fatalf("Changes() error = %v", err)
	}
	if len(got.Cutoffs) != 1 || got.Cutoffs[0].Subject != c.Subject || !got.Cutoffs[0].At.Equal(c.At) || !got.Cutoffs[0].Until.Equal(c.Until) {
		t.Fatalf("Changes().Cutoffs after CutOffHash = %+v, want %+v (the same record)", got.Cutoffs, c)
	}

	t.Run("never moves back, keeps the later expiry", func(t *testing.T) {
		h := sha256.Sum256([]byte("carol"))
		cutOff(t, to, "carol", at, until)
		if err := to.CutOffHash(ctx, h, at.Add(-time.Hour), until.Add(2*time.Hour)); err != nil {
			t.Fatalf("CutOffHash() = %v", err)
		}
		wantCutoff(t, to, "carol", at)
		if err := to.CutOffHash(ctx, h, at.Add(10*time.Second), until); err != nil {
			t.Fatalf("CutOffHash() = %v", err)
		}
		wantCutoff(t, to, "carol", at.Add(10*time.Second))
		ch, err := to.Changes(ctx, 0)
		if err != nil {
			t.Fatalf("Changes() error = %v", err)
		}
		for _, c := range ch.Cutoffs {
			if c.Subject == h && c.Until.Unix() != until.Add(2*time.Hour).Unix()+1 {
				t.Fatalf("carol's Until = %d, want %d (the later expiry, rounded up)", c.Until.Unix(), until.Add(2*time.Hour).Unix()+1)
			}
		}
	})
	t.Run("past writes nothing", func(t *testing.T) {
		h := sha256.Sum256([]byte("dave"))
		if err := to.CutOffHash(ctx, h, at, time.Now().Add(-time.Second)); err != nil {
			t.Fatalf("CutOffHash() in the past = %v, want nil", err)
		}
		wantCutoff(t, to, "dave", time.Time{})
	})
	t.Run("before 1970", func(t *testing.T) {
		if err := to.CutOffHash(ctx, sha256.Sum256([]byte("erin")), time.Unix(-1, 0), until); err == nil {
			t.Fatal("CutOffHash() before 1970 = nil, want an error")
		}
	})
	t.Run("closed", func(t *testing.T) {
		s := openStore(t, t.TempDir(), revocation.Options{})
		s.Close()
		if err := s.CutOffHash(ctx, c.Subject, at, until); err == nil {
			t.Fatal("CutOffHash() after Close = nil, want an error")
		}
	})
}
