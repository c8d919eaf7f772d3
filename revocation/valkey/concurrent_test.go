package valkey_test

import (
	"context"
	"reflect"
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
