package revocation

// This file checks a store's files before Badger opens them (preflight,
// checkTable), and that a copy of a store is not opened as the original
// (checkCopy).

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
)

// manifestFile is the name of Badger's MANIFEST file.
const manifestFile = "MANIFEST"

// preflight checks, without changing anything, that the Badger files in dir
// are whole before Badger opens them. Badger itself is forgiving in ways a
// revocation list cannot be: it starts a new, empty tree when the MANIFEST is
// missing and deletes every table the MANIFEST does not list, it drops a
// truncated or corrupt MANIFEST tail and with it the tables it named, and a
// truncated table makes it panic. Each of those is refused here, naming the
// file.
//
// It returns whether dir holds a store at all (any Badger file).
func preflight(dir string) (exists bool, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	tables := map[uint64]string{}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".sst"):
			id, ok := table.ParseFileID(name)
			if !ok {
				return true, fmt.Errorf("unexpected table file %s", name)
			}
			tables[id] = filepath.Join(dir, name)
			exists = true
		case name == manifestFile, strings.HasSuffix(name, ".mem"), strings.HasSuffix(name, ".vlog"):
			exists = true
		}
	}
	if !exists {
		return false, nil
	}

	mpath := filepath.Join(dir, manifestFile)
	f, err := os.Open(mpath)
	if errors.Is(err, fs.ErrNotExist) {
		return true, fmt.Errorf("%s is missing", mpath)
	}
	if err != nil {
		return true, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return true, err
	}
	m, end, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir))
	if err != nil {
		return true, fmt.Errorf("%s is unreadable: %v", mpath, err)
	}
	if end != info.Size() {
		return true, fmt.Errorf("%s is truncated or damaged after byte %d of %d", mpath, end, info.Size())
	}
	for id := range m.Tables {
		if _, ok := tables[id]; !ok {
			return true, fmt.Errorf("table %s listed in %s is missing", table.IDToFilename(id), mpath)
		}
	}
	for id, path := range tables {
		if _, ok := m.Tables[id]; !ok {
			return true, fmt.Errorf("table %s is not listed in %s (Badger would delete it)", path, mpath)
		}
		if err := checkTable(path, m.Tables[id].Compression); err != nil {
			return true, fmt.Errorf("table %s is damaged: %v", path, err)
		}
	}
	return true, nil
}

// checkTable reads one table and verifies its checksums. A truncated
// table makes Badger's reader index out of range, so a panic is turned into
// an error here. The table is read into memory, not mapped, so that nothing
// of Badger's file handling (which may delete a table whose last reference
// is dropped) is involved.
func checkTable(path string, compression options.CompressionType) (err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return errors.New("empty file")
	}
	defer func() {
		if r := recover(); r != nil {
			// Badger's panic message carries a dump of the index.
			msg, _, _ := strings.Cut(strings.TrimSpace(fmt.Sprint(r)), "\n")
			err = fmt.Errorf("unreadable (%.100s)", msg)
		}
	}()
	id, _ := table.ParseFileID(filepath.Base(path))
	t, err := table.OpenInMemoryTable(data, id, &table.Options{ChkMode: options.OnTableRead, Compression: compression, BlockSize: 4 << 10})
	if err != nil {
		return err
	}
	return t.VerifyChecksum()
}

// checkCopy opens a scratch copy of the store in dir and holds its epoch and
// sequence number against the seal sl (when there is none, the store must
// not be one that had a seal), so that a store that would fail that
// check is refused before Badger opens the real files: opening replays and
// truncates the memtable, flushes it into a table and starts a new value
// log, which would change a damaged store that is to be refused untouched.
//
// The copy lives beside dir (dir + ".check", removed afterwards). Tables are
// hard links, since Badger never changes a table file; the other files are
// copied, without the zeros that pad the memtable and value log files.
func checkCopy(dir string, sl *seal, log *slog.Logger) error {
	scratch := filepath.Clean(dir) + ".check"
	if err := os.RemoveAll(scratch); err != nil {
		return err
	}
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		src, dst := filepath.Join(dir, name), filepath.Join(scratch, name)
		switch {
		case name == "LOCK" || e.IsDir():
		case strings.HasSuffix(name, ".sst"):
			if err := os.Link(src, dst); err != nil {
				return err
			}
		default:
			if err := copySparse(src, dst); err != nil {
				return err
			}
		}
	}
	db, err := badger.Open(badgerOptions(scratch, log))
	if err != nil {
		return fmt.Errorf("%w: Badger cannot open it: %v", ErrDamaged, err)
	}
	var (
		epoch, sealedMark []byte
		seq               uint64
	)
	err = db.View(func(txn *badger.Txn) error {
		var err error
		if sealedMark, err = readRecord(txn, sealedKey); err != nil {
			return err
		}
		if epoch, err = readRecord(txn, epochKey); err != nil {
			return err
		}
		seq, err = readUint64(txn, seqKey)
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: reading it failed: %v", ErrDamaged, err)
	}
	if sl == nil {
		if sealedMark != nil {
			return fmt.Errorf("%w: its seal %s is missing", ErrDamaged, sealPath(dir))
		}
		return nil // made before seals: nothing to hold it against
	}
	return sl.match(dir, epoch, seq)
}

// copySparse copies src to dst up to its last byte that is not zero, and
// gives dst the size of src; the zeros past the data are a hole.
func copySparse(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	size := len(data)
	end := size
	for end > 0 && data[end-1] == 0 {
		end--
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data[:end]); err != nil {
		f.Close()
		return err
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
