package revocation

import (
	"testing"

	"github.com/google/uuid"
)

func TestIndexCompact(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	var x index
	x.add([]indexEntry{{a, 100, 1}, {b, 300, 2}, {c, 200, 3}}, nil, 3)
	x.add([]indexEntry{{b, 400, 4}}, []uuid.UUID{b}, 4) // b extended

	if dropped := x.compact(150); dropped != 2 {
		t.Errorf("compact(150) dropped %d entries, want 2 (a expired, b superseded)", dropped)
	}
	entries, seq, newer := x.view()
	want := []indexEntry{{c, 200, 3}, {b, 400, 4}}
	if len(entries) != len(want) || entries[0] != want[0] || entries[1] != want[1] || seq != 4 {
		t.Errorf("after compact: entries %v at seq %d, want %v at 4", entries, seq, want)
	}
	if len(newer) != 0 {
		t.Errorf("after compact newer = %v, want empty", newer)
	}
	if dropped := x.compact(150); dropped != 0 {
		t.Errorf("compacting again dropped %d", dropped)
	}
	// Compaction does not touch the array readers hold.
	if entries[0] != want[0] {
		t.Errorf("a reader's view changed")
	}
}
