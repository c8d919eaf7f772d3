package valkey_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/revocation/valkey"
)

// A Badger list's cutoffs move into Valkey by their hash, as the feed
// gives them: CutOffHash with the feed's At and Until stores the same
// record (PEXPIRETIME is Until, the second CutOff adds not added twice),
// Valkey's feed gives it back unchanged, and Cutoff answers for the
// subject. Then the contract of CutOff: never back, the later expiry, the
// past writes nothing, before 1970 refused, a closed store refuses.
func TestCutOffHashFromBadger(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		ctx := context.Background()
		b, err := revocation.OpenBadger(t.TempDir(), revocation.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		v := open(t, srv.URL(), valkey.Options{})
		at := time.Now()
		until := at.Add(time.Hour)
		if err := b.CutOff(ctx, "alice@example.com", at, until); err != nil {
			t.Fatal(err)
		}
		from, err := b.Changes(ctx, 0)
		if err != nil || len(from.Cutoffs) != 1 {
			t.Fatalf("Badger Changes() = %+v, %v, want alice's cutoff", from.Cutoffs, err)
		}
		c := from.Cutoffs[0]
		if err := v.CutOffHash(ctx, c.Subject, c.At, c.Until); err != nil {
			t.Fatalf("CutOffHash() = %v", err)
		}
		if got, want := pexpiretime(t, srv, cutKey("alice@example.com")), c.Until.Unix()*1000; got != want {
			t.Errorf("PEXPIRETIME = %d, want %d (the feed's Until)", got, want)
		}
		to, err := v.Changes(ctx, 0)
		if err != nil || len(to.Cutoffs) != 1 {
			t.Fatalf("Valkey Changes() = %+v, %v, want alice's cutoff", to.Cutoffs, err)
		}
		if g := to.Cutoffs[0]; g.Subject != c.Subject || !g.At.Equal(c.At) || !g.Until.Equal(c.Until) {
			t.Errorf("Valkey's cutoff = %+v, want Badger's %+v", g, c)
		}
		wantCut := func(subject string, want time.Time) {
			t.Helper()
			got, ok, err := v.Cutoff(ctx, subject)
			if err != nil || ok != !want.IsZero() || (ok && got.Unix() != want.Unix()) {
				t.Fatalf("Cutoff(%q) = %s, %v, %v, want %s", subject, got, ok, err, want)
			}
		}
		wantCut("alice@example.com", at)
		wantCut("bob@example.com", time.Time{})

		h := sha256.Sum256([]byte("alice@example.com"))
		if err := v.CutOffHash(ctx, h, at.Add(-time.Hour), until.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		wantCut("alice@example.com", at)
		if got, want := pexpiretime(t, srv, cutKey("alice@example.com")), expSec(until.Add(time.Hour))*1000; got != want {
			t.Errorf("PEXPIRETIME after a later until = %d, want %d", got, want)
		}
		if err := v.CutOffHash(ctx, h, at.Add(10*time.Second), until); err != nil {
			t.Fatal(err)
		}
		wantCut("alice@example.com", at.Add(10*time.Second))
		if got, want := pexpiretime(t, srv, cutKey("alice@example.com")), expSec(until.Add(time.Hour))*1000; got != want {
			t.Errorf("PEXPIRETIME after an earlier until = %d, want %d (never shortened)", got, want)
		}
		if err := v.CutOffHash(ctx, sha256.Sum256([]byte("dave")), at, time.Now().Add(-time.Second)); err != nil {
			t.Fatalf("CutOffHash() in the past = %v, want nil", err)
		}
		wantCut("dave", time.Time{})
		if err := v.CutOffHash(ctx, h, time.Unix(-1, 0), until); err == nil {
			t.Error("CutOffHash() before 1970 = nil, want an error")
		}
		closed := open(t, srv.URL(), valkey.Options{})
		closed.Close()
		if err := closed.CutOffHash(ctx, h, at, until); err == nil {
			t.Error("CutOffHash() after Close = nil, want an error")
		}
	})
}
