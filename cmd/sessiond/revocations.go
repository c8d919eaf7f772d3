package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sessiond/sessiond/revocation"
)

const revocationsUsage = `Usage:
  sessiond revocations reset [--data-dir DIR] --yes
  sessiond revocations new-epoch [--data-dir DIR]
  sessiond revocations export [--data-dir DIR] > FILE
  sessiond revocations import [--revocation-store URL | --data-dir DIR] < FILE

reset:

Sets the revocation list in DATA_DIR/revocations aside (renamed with a
".discarded-TIME" suffix, not deleted) so that the next "sessiond serve"
starts with an empty one. This forgets every closed session: a session that
was closed and has not expired yet verifies again. It is the way out when the
server refuses a damaged or missing revocation list and there is no backup to
restore; to log everyone out instead, also rotate and remove the signing keys
(README, "Backup and restore"). The server must be stopped.

Without --yes it only says what it would throw away.

new-epoch:
Gives the revocation list a new epoch, keeping every entry. Run it after
restoring a data dir from a backup: offline verifiers that hold a newer copy
of the list would otherwise refuse the restored, older one as a replay and
fail closed; with a new epoch they take a fresh snapshot at their next sync.
The server must be stopped.

export:
Writes the live revocations and subject cutoffs of the Badger list in
DATA_DIR/revocations to stdout, one JSON object a line:
  {"jti":"UUID","until":UNIX}                 a closed session, until its record expires
  {"cutoff":"HEX","at":UNIX,"until":UNIX}     close_all_sessions of the subject whose
                                              SHA-256 is HEX, at the second at
It opens the list with the server's checks (a damaged one is refused) and
changes no record. The server must be stopped.

import:
Reads what export wrote from stdin into the store --revocation-store names
(as for serve: "badger", the default, is the Badger list under --data-dir;
redis://... a Valkey or Redis store, which may be in use), keeping every
expiry. Every line is checked before anything is written: a bad one is
refused with its line number. Subject cutoffs are imported too, each with
its cutoff and expiry (by the subject's hash, as export wrote it);
--skip-cutoffs leaves them out. Importing twice is
harmless. To move from Badger to Valkey: stop the server, export, import
with --revocation-store redis://..., start the nodes on Valkey.
`

func revocationsCommand(args []string, stdout, stderr io.Writer) error {
	return dispatch("sessiond revocations", revocationsUsage, args, stdout, stderr, map[string]subcommand{
		"reset":     revocationsReset,
		"new-epoch": revocationsNewEpoch,
		"export":    revocationsExport,
		"import":    revocationsImport,
	})
}

func revocationsReset(args []string, stdout, stderr io.Writer) error {
	var c config
	fs := newFlagSet("sessiond revocations reset", revocationsUsage, stderr)
	c.lifecycleFlags(fs)
	yes := fs.Bool("yes", false, "really set the revocation list aside")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessiond revocations reset: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if err := c.check(); err != nil {
		return err
	}
	if !*yes {
		fmt.Fprintf(stderr, "sessiond revocations reset: this sets %s aside and forgets every closed session in it:\n"+
			"sessions that were closed and have not expired would verify again.\n"+
			"Run it again with --yes to do it.\n", c.storeDir())
		return exitCode(1)
	}
	d, err := revocation.Discard(c.storeDir())
	if errors.Is(err, revocation.ErrLocked) {
		return fmt.Errorf("%w: stop the server first", err)
	}
	if err != nil {
		return err
	}
	if d.Dir == "" && d.Seal == "" && d.Journal == "" {
		fmt.Fprintf(stdout, "no revocation list in %s: nothing to reset\n", c.dataDir)
		return nil
	}
	fmt.Fprintf(stdout, "revocation list set aside (%d acknowledged writes forgotten):\n", d.Acknowledged)
	for _, p := range []string{d.Dir, d.Seal, d.Journal} {
		if p != "" {
			fmt.Fprintf(stdout, "  %s\n", p)
		}
	}
	fmt.Fprintln(stdout, "the next \"sessiond serve\" starts with an empty list")
	return nil
}

func revocationsNewEpoch(args []string, stdout, stderr io.Writer) error {
	var c config
	fs := newFlagSet("sessiond revocations new-epoch", revocationsUsage, stderr)
	c.lifecycleFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessiond revocations new-epoch: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if err := c.check(); err != nil {
		return err
	}
	if _, err := os.Stat(c.storeDir()); err != nil {
		return fmt.Errorf("no revocation list at %s: check --data-dir", c.storeDir())
	}
	err := revocation.RenewEpoch(c.storeDir(), revocation.Options{Retention: c.leeway})
	if errors.Is(err, revocation.ErrLocked) {
		return fmt.Errorf("%w: stop the server first", err)
	}
	if err != nil {
		return storeError(err, &c)
	}
	fmt.Fprintln(stdout, "the revocation list has a new epoch: offline verifiers take a fresh snapshot at their next sync")
	return nil
}

// storeError explains a revocation store that cannot be opened: what it
// means and what to do.
func storeError(err error, c *config) error {
	switch {
	case errors.Is(err, revocation.ErrDamaged), errors.Is(err, revocation.ErrMissing):
		return fmt.Errorf("%w\n\nThe revocation list on disk is not the one this data dir acknowledged closed sessions to; "+
			"serving from it would let closed sessions verify again, so sessiond refuses and has changed nothing.\n"+
			"Restore the data dir from a backup (README, \"Backup and restore\"), or start with an empty list, "+
			"which lets every closed session that has not expired verify again:\n"+
			"  sessiond revocations reset --data-dir %s --yes", err, c.dataDir)
	case errors.Is(err, revocation.ErrDiskFull):
		return fmt.Errorf("%w\n\nFree disk space on the file system of %s, or move --data-dir to a larger one "+
			"(README, \"Disk space\")", err, c.dataDir)
	}
	return err
}
