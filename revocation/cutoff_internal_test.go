package revocation

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Reclaim drops expired cutoffs from the map Cutoff answers from, and only
// those.
func TestReclaimDropsExpiredCutoffs(t *testing.T) {
	start := time.Now()
	var offset atomic.Int64
	b, err := OpenBadger(t.TempDir(), Options{Now: func() time.Time { return start.Add(time.Duration(offset.Load())) }})
	if err != nil {
		t.Fatalf("OpenBadger() = %v", err)
	}
	defer b.Close()
	ctx := context.Background()
	long := strings.Repeat("x", 300) // longer than hashSubject's buffer
	for subject, until := range map[string]time.Time{"short": start.Add(time.Minute), "long": start.Add(time.Hour), long: start.Add(time.Hour)} {
		if err := b.CutOff(ctx, subject, start, until); err != nil {
			t.Fatalf("CutOff(%.10q) = %v", subject, err)
		}
	}
	offset.Store(int64(10 * time.Minute))
	if _, ok, err := b.Cutoff(ctx, "short"); ok || err != nil {
		t.Fatalf("Cutoff(expired) = %v, %v; want false, nil", ok, err)
	}
	if got := len(b.cuts.all()); got != 3 {
		t.Fatalf("map holds %d cutoffs before Reclaim, want 3", got)
	}
	if err := b.Reclaim(); err != nil {
		t.Fatalf("Reclaim() = %v", err)
	}
	if got := len(b.cuts.all()); got != 2 {
		t.Fatalf("map holds %d cutoffs after Reclaim, want 2", got)
	}
	for _, subject := range []string{"long", long} {
		at, ok, err := b.Cutoff(ctx, subject)
		if err != nil || !ok || at.Unix() != start.Unix() {
			t.Fatalf("Cutoff(%.10q) = %s, %v, %v; want %s, true, nil", subject, at, ok, err, time.Unix(start.Unix(), 0))
		}
	}
}
