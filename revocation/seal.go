package revocation

// This file is the seal: the small file beside a store that records which
// store its directory must hold and how much of it was acknowledged, so
// that a missing, replaced or rolled-back store is refused.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// The seal is a small file beside the store's directory (dir + ".seal") that
// records which store the directory must hold and how much of it was
// acknowledged: the store's epoch and the sequence number of the latest
// write that Revoke reported durable. It is what lets [OpenBadger] tell a
// damaged, truncated, replaced or deleted store from a good one, since a
// Badger directory that lost its MANIFEST, its memtable or all of its files
// opens without complaint and simply knows fewer revocations.
//
// The file holds two slots of sealSlotSize bytes. Each write goes to the
// slot the previous one did not use, in place (the file never changes size,
// so the write needs no new disk blocks and cannot fail for lack of space),
// and is fsynced; the valid slot with the higher generation wins. A write
// torn by a crash therefore leaves the other slot, the previous seal, intact.
//
// Slot layout, big-endian: magic (8 bytes), generation (8), epoch (16),
// checkpointed sequence number (8), journal generation (8), CRC-32C of
// the preceding 48 bytes (4), zero padding to 64 bytes. A slot of the
// first format (magic SDSEAL01, written before the journal) has no journal
// generation and its CRC covers 40 bytes; it is read as journal
// generation 0, no journal.
//
// The sequence number is a checkpoint: every write up to it is synced in
// Badger itself; the acknowledged writes after it are in the journal
// (journal.go) of the recorded generation, which OpenBadger replays before
// it holds the store against the seal.

const (
	sealMagic    = "SDSEAL02"
	sealMagicV1  = "SDSEAL01"
	sealSlotSize = 64
	sealBodySize = 8 + 8 + 16 + 8 + 8
	sealBodyV1   = 8 + 8 + 16 + 8
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// sealPath returns the seal file of the store in dir.
func sealPath(dir string) string {
	return filepath.Clean(dir) + ".seal"
}

// sealState is what a seal records.
type sealState struct {
	epoch [16]byte
	// seq is the latest checkpointed sequence number: Badger holds every
	// write up to it, synced.
	seq uint64
	// jgen is the generation of the journal records that hold the writes
	// acknowledged since; 0 means no journal.
	jgen uint64
}

// seal is an open seal file. Only one goroutine writes it at a time.
type seal struct {
	f     *os.File
	gen   uint64
	state sealState
	// writes counts the seal writes since open, for the benchmarks
	// (sealer only; read after Close).
	writes int
}

// errNoSeal reports that the seal file does not exist.
var errNoSeal = errors.New("no seal file")

// openSeal opens and reads the seal at path. It returns an error wrapping
// errNoSeal when the file does not exist.
func openSeal(path string) (*seal, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, errNoSeal)
	}
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 2*sealSlotSize)
	n, err := f.ReadAt(buf, 0)
	if n < len(buf) {
		f.Close()
		return nil, fmt.Errorf("seal %s is %d bytes long, not %d: it is damaged", path, n, len(buf))
	}
	_ = err // a full read may report io.EOF
	s := &seal{f: f}
	found := false
	for i := range 2 {
		gen, st, ok := decodeSealSlot(buf[i*sealSlotSize : (i+1)*sealSlotSize])
		if ok && (!found || gen > s.gen) {
			s.gen, s.state, found = gen, st, true
		}
	}
	if !found {
		f.Close()
		return nil, fmt.Errorf("seal %s holds no valid record: it is damaged", path)
	}
	return s, nil
}

// createSeal writes a new seal file at path holding st, fsynced along with
// its directory. It fails if the file exists.
func createSeal(path string, st sealState) (*seal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	s := &seal{f: f}
	buf := make([]byte, 2*sealSlotSize)
	encodeSealSlot(buf[:sealSlotSize], 1, st)
	encodeSealSlot(buf[sealSlotSize:], 0, st)
	if _, err := f.WriteAt(buf, 0); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	s.gen, s.state = 1, st
	return s, nil
}

// write records st in the slot the latest record is not in, and fsyncs.
func (s *seal) write(st sealState) error {
	gen := s.gen + 1
	var slot [sealSlotSize]byte
	encodeSealSlot(slot[:], gen, st)
	if _, err := s.f.WriteAt(slot[:], int64(gen%2)*sealSlotSize); err != nil {
		return fmt.Errorf("write seal: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync seal: %w", err)
	}
	s.gen, s.state = gen, st
	s.writes++
	return nil
}

func (s *seal) close() error { return s.f.Close() }

func encodeSealSlot(b []byte, gen uint64, st sealState) {
	clear(b)
	copy(b, sealMagic)
	binary.BigEndian.PutUint64(b[8:], gen)
	copy(b[16:32], st.epoch[:])
	binary.BigEndian.PutUint64(b[32:], st.seq)
	binary.BigEndian.PutUint64(b[40:], st.jgen)
	binary.BigEndian.PutUint32(b[sealBodySize:], crc32.Checksum(b[:sealBodySize], crc32c))
}

func decodeSealSlot(b []byte) (gen uint64, st sealState, ok bool) {
	body := sealBodySize
	switch string(b[:8]) {
	case sealMagic:
	case sealMagicV1:
		body = sealBodyV1
	default:
		return 0, st, false
	}
	if crc32.Checksum(b[:body], crc32c) != binary.BigEndian.Uint32(b[body:]) {
		return 0, st, false
	}
	gen = binary.BigEndian.Uint64(b[8:])
	copy(st.epoch[:], b[16:32])
	st.seq = binary.BigEndian.Uint64(b[32:])
	if body == sealBodySize {
		st.jgen = binary.BigEndian.Uint64(b[40:])
	}
	return gen, st, true
}

// syncDir fsyncs a directory, so that a file created in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// match reports, as an error wrapping ErrDamaged, how the store in dir,
// with the raw epoch record read from it (nil when absent) and its sequence
// number, differs from what the seal records; nil when it does not.
func (s *seal) match(dir string, epoch []byte, seq uint64) error {
	switch {
	case epoch == nil:
		return fmt.Errorf("%w: its epoch record is missing", ErrDamaged)
	case len(epoch) != 16 || [16]byte(epoch) != s.state.epoch:
		return fmt.Errorf("%w: the directory holds another store (epoch %s) than %s records (epoch %s)", ErrDamaged, epochString(epoch), sealPath(dir), epochString(s.state.epoch[:]))
	case seq < s.state.seq:
		return fmt.Errorf("%w: it holds writes up to number %d, but %d were acknowledged (%s): files were lost or damaged", ErrDamaged, seq, s.state.seq, sealPath(dir))
	}
	return nil
}
