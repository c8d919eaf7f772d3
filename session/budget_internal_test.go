package session

import (
	"strconv"
	"testing"
	"time"
)

// The table of budgets is bounded: a flood from more callers than it holds
// leaves every shard full, and the callers without an entry then share
// their shard's overflow budget instead of each getting a fresh one. Once
// the budgets refill, entries are dropped again.
func TestBudgetTableBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := newBudget(1, func() time.Time { return now })
	const callers = budgetShards*budgetPerShard + 20_000
	for i := range callers {
		b.charge("10.0." + strconv.Itoa(i))
	}
	total := 0
	for i := range b.shards {
		if n := len(b.shards[i].buckets); n > budgetPerShard || int64(n) != b.shards[i].size.Load() {
			t.Fatalf("shard %d holds %d entries (size %d), want at most %d", i, n, b.shards[i].size.Load(), budgetPerShard)
		}
		total += len(b.shards[i].buckets)
	}
	if total != budgetShards*budgetPerShard {
		t.Fatalf("%d entries, want every shard full (%d)", total, budgetShards*budgetPerShard)
	}
	if b.allows("192.0.2.1") {
		t.Error("a new caller of a full shard whose overflow budget is spent is allowed")
	}
	if b.allows("10.0.0") {
		t.Error("a caller that spent its budget is allowed before it refills")
	}

	now = now.Add(2 * time.Second) // every budget refills
	if !b.allows("192.0.2.1") || !b.allows("10.0.0") {
		t.Error("callers refused after their budgets refilled")
	}
	b.charge("192.0.2.2") // a full shard drops the refilled entries to make room
	if k := b.shard("192.0.2.2").buckets["192.0.2.2"]; k == nil {
		t.Error("a new caller got no entry of its own after the others refilled")
	}
}
