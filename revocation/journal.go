package revocation

// This file is the journal: the log of acknowledged writes since the last
// checkpoint, which lets Badger write without syncing.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The journal is a file beside the store's directory (dir + ".journal") of
// journalSize bytes, zero-filled when it is made, so that writing a record
// never allocates disk blocks: it cannot fail for lack of space, and a
// data sync (fdatasync) of it needs no file system metadata.
//
// The group commit writes each batch to the journal and syncs it before it
// commits the batch to Badger, which does not sync its own log; the batch's
// callers are answered after both. One sync per batch instead of three
// (Badger's value log and write-ahead log, then the seal) is what lets
// closes keep up with the disk.
//
// A checkpoint (Badger.checkpoint) syncs Badger (every memtable log and
// the directory too), records the latest committed sequence number in the
// seal together with a new journal generation, and starts the journal over
// at offset 0; records of older generations are ignored from then on.
// Checkpoints happen every Options.CheckpointInterval while there are
// writes, when the journal fills, and on Close. OpenBadger refuses a
// Badger that lacks a checkpointed write, and replays the records of the
// seal's generation that Badger lacks (after a power failure Badger may
// have lost writes it never synced).
//
// Record layout, big-endian: body length (4 bytes), CRC-32C of the store's
// 16-byte epoch followed by the body (4), then the body: journal generation
// (8), the batch's latest sequence number (8), the entry count (4), and
// each entry as key length (1), key, value length (1), value, Badger
// expiry in Unix seconds (8). The epoch in the CRC ties the records to
// their store: another store's journal put in its place reads as empty.
//
// The first record that does not decode ends the journal: it is the one a
// crash interrupted, the zeros past the last write, or a record of an older
// generation. A valid record of the current generation after it would mean
// the journal was damaged in the middle; OpenBadger refuses that store.

// journalSize is the journal file's size (a variable for the tests).
var journalSize int64 = 4 << 20

// journalFixed is a record's header and the fixed part of its body.
const journalFixed = 4 + 4 + 8 + 8 + 4

// journalPath returns the journal file of the store in dir.
func journalPath(dir string) string {
	return filepath.Clean(dir) + ".journal"
}

// journalEntry is one Badger entry as the journal records it.
type journalEntry struct {
	key, value []byte
	expiresAt  uint64
}

// journalRecord is one batch read back from the journal.
type journalRecord struct {
	last    uint64 // the batch's latest sequence number
	entries []journalEntry
}

// errJournalFull reports that a record does not fit in what is left of
// the journal; a checkpoint makes room.
var errJournalFull = errors.New("journal full")

// journal is an open journal file. Only the writer goroutine uses it
// once the store is open.
type journal struct {
	f     *os.File
	epoch [16]byte
	gen   uint64 // the generation being written, the seal's jgen
	off   int64  // where the next record goes
	// broken is set when a write or a sync failed: what the file holds at
	// off is unknown, so the next append waits for a checkpoint.
	broken bool
	buf    []byte
	// syncs counts the journal's syncs since open, for the benchmarks.
	syncs int
}

