package main

// This file is --keys-file: the key file outside the data dir, which
// several nodes may share.

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// keyFileFlag registers --keys-file, for serve and every key command.
func (c *config) keyFileFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.keysFile, "keys-file", "", "the key file (default <data-dir>/keys.json); several nodes may share one, each re-reads it every 2s, and the key commands change it under its lock")
}

// checkKeyDir checks, when --keys-file is given, that the key file's
// directory exists and that nobody but its owner can write to it: whoever
// can would be able to put a key file of their own in place. (The data
// dir, which holds the default key file, is checked by makeDataDir.) It
// writes nothing.
func (c *config) checkKeyDir() error {
	if c.keysFile == "" {
		return nil
	}
	dir := filepath.Dir(c.keysFile)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the directory %s of --keys-file %s does not exist: create it (mkdir -m 700 %s), or check --keys-file (or SESSIOND_KEYS_FILE)", dir, c.keysFile, dir)
	case err != nil:
		return fmt.Errorf("--keys-file: %w", err)
	case !info.IsDir():
		return fmt.Errorf("--keys-file %s: %s is not a directory: check --keys-file (or SESSIOND_KEYS_FILE)", c.keysFile, dir)
	}
	if perm := info.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("the directory %s of --keys-file has mode %04o: others could replace the key file in it; run chmod go-w %s", dir, perm, dir)
	}
	return nil
}

// makeKeyDir is keys init's check and creation of the key file's
// directory: the data dir (makeDataDir), or the directory of --keys-file,
// created with mode 0700 if missing and checked by checkKeyDir. It refuses
// a key file that exists already.
func makeKeyDir(c *config) error {
	if info, err := os.Lstat(c.keyFile()); err == nil && info.Mode().IsRegular() {
		if c.keysFile != "" {
			return fmt.Errorf("key file %s exists already: add a key with sessiond keys rotate --keys-file %s", c.keysFile, c.keysFile)
		}
		return fmt.Errorf("data dir %s already holds a key file (keys.json): add a key with sessiond keys rotate --data-dir %s", c.dataDir, c.dataDir)
	}
	if c.keysFile == "" {
		return makeDataDir(c.dataDir)
	}
	if err := os.MkdirAll(filepath.Dir(c.keysFile), 0o700); err != nil {
		return fmt.Errorf("--keys-file: %w", err)
	}
	return c.checkKeyDir()
}
