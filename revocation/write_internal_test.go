package revocation

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

// BenchmarkRevokeSyncs is BenchmarkRevoke/parallel with the syncs of the
// group commit counted: syncs/op is the journal syncs per Revoke (every
// caller of a batch shares one). Unlike ns/op, which on a shared disk
// varies several-fold from run to run, it barely depends on the load.
func BenchmarkRevokeSyncs(b *testing.B) {
	s, err := OpenBadger(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Revoke(ctx, uuid.New(), until); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.journal.syncs)/float64(b.N), "syncs/op")
}

// TestRevokeAgainNeverShortens revokes ids again with a shorter and a
// longer expiry: the entry keeps the later one, and only a longer one is
// a new write. The writer skips the read of the stored record for ids the
// filter does not hold; this checks that it never skips one that is
// stored: right after the write, after a rebuild of the filter from the
// index, and after a reopen (the filter filled from disk).
func TestRevokeAgainNeverShortens(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBadger(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	ctx := context.Background()
	base := time.Now().Add(time.Hour).Truncate(time.Second)
	entry := func(id uuid.UUID) Entry {
		t.Helper()
		c, err := b.Changes(ctx, 0)
		if err != nil {
			t.Fatalf("Changes() error = %v", err)
		}
		var found []Entry
		for _, e := range c.Entries {
			if e.ID == id {
				found = append(found, e)
			}
		}
		if len(found) != 1 {
			t.Fatalf("Changes() has %d entries for %s, want 1", len(found), id)
		}
		return found[0]
	}
	revoke := func(id uuid.UUID, until time.Time) {
		t.Helper()
		if err := b.Revoke(ctx, id, until); err != nil {
			t.Fatalf("Revoke() error = %v", err)
		}
	}
	for _, stage := range []string{"as written", "after a filter rebuild", "after a reopen"} {
		switch stage {
		case "after a filter rebuild":
			b.rebuildFilter.Store(true)
			revoke(uuid.New(), base) // the commit rebuilds the filter
		case "after a reopen":
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if b, err = OpenBadger(dir, Options{}); err != nil {
				t.Fatal(err)
			}
		}
		id := uuid.New()
		revoke(id, base.Add(2*time.Hour))
		first := entry(id)
		if stage == "after a reopen" {
			// An id written before the reopen.
			b.Close()
			if b, err = OpenBadger(dir, Options{}); err != nil {
				t.Fatal(err)
			}
		}
		revoke(id, base.Add(time.Hour))
		if got := entry(id); got != first {
			t.Errorf("%s: shorter Revoke again: entry = %+v, want %+v unchanged", stage, got, first)
		}
		revoke(id, base.Add(3*time.Hour))
		if got := entry(id); !got.Until.After(first.Until) || got.Seq <= first.Seq {
			t.Errorf("%s: longer Revoke again: entry = %+v, want a later Until and Seq than %+v", stage, got, first)
		}
	}
}
