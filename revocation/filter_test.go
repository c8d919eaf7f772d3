package revocation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestFilter(t *testing.T) {
	const n = 100_000
	f := newFilter(n, minFilterBits)
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
	f := newFilter(1_000_000, minFilterBits)
	for range 1_000_000 {
		f.add(uuid.New())
	}
	id := uuid.New()
	for b.Loop() {
		f.mayContain(id)
	}
}

// TestFilterGrows writes ids to a real store whose filter starts at 256
// ids, from 128 concurrent callers, while readers check that every id
// whose Revoke returned is revoked (through fills and swaps of the filter)
// and the false-positive rate of the filter is sampled. A filter sized once
// at open would reach 90% and more here; the growing one must stay under
// 1% at every sample (0.24% at its growth threshold).
func TestFilterGrows(t *testing.T) {
	n := 60_000 // eight growths of the filter from 2^12 bits
	if testing.Short() {
		n = 20_000
	}
	b, err := OpenBadger(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.filter.Store(newFilter(0, 1<<12)) // before any write: the writer has not read it yet
	ctx := context.Background()
	until := time.Now().Add(time.Hour)

	var (
		mu    sync.Mutex
		acked []uuid.UUID // ids whose Revoke returned nil
		next  atomic.Int64
		done  = make(chan struct{})
		errs  = make(chan error, 256)
	)
	var writers sync.WaitGroup
	for range 128 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for next.Add(1) <= int64(n) {
				id := uuid.New()
				if err := b.Revoke(ctx, id, until); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { // never a false negative, during fills and swaps too
		defer readers.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-done:
				return
			default:
			}
			mu.Lock()
			var id uuid.UUID
			if len(acked) > 0 {
				id = acked[rng.IntN(len(acked))]
			}
			mu.Unlock()
			if id == uuid.Nil {
				continue
			}
			if revoked, err := b.IsRevoked(ctx, id); !revoked || err != nil {
				errs <- fmt.Errorf("IsRevoked(%s) = %v, %v for an acknowledged id, want true", id, revoked, err)
				return
			}
		}
	}()
	type sample struct {
		ids  int
		rate float64
	}
	var samples []sample
	readers.Add(1)
	go func() { // the false-positive rate as the store grows
		defer readers.Done()
		for len(samples) < 1000 {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			mu.Lock()
			ids := len(acked)
			mu.Unlock()
			if ids < 5000 {
				continue
			}
			f, fp := b.filter.Load(), 0
			const probes = 20_000
			for range probes {
				if f.mayContain(uuid.New()) {
					fp++
				}
			}
			samples = append(samples, sample{ids, float64(fp) / probes})
		}
	}()
	writers.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(acked) != n {
		t.Fatalf("%d Revokes acknowledged, want %d", len(acked), n)
	}
	for _, id := range acked {
		if revoked, err := b.IsRevoked(ctx, id); !revoked || err != nil {
			t.Fatalf("after the writes: IsRevoked(%s) = %v, %v, want true", id, revoked, err)
		}
	}
	if len(samples) == 0 {
		t.Fatal("no false-positive sample was taken")
	}
	worst := samples[0]
	for _, s := range samples {
		if s.rate > worst.rate {
			worst = s
		}
	}
	t.Logf("%d samples, worst false-positive rate %.4f at %d ids; filter of %d bits for %d adds at the end",
		len(samples), worst.rate, worst.ids, len(b.filter.Load().words)*64, b.filter.Load().added.Load())
	if worst.rate > 0.01 {
		t.Errorf("false-positive rate %.4f at %d ids, want <= 0.01", worst.rate, worst.ids)
	}
	fp := 0
	for range 100_000 {
		if f := b.filter.Load(); f.mayContain(uuid.New()) {
			fp++
		}
	}
	if rate := float64(fp) / 100_000; rate > 0.01 {
		t.Errorf("false-positive rate at the end %.4f, want <= 0.01", rate)
	}
}
