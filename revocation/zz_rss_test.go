package revocation_test

import (
	"context"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/revocation"
)

func rss(t *testing.T, label string) {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "RssAnon") || strings.HasPrefix(l, "RssFile") {
			t.Logf("%s: %s", label, l)
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	t.Logf("%s: HeapInuse=%dMiB Sys=%dMiB", label, m.HeapInuse>>20, m.Sys>>20)
}

func TestZZRSS(t *testing.T) {
	if os.Getenv("ZZRSS") == "" {
		t.Skip()
	}
	dir := os.Getenv("ZZRSS")
	s, err := revocation.OpenBadger(dir, revocation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.Sleep(time.Second)
	rss(t, "idle-empty")
	n, _ := s.Len(context.Background())
	if n == 0 {
		ids := make(chan uuid.UUID, 4096)
		go func() {
			for range 1_000_000 {
				ids <- uuid.New()
			}
			close(ids)
		}()
		until := time.Now().Add(2 * time.Hour)
		var wg sync.WaitGroup
		start := time.Now()
		for range 1024 {
			wg.Go(func() {
				for id := range ids {
					if err := s.Revoke(context.Background(), id, until); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		t.Logf("1M revokes took %v", time.Since(start))
		rss(t, "after 1M revokes")
	}
	for range 200_000 {
		s.IsRevoked(context.Background(), uuid.New())
	}
	n, _ = s.Len(context.Background())
	t.Logf("len %d", n)
	runtime.GC()
	time.Sleep(2 * time.Second)
	rss(t, "after lookups, GC")
}
