package revocation

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The journal's reader takes the records of one generation and one store
// and stops, without an error, where a crash may leave the file: a torn
// last record, zeros, records of an older generation. A record of the
// generation past a damaged one is an error, and so are sequence numbers
// that do not increase.
func TestReadJournal(t *testing.T) {
	epoch, other := [16]byte{1}, [16]byte{2}
	entry := func(b byte) journalEntry {
		return journalEntry{key: []byte{b, b}, value: []byte{b}, expiresAt: uint64(b)}
	}
	write := func(t *testing.T, recs ...func(j *journal) error) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "j")
		j, err := openJournal(path, epoch)
		if err != nil {
			t.Fatal(err)
		}
		defer j.close()
		for _, r := range recs {
			if err := r(j); err != nil {
				t.Fatal(err)
			}
		}
		return path
	}
	rec := func(gen, last uint64, es ...journalEntry) func(j *journal) error {
		return func(j *journal) error {
			j.gen = gen
			return j.append(last, es)
		}
	}
	restart := func(gen uint64) func(j *journal) error {
		return func(j *journal) error { j.restart(gen); return nil }
	}
	lasts := func(recs []journalRecord) []uint64 {
		var out []uint64
		for _, r := range recs {
			out = append(out, r.last)
		}
		return out
	}
	// Three records of generation 1, then generation 2 over the first.
	path := write(t, rec(1, 3, entry(1), entry(2)), rec(1, 5, entry(3)), rec(1, 9, entry(4)), restart(2), rec(2, 10, entry(5)))
	for _, tt := range []struct {
		name  string
		epoch [16]byte
		gen   uint64
		want  []uint64
	}{
		{"the current generation, stopping at the older records after it", epoch, 2, []uint64{10}},
		{"another store's epoch", other, 2, nil},
		{"a generation not written", epoch, 3, nil},
	} {
		got, err := readJournal(path, tt.epoch, tt.gen)
		if err != nil || len(got) != len(tt.want) || (len(got) > 0 && got[0].last != tt.want[0]) {
			t.Errorf("%s: readJournal() = %v, %v, want %v", tt.name, lasts(got), err, tt.want)
		}
	}

	path = write(t, rec(1, 3, entry(1), entry(2)), rec(1, 5, entry(3)), rec(1, 9, entry(4)))
	got, err := readJournal(path, epoch, 1)
	if err != nil || len(got) != 3 || len(got[0].entries) != 2 || string(got[0].entries[1].key) != "\x02\x02" || got[2].entries[0].expiresAt != 4 {
		t.Fatalf("readJournal() = %+v, %v, want the three records", got, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := 8 + 20 + 2*(1+2+1+1+8)
	second := 8 + 20 + (1 + 2 + 1 + 1 + 8)
	// Torn: the third record half written, as a crash leaves it.
	torn := append([]byte(nil), data...)
	clear(torn[first+second+10 : first+second+30])
	if got, err := readJournal(writeFile(t, torn), epoch, 1); err != nil || len(got) != 2 {
		t.Errorf("torn last record: readJournal() = %v, %v, want the first two", lasts(got), err)
	}
	// Damaged in the middle: the second record's value flipped.
	damaged := append([]byte(nil), data...)
	damaged[first+8+20+3] ^= 0xff
	if got, err := readJournal(writeFile(t, damaged), epoch, 1); err == nil {
		t.Errorf("a damaged record followed by a valid one: readJournal() = %v, want an error", lasts(got))
	}
	// Sequence numbers that go back.
	path = write(t, rec(1, 5, entry(1)), rec(1, 5, entry(2)))
	if got, err := readJournal(path, epoch, 1); err == nil {
		t.Errorf("sequence numbers not increasing: readJournal() = %v, want an error", lasts(got))
	}
	// A record that does not fit is refused whole, and nothing is written.
	j, err := openJournal(filepath.Join(t.TempDir(), "j"), epoch)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	j.gen, j.off = 1, journalSize-10
	if err := j.append(1, []journalEntry{entry(1)}); err != errJournalFull {
		t.Errorf("append() at the journal's end = %v, want errJournalFull", err)
	}
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "j")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A journal that fills checkpoints and starts over: every revocation is
// kept, after the fill and after a reopen, and the seal moved on.
func TestJournalFills(t *testing.T) {
	defer func(size int64) { journalSize = size }(journalSize)
	journalSize = 4096 // about 60 single revocations
	dir := t.TempDir()
	s, err := OpenBadger(dir, Options{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	gen := s.seal.state.jgen
	ctx := context.Background()
	ids := make([]uuid.UUID, 300)
	for i := range ids {
		ids[i] = uuid.New()
		if err := s.Revoke(ctx, ids[i], time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if s.seal.state.jgen < gen+4 {
		t.Errorf("journal generation went from %d to %d after 300 writes into 4 KiB, want at least 4 checkpoints", gen, s.seal.state.jgen)
	}
	for range 2 {
		for _, id := range ids {
			if revoked, err := s.IsRevoked(ctx, id); err != nil || !revoked {
				t.Fatalf("IsRevoked(%s) = %v, %v, want true", id, revoked, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = OpenBadger(dir, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
}

// A store from before the journal (a seal of the first format, no journal
// file) opens with what it holds and gets a journal; the seal is then of
// the new format.
func TestOpenStoreFromBeforeTheJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "revocations")
	s, err := OpenBadger(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	for _, id := range ids {
		if err := s.Revoke(context.Background(), id, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	st := s.seal.state
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The seal as the version before the journal wrote it.
	old := make([]byte, 2*sealSlotSize)
	for i := range 2 {
		b := old[i*sealSlotSize:]
		copy(b, sealMagicV1)
		binary.BigEndian.PutUint64(b[8:], uint64(i+1))
		copy(b[16:32], st.epoch[:])
		binary.BigEndian.PutUint64(b[32:], st.seq)
		binary.BigEndian.PutUint32(b[sealBodyV1:], crc32.Checksum(b[:sealBodyV1], crc32c))
	}
	if err := os.WriteFile(sealPath(dir), old, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(journalPath(dir)); err != nil {
		t.Fatal(err)
	}
	if s, err = OpenBadger(dir, Options{}); err != nil {
		t.Fatalf("OpenBadger() of a store sealed before the journal: %v", err)
	}
	defer s.Close()
	for _, id := range ids {
		if revoked, err := s.IsRevoked(context.Background(), id); err != nil || !revoked {
			t.Fatalf("IsRevoked(%s) = %v, %v, want true", id, revoked, err)
		}
	}
	if _, err := os.Stat(journalPath(dir)); err != nil || s.seal.state.jgen == 0 {
		t.Fatalf("after the open: journal %v, journal generation %d; want a journal", err, s.seal.state.jgen)
	}
	data, err := os.ReadFile(sealPath(dir))
	if err != nil || !strings.Contains(string(data), sealMagic) {
		t.Fatalf("seal after the open: %v, want the new format", err)
	}
}