// openJournal opens the journal at path for writing, making it (or, when
// it is not journalSize bytes long, filling it out with zeros) first. The
// file is synced, and its directory when it is new, before openJournal
// returns: a seal may name it only once it is on disk.
func openJournal(path string, epoch [16]byte) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if info.Size() != journalSize {
		if err := fillJournal(f, info.Size()); err != nil {
			f.Close()
			return nil, fmt.Errorf("make journal %s: %w", path, err)
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &journal{f: f, epoch: epoch}, nil
}

// fillJournal gives f journalSize bytes, zeros past what it holds, and
// syncs it.
func fillJournal(f *os.File, size int64) error {
	if size > journalSize {
		if err := f.Truncate(journalSize); err != nil {
			return err
		}
		size = journalSize
	}
	zeros := make([]byte, 1<<20)
	for off := size; off < journalSize; {
		n, err := f.WriteAt(zeros[:min(int64(len(zeros)), journalSize-off)], off)
		if err != nil {
			return err
		}
		off += int64(n)
	}
	return f.Sync()
}

// restart makes the journal write generation gen from offset 0.
func (j *journal) restart(gen uint64) {
	j.gen, j.off, j.broken = gen, 0, false
}

// append writes a record of entries, the latest of which has sequence
// number last, at the journal's end and syncs it. It returns
// errJournalFull, writing nothing, when the record does not fit.
func (j *journal) append(last uint64, entries []journalEntry) error {
	if j.broken {
		return errors.New("journal: an earlier write failed and no checkpoint has followed")
	}
	b := j.buf[:0]
	b = append(b, make([]byte, 8)...) // length and CRC, below
	b = binary.BigEndian.AppendUint64(b, j.gen)
	b = binary.BigEndian.AppendUint64(b, last)
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = append(b, byte(len(e.key)))
		b = append(b, e.key...)
		b = append(b, byte(len(e.value)))
		b = append(b, e.value...)
		b = binary.BigEndian.AppendUint64(b, e.expiresAt)
	}
	j.buf = b
	if j.off+int64(len(b)) > journalSize {
		return errJournalFull
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-8))
	binary.BigEndian.PutUint32(b[4:], journalCRC(j.epoch, b[8:]))
	if _, err := j.f.WriteAt(b, j.off); err != nil {
		j.broken = true
		return fmt.Errorf("write journal: %w", err)
	}
	if err := datasync(j.f); err != nil {
		j.broken = true
		return fmt.Errorf("sync journal: %w", err)
	}
	j.off += int64(len(b))
	j.syncs++
	return nil
}

func (j *journal) close() error { return j.f.Close() }

func journalCRC(epoch [16]byte, body []byte) uint32 {
	return crc32.Update(crc32.Checksum(epoch[:], crc32c), crc32c, body)
}

// readJournal returns the records of generation gen in the journal at
// path, in the order written, with increasing sequence numbers. It returns
// an error wrapping fs.ErrNotExist when the file is missing, and one that
// says so when the journal was damaged between two of its records.
func readJournal(path string, epoch [16]byte, gen uint64) ([]journalRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, journalSize))
	if err != nil {
		return nil, err
	}
	var recs []journalRecord
	off, prev := 0, uint64(0)
	for {
		rec, n, ok := decodeJournalRecord(data[off:], epoch, gen)
		if !ok {
			break
		}
		if rec.last <= prev {
			return nil, fmt.Errorf("journal %s: record at offset %d has sequence number %d, not after %d", path, off, rec.last, prev)
		}
		recs = append(recs, rec)
		prev, off = rec.last, off+n
	}
	// The record that ends the journal may be torn or zeros; past it, by
	// the length it claims, a valid record of this generation cannot be.
	if rest := data[off:]; len(rest) >= 4 {
		if n := 8 + int(binary.BigEndian.Uint32(rest)); n > 8 && n < len(rest) {
			if _, _, ok := decodeJournalRecord(rest[n:], epoch, gen); ok {
				return nil, fmt.Errorf("journal %s: the record at offset %d is damaged, and records follow it", path, off)
			}
		}
	}
	return recs, nil
}

// decodeJournalRecord decodes the record at the start of b if it is whole,
// of generation gen, and of the store with this epoch; n is its length.
func decodeJournalRecord(b []byte, epoch [16]byte, gen uint64) (rec journalRecord, n int, ok bool) {
	if len(b) < journalFixed {
		return rec, 0, false
	}
	n = 8 + int(binary.BigEndian.Uint32(b))
	if n < journalFixed || n > len(b) {
		return rec, 0, false
	}
	body := b[8:n]
	if journalCRC(epoch, body) != binary.BigEndian.Uint32(b[4:]) || binary.BigEndian.Uint64(body) != gen {
		return rec, 0, false
	}
	rec.last = binary.BigEndian.Uint64(body[8:])
	count := binary.BigEndian.Uint32(body[16:])
	p := body[20:]
	field := func() ([]byte, bool) {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return nil, false
		}
		v := p[1 : 1+int(p[0])]
		p = p[1+int(p[0]):]
		return v, true
	}
	for range count {
		key, ok1 := field()
		value, ok2 := field()
		if !ok1 || !ok2 || len(p) < 8 {
			return journalRecord{}, 0, false
		}
		rec.entries = append(rec.entries, journalEntry{key: key, value: value, expiresAt: binary.BigEndian.Uint64(p)})
		p = p[8:]
	}
	if len(p) != 0 {
		return journalRecord{}, 0, false
	}
	return rec, n, true
}
