package valkey_test

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessiond/sessiond/internal/valkeytest"
	"github.com/sessiond/sessiond/revocation/valkey"
)

// TestConcurrentNodes: two nodes revoking at once share one sequence:
// every write gets its own number, and both nodes publish the same list.
func TestConcurrentNodes(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	ctx := context.Background()
	nodes := []*valkey.Store{open(t, srv.URL(), valkey.Options{}), open(t, srv.URL(), valkey.Options{})}
	const perNode = 100
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 2*perNode)
	for _, s := range nodes {
		for range perNode {
			wg.Go(func() {
				if err := s.Revoke(ctx, uuid.New(), exp); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Revoke: %v", err)
	}
	a, err := nodes[0].Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nodes[1].Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the two nodes answer Changes(0) differently")
	}
	if a.Seq != 2*perNode || len(a.Entries) != 2*perNode {
		t.Fatalf("Changes(0) = seq %d, %d entries, want %d, %d", a.Seq, len(a.Entries), 2*perNode, 2*perNode)
	}
	for i, e := range a.Entries {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d, want %d (one sequence, no gaps, no repeats)", i, e.Seq, i+1)
		}
	}
	da, _ := nodes[0].Changes(ctx, 150)
	db, _ := nodes[1].Changes(ctx, 150)
	if !reflect.DeepEqual(da, db) || da.Snapshot || len(da.Entries) != 50 {
		t.Fatalf("Changes(150): %d entries (snapshot %v), equal on both nodes %v; want a delta of 50 on both", len(da.Entries), da.Snapshot, reflect.DeepEqual(da, db))
	}
}

var evalshaCalls = regexp.MustCompile(`cmdstat_evalsha:calls=(\d+)`)

// TestBatchedRevokes: Revoke calls made at once are written in batches
// (fewer scripts than calls), and each still gets its own outcome: 300
// calls for 100 ids, each id revoked three times with three expiries,
// all return nil, every id is revoked, and the list holds each id once,
// with the latest of its expiries; a call whose context has ended returns
// the context's error without failing the others.
func TestBatchedRevokes(t *testing.T) {
	srv := valkeytest.Start(t, valkeytest.Options{})
	ctx := context.Background()
	s := open(t, srv.URL(), valkey.Options{})
	calls := func() int {
		m := evalshaCalls.FindStringSubmatch(srv.MustDo("INFO", "commandstats"))
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	ids := make([]uuid.UUID, 100)
	for i := range ids {
		ids[i] = uuid.New()
	}
	base := time.Now().Add(time.Hour).Truncate(time.Second)
	before := calls()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(ids))
	for _, h := range []int{0, 2, 1} {
		for _, id := range ids {
			wg.Go(func() {
				<-start
				if err := s.Revoke(ctx, id, base.Add(time.Duration(h)*time.Hour)); err != nil {
					errs <- err
				}
			})
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	close(start)
	if err := s.Revoke(cancelled, uuid.New(), base); !errors.Is(err, context.Canceled) {
		t.Errorf("Revoke with a cancelled context = %v, want context.Canceled", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Revoke: %v", err)
	}
	if n := calls() - before; n >= 3*len(ids) {
		t.Errorf("%d scripts for %d Revoke calls made at once, want fewer (batches)", n, 3*len(ids))
	}
	for _, id := range ids {
		wantRevoked(t, s, id, true)
	}
	c, err := s.Changes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	until := map[uuid.UUID]time.Time{}
	for _, e := range c.Entries {
		if _, dup := until[e.ID]; dup {
			t.Fatalf("id %s is in the list twice", e.ID)
		}
		until[e.ID] = e.Until
	}
	for _, id := range ids {
		// The latest expiry, plus the retention (none) and the second
		// Badger's TTL adds.
		if want := base.Add(2*time.Hour + time.Second); !until[id].Equal(want) {
			t.Errorf("id %s until %s, want %s (the latest of its three expiries)", id, until[id], want)
		}
	}
}
