package valkey

import (
	"crypto/sha256"
	"testing"

	"github.com/google/uuid"
)

// TestKnownInvalidation: an answer read across an invalidation is not
// kept (it may be the one invalidated); an invalidated key's answer goes,
// the others stay; the epoch, a key of the store's that cannot be parsed,
// and nil (a flush, a lost connection) forget everything.
func TestKnownInvalidation(t *testing.T) {
	k := newKeys(DefaultPrefix)
	id, other := uuid.New(), uuid.New()
	h := sha256.Sum256([]byte("alice"))
	fill := func(m *known) {
		g := m.gen.Load()
		m.rememberRevoked(g, id, false)
		m.rememberRevoked(g, other, true)
		m.rememberCutoff(g, h, knownCut{at: 1, exp: 2, ok: true})
	}
	has := func(m *known) (ids, cuts int) {
		for i := range m.shards {
			ids, cuts = ids+len(m.shards[i].ids), cuts+len(m.shards[i].cuts)
		}
		return ids, cuts
	}
	// invalidate is known.invalidate of keys, as strings (nil: nil).
	invalidate := func(m *known, keys []string) {
		if keys == nil {
			m.invalidate(nil)
		}
		for _, key := range keys {
			if !m.forget(key) {
				m.forgetAll()
			}
		}
	}
	str := func(keys ...string) []string { return keys }

	m := newKnown(k, 1000)
	since := m.gen.Load()
	invalidate(m, str(k.record+id.String()))
	m.rememberRevoked(since, id, false)
	if _, ok := m.revoked(id); ok {
		t.Fatal("an answer read across its invalidation was kept")
	}

	fill(m)
	invalidate(m, str(k.record+id.String()))
	if _, ok := m.revoked(id); ok {
		t.Error("the invalidated id's answer stayed")
	}
	if r, ok := m.revoked(other); !ok || !r {
		t.Errorf("another id's answer = %v, %v; want true, kept", r, ok)
	}
	invalidate(m, str(k.cut+"00"))
	if ids, cuts := has(m); ids != 0 || cuts != 0 {
		t.Errorf("after a cutoff key it cannot parse: %d ids, %d cutoffs kept; want none", ids, cuts)
	}
	for _, tc := range []struct {
		name string
		msgs []string
	}{
		{"the epoch", str(k.epoch)},
		{"a record key it cannot parse", str(k.record + "not-an-id")},
		{"nil", nil},
	} {
		fill(m)
		if ids, cuts := has(m); ids != 2 || cuts != 1 {
			t.Fatalf("filled: %d ids, %d cutoffs; want 2, 1", ids, cuts)
		}
		invalidate(m, tc.msgs)
		if ids, cuts := has(m); ids != 0 || cuts != 0 {
			t.Errorf("after %s: %d ids, %d cutoffs kept; want none", tc.name, ids, cuts)
		}
	}
	fill(m)
	invalidate(m, str(k.seq))
	if ids, cuts := has(m); ids != 2 || cuts != 1 {
		t.Errorf("after the sequence key (never read cached): %d ids, %d cutoffs; want all kept", ids, cuts)
	}
}
