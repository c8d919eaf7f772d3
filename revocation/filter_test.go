package revocation

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestFilter(t *testing.T) {
	const n = 100_000
	f := newFilter(n)
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
		f.add(ids[i])
	}
	for _, id := range ids {
		if !f.mayContain(id) {
			t.Fatalf("mayContain(%s) = false for an added id", id)
		}
	}
	fp := 0
	for range n {
		if f.mayContain(uuid.New()) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.01 {
		t.Errorf("false-positive rate = %.4f, want <= 0.01", rate)
	}
}

// The filter in front of Badger never hides a revocation: not right after
// Revoke, not after a reopen (filled from disk), not after a rebuild.
func TestFilterKeepsRevocations(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBadger(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	check := func(stage string, b *Badger, ids []uuid.UUID) {
		t.Helper()
		for _, id := range ids {
			if revoked, err := b.IsRevoked(ctx, id); !revoked || err != nil {
				t.Fatalf("%s: IsRevoked(%s) = %v, %v, want true", stage, id, revoked, err)
			}
		}
	}
	var ids []uuid.UUID
	for range 200 {
		id := uuid.New()
		if err := b.Revoke(ctx, id, until); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		check("after Revoke", b, ids[len(ids)-1:])
	}
	b.rebuildFilter.Store(true)
	late := uuid.New()
	if err := b.Revoke(ctx, late, until); err != nil { // the commit rebuilds the filter
		t.Fatal(err)
	}
	ids = append(ids, late)
	if b.rebuildFilter.Load() {
		t.Fatal("the filter was not rebuilt")
	}
	check("after a rebuild", b, ids)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = OpenBadger(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	check("after reopening", b, ids)
	if revoked, err := b.IsRevoked(ctx, uuid.New()); revoked || err != nil {
		t.Errorf("IsRevoked(unknown) = %v, %v, want false", revoked, err)
	}
}

func BenchmarkFilterMiss(b *testing.B) {
	f := newFilter(1_000_000)
	for range 1_000_000 {
		f.add(uuid.New())
	}
	id := uuid.New()
	for b.Loop() {
		f.mayContain(id)
	}
}
