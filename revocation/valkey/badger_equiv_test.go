package valkey_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/revocation"
	"github.com/sessiond/sessiond/revocation/valkey"
)

// feedStore is what both backends offer.
type feedStore interface {
	revocation.Store
	revocation.Cutoffs
	revocation.Feed
}

// TestSameAsBadger: the same writes, one at a time, give the same feed on
// both backends (entries, cutoffs, sequence numbers, expiries, snapshot or
// delta for every since), apart from the epoch.
func TestSameAsBadger(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *valkeytest.Server) {
		ctx := context.Background()
		now := time.Now()
		clock := func() time.Time { return now }
		b, err := revocation.OpenBadger(t.TempDir(), revocation.Options{Retention: 30 * time.Second, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		v := open(t, srv.URL(), valkey.Options{Retention: 30 * time.Second, Now: clock})

		ids := make([]uuid.UUID, 8)
		for i := range ids {
			ids[i] = uuid.New()
		}
		base := now.Add(time.Hour)
		ops := []func(s feedStore) error{
			func(s feedStore) error { return s.Revoke(ctx, ids[0], base) },
			func(s feedStore) error { return s.Revoke(ctx, ids[1], base.Add(1500*time.Millisecond)) },
			func(s feedStore) error { return s.CutOff(ctx, "alice", now, base) },
			func(s feedStore) error { return s.Revoke(ctx, ids[0], base.Add(time.Hour)) },        // extends
			func(s feedStore) error { return s.Revoke(ctx, ids[1], base.Add(-time.Minute)) },     // never shortens
			func(s feedStore) error { return s.Revoke(ctx, ids[2], now.Add(-time.Minute)) },      // past: nothing
			func(s feedStore) error { return s.CutOff(ctx, "alice", now.Add(-time.Hour), base) }, // never moves back
			func(s feedStore) error { return s.CutOff(ctx, "bob", now, base.Add(300*time.Millisecond)) },
			func(s feedStore) error { return s.Revoke(ctx, ids[3], base) },
			func(s feedStore) error { return s.Revoke(ctx, ids[4], base) },
			func(s feedStore) error { return s.CutOff(ctx, "alice", now.Add(time.Second), base) }, // forward
			func(s feedStore) error { return s.Revoke(ctx, ids[5], base) },
		}
		for i, op := range ops {
			for _, s := range []feedStore{b, v} {
				if err := op(s); err != nil {
					t.Fatalf("op %d on %T: %v", i, s, err)
				}
			}
		}
		full, err := b.Changes(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Changes(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		full.Epoch, got.Epoch = "", ""
		if !reflect.DeepEqual(got, full) {
			t.Fatalf("Changes(0):\n got %+v\nwant %+v (Badger)", got, full)
		}
		// Every since: a snapshot is the whole list, a delta the part of
		// it written after since. (Whether to answer with a snapshot may
		// differ: Badger counts superseded entries until it compacts.)
		for since := uint64(1); since <= full.Seq+1; since++ {
			for _, s := range []feedStore{b, v} {
				c, err := s.Changes(ctx, since)
				if err != nil {
					t.Fatal(err)
				}
				c.Epoch = ""
				want := full
				if !c.Snapshot {
					want = revocation.Changes{Seq: full.Seq, Entries: []revocation.Entry{}, Cutoffs: []revocation.Cutoff{}}
					for _, e := range full.Entries {
						if e.Seq > since {
							want.Entries = append(want.Entries, e)
						}
					}
					for _, c := range full.Cutoffs {
						if c.Seq > since {
							want.Cutoffs = append(want.Cutoffs, c)
						}
					}
				}
				if since > full.Seq && !c.Snapshot {
					t.Fatalf("%T Changes(%d) after the head is a delta, want a snapshot", s, since)
				}
				if !reflect.DeepEqual(c, want) {
					t.Fatalf("%T Changes(%d):\n got %+v\nwant %+v", s, since, c, want)
				}
			}
		}
		for _, id := range ids {
			want, _ := b.IsRevoked(ctx, id)
			if got, err := v.IsRevoked(ctx, id); err != nil || got != want {
				t.Fatalf("IsRevoked(%s) = %v, %v, Badger says %v", id, got, err, want)
			}
		}
	})
}
