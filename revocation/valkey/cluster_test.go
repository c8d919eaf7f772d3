package valkey_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/revocation/valkey"
)

// openDurable opens a store with Replicas 1, waiting (bounded) until the
// replicas have synced: until then every write is ErrNotDurable.
func openDurable(t *testing.T, url string) *valkey.Store {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := valkey.Open(context.Background(), url, valkey.Options{Replicas: 1, WriteTimeout: 3 * time.Second})
		if err == nil {
			t.Cleanup(func() { s.Close() })
			return s
		}
		if !errors.Is(err, valkey.ErrNotDurable) || time.Now().After(deadline) {
			t.Fatalf("Open(%s, Replicas 1) = %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCluster: two nodes on a three-master cluster with one replica each.
// A revoke on one is seen by the other; after the master that holds the
// list's slot is SIGKILLed and its replica takes over, every id revoked
// (with Replicas 1) is still revoked on both nodes, which recover by
// themselves.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a six-node cluster")
	}
	ctx := context.Background()
	c := valkeytest.StartCluster(t, 3, 1)
	a := openDurable(t, c.URL())
	b := openDurable(t, c.URL())
	if a.Epoch() != b.Epoch() {
		t.Fatalf("epochs %q and %q, want one list", a.Epoch(), b.Epoch())
	}
	ids := make([]uuid.UUID, 20)
	for i := range ids {
		ids[i] = uuid.New()
		wantRevoked(t, b, ids[i], false)
		revoke(t, a, ids[i], time.Now().Add(time.Hour))
		waitSeen(t, 100*time.Millisecond, "b sees a's revoke", func() (bool, error) { return b.IsRevoked(ctx, ids[i]) })
	}
	if err := b.CutOff(ctx, "alice", time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ch, err := b.Changes(ctx, 0)
	if err != nil || ch.Seq != 21 || len(ch.Entries) != 20 || len(ch.Cutoffs) != 1 {
		t.Fatalf("Changes(0) = seq %d, %d entries, %d cutoffs, %v; want 21, 20, 1", ch.Seq, len(ch.Entries), len(ch.Cutoffs), err)
	}

	m := c.MasterOf("{sessiond}")
	c.Node(m).Kill()
	// Until the failover, reads of the slot fail (closed), never "not
	// revoked".
	never := uuid.New()
	c.WaitFailover("{sessiond}", m)
	for _, s := range []*valkey.Store{a, b} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, err := s.IsRevoked(ctx, never)
			if err == nil {
				if got {
					t.Fatal("IsRevoked(never revoked) = true")
				}
				break
			}
			if !got {
				t.Fatalf("IsRevoked error %v with false", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("not recovered 20 s after the failover: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, id := range ids {
			wantRevoked(t, s, id, true)
		}
		if _, ok, err := s.Cutoff(ctx, "alice"); err != nil || !ok {
			t.Fatalf("Cutoff after the failover = %v, %v", ok, err)
		}
		after, err := s.Changes(ctx, 0)
		if err != nil || after.Seq != 21 || len(after.Entries) != 20 || after.Epoch != ch.Epoch {
			t.Fatalf("Changes(0) after the failover = seq %d, %d entries, %v", after.Seq, len(after.Entries), err)
		}
	}
}
