package valkey_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/revocation/valkey"
)

// checker is what the benchmarks call.
type checker interface {
	IsRevoked(ctx context.Context, id uuid.UUID) (bool, error)
	Revoke(ctx context.Context, id uuid.UUID, expires time.Time) error
}

// benchIsRevoked measures IsRevoked of an id read before (so, on Valkey,
// answered from the client-side cache), revoked or not.
func benchIsRevoked(b *testing.B, s checker) {
	ctx := context.Background()
	revoked, open := uuid.New(), uuid.New()
	if err := s.Revoke(ctx, revoked, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		id   uuid.UUID
		want bool
	}{{"revoked", revoked, true}, {"not_revoked", open, false}} {
		b.Run(c.name, func(b *testing.B) {
			if got, err := s.IsRevoked(ctx, c.id); err != nil || got != c.want {
				b.Fatalf("IsRevoked = %v, %v, want %v", got, err, c.want)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if got, err := s.IsRevoked(ctx, c.id); err != nil || got != c.want {
					b.Fatalf("IsRevoked = %v, %v, want %v", got, err, c.want)
				}
			}
		})
	}
}

// BenchmarkIsRevokedCached compares the cached read of this store with
// Badger's IsRevoked, in the same run.
func BenchmarkIsRevokedCached(b *testing.B) {
	b.Run("valkey", func(b *testing.B) {
		srv := valkeytest.Start(b, valkeytest.Options{})
		benchIsRevoked(b, open(b, srv.URL(), valkey.Options{}))
	})
	b.Run("badger", func(b *testing.B) {
		s, err := revocation.OpenBadger(b.TempDir(), revocation.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		benchIsRevoked(b, s)
	})
}

// BenchmarkRevoke is one close: the script and WAITAOF (appendfsync
// always), one at a time.
func BenchmarkRevoke(b *testing.B) {
	srv := valkeytest.Start(b, valkeytest.Options{})
	s := open(b, srv.URL(), valkey.Options{})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Revoke(ctx, uuid.New(), exp); err != nil {
			b.Fatal(err)
		}
	}
}
