package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond/keys"
)

const keysUsage = `Usage: sessiond keys COMMAND [flags] [args]

Manages the signing keys in DATA_DIR/keys.json, or in the file --keys-file
names (which several servers may share). The commands work while the server
runs: it picks up changes within a few seconds, or at once on SIGHUP. They
take the key file's lock, so two of them never change it at once.

Commands:
  init [--alg EdDSA|ES256|RS256]
                  create the data directory (mode 0700) and its key file
                  with a first key, active at once ("sessiond serve" does
                  the same on its first start)
  rotate [--alg EdDSA|ES256|RS256] [--activate-after D | --now]
                  add the next key; a running server publishes it within
                  2s, and it signs after the propagation delay (default:
                  those 2s + --jwks-max-age, so every verifier knows it first)
  list [--json]   every key with its state and lifecycle times
  prune           remove keys whose tokens have all expired (the server also
                  does this by itself)
  remove KID      emergency removal of a compromised key: every token it
                  signed stops verifying at once

Each takes --data-dir, --keys-file, --max-expires-in, --leeway and --jwks-max-age, from
flags or the same SESSIOND_* environment variables as "sessiond serve".
Flags may come before or after arguments; -- ends the flags. Only init creates anything:
the other commands refuse a data directory that holds no key file.
`

func keysCommand(args []string, stdout, stderr io.Writer) error {
	return dispatch("sessiond keys", keysUsage, args, stdout, stderr, map[string]subcommand{
		"init":   keysInit,
		"rotate": keysRotate,
		"list":   keysList,
		"prune":  keysPrune,
		"remove": keysRemove,
	})
}

// keysFlags parses the lifecycle flags plus whatever register adds, and
// checks the number of positional arguments.
func keysFlags(name, summary string, nargs int, args []string, stderr io.Writer, register func(*config, *flag.FlagSet)) (*config, []string, error) {
	var c config
	fs := newFlagSet("sessiond keys "+name, summary, stderr)
	c.lifecycleFlags(fs)
	c.keyFileFlag(fs)
	if register != nil {
		register(&c, fs)
	}
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() != nargs {
		fmt.Fprintf(stderr, "sessiond keys %s: want %d argument(s), have %d\n", name, nargs, fs.NArg())
		return nil, nil, errUsage
	}
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	if name != "init" {
		if err := requireKeyFile(&c); err != nil {
			return nil, nil, err
		}
	}
	return &c, fs.Args(), nil
}

// requireKeyFile checks, for every key command but init, that the data
// directory exists, is private, and holds a key file: those commands never
// create one, so that a mistyped --data-dir cannot pass for a new service.
func requireKeyFile(c *config) error {
	if c.keysFile != "" {
		if err := c.checkKeyDir(); err != nil {
			return err
		}
		if _, err := os.Lstat(c.keysFile); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("key file %s does not exist: check --keys-file (or SESSIOND_KEYS_FILE), or create it with a first key: sessiond keys init --keys-file %s", c.keysFile, c.keysFile)
		}
		return nil // anything else about the file is for keys.Load to judge
	}
	info, err := os.Stat(c.dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("data dir %s does not exist: check --data-dir (or SESSIOND_DATA_DIR), or create it with a first key: sessiond keys init --data-dir %s (sessiond serve also does on its first start)", c.dataDir, c.dataDir)
	case err != nil:
		return fmt.Errorf("data dir: %w", err)
	case !info.IsDir():
		return fmt.Errorf("data dir %s is not a directory: check --data-dir (or SESSIOND_DATA_DIR)", c.dataDir)
	}
	if err := makeDataDir(c.dataDir); err != nil { // exists: only checks its mode
		return err
	}
	if _, err := os.Lstat(c.keyFile()); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("data dir %s holds no key file (keys.json): check --data-dir (or SESSIOND_DATA_DIR), or create one with a first key: sessiond keys init --data-dir %s", c.dataDir, c.dataDir)
	}
	return nil // anything else about the file is for keys.Load to judge
}

func keysInit(args []string, stdout, stderr io.Writer) error {
	var algName string
	var bits int
	c, _, err := keysFlags("init", "Usage: sessiond keys init [flags]\n\nCreates the data directory and its key file with a first signing key, active at once.", 0, args, stderr, func(c *config, fs *flag.FlagSet) {
		fs.StringVar(&algName, "alg", string(keys.EdDSA), "algorithm of the first key: EdDSA, ES256 or RS256")
		fs.IntVar(&bits, "rsa-bits", keys.DefaultRSABits, "RSA modulus size, 2048 to 4096")
	})
	if err != nil {
		return err
	}
	alg, err := keys.ParseAlgorithm(algName)
	if err != nil {
		return err
	}
	if err := makeKeyDir(c); err != nil {
		return err
	}
	first, err := keys.Generate(alg, bits, time.Now(), time.Now())
	if err != nil {
		return err
	}
	first, err = keys.Init(c.keyFile(), first)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists already (not as a regular file): move it away, or point --data-dir at the data dir it belongs to", c.keyFile())
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s with %s key %s, active at once\n", c.keyFile(), first.Algorithm, first.ID)
	return nil
}

func keysRotate(args []string, stdout, stderr io.Writer) error {
	var algName string
	var after time.Duration
	var now bool
	var bits int
	c, _, err := keysFlags("rotate", "Usage: sessiond keys rotate [flags]\n\nAdds the next signing key.", 0, args, stderr, func(c *config, fs *flag.FlagSet) {
		fs.StringVar(&algName, "alg", string(keys.EdDSA), "algorithm of the new key: EdDSA, ES256 or RS256")
		fs.DurationVar(&after, "activate-after", -1, "delay before the key signs (default: --jwks-max-age plus the server's key reload interval, so every verifier knows it first)")
		fs.BoolVar(&now, "now", false, "activate at once (verifiers that cached the key set may reject new tokens until they refresh)")
		fs.IntVar(&bits, "rsa-bits", keys.DefaultRSABits, "RSA modulus size, 2048 to 4096")
	})
	if err != nil {
		return err
	}
	alg, err := keys.ParseAlgorithm(algName)
	if err != nil {
		return err
	}
	switch {
	case now && after >= 0:
		return errors.New("--now and --activate-after exclude each other")
	case now:
		after = 0
	case after < 0:
		after = c.policy().ActivationDelay()
	}
	// Generate first (an RSA key takes a while); keys.Rotate sets the times
	// under the file's lock.
	added, err := keys.Generate(alg, bits, time.Now(), time.Now())
	if err != nil {
		return err
	}
	if added, err = keys.Rotate(c.keyFile(), added, after); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s key %s\nit signs new tokens from %s (in %s)\n",
		added.Algorithm, added.ID, added.Activates().Format(time.RFC3339), time.Until(added.Activates()).Round(time.Second))
	return nil
}

// keyInfo is one row of `keys list`.
type keyInfo struct {
	ID        string     `json:"kid"`
	Algorithm string     `json:"alg"`
	State     keys.State `json:"state"`
	Created   time.Time  `json:"created"`
	Activates time.Time  `json:"activates"`
	Retires   *time.Time `json:"retires"`
	Expires   *time.Time `json:"expires"`
}

func keysList(args []string, stdout, stderr io.Writer) error {
	var asJSON bool
	c, _, err := keysFlags("list", "Usage: sessiond keys list [flags]\n\nLists the signing keys.", 0, args, stderr, func(c *config, fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, `print {"keys": [...]} as JSON`)
	})
	if err != nil {
		return err
	}
	s, err := keys.Load(c.keyFile())
	if err != nil {
		return err
	}
	now := time.Now()
	infos := []keyInfo{}
	for _, k := range s.Keys() {
		lc := s.Lifecycle(k, now, c.policy())
		info := keyInfo{ID: k.ID, Algorithm: string(k.Algorithm), State: lc.State, Created: k.Created(), Activates: k.Activates()}
		if !lc.Retires.IsZero() {
			info.Retires, info.Expires = &lc.Retires, &lc.Expires
		}
		infos = append(infos, info)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"keys": infos})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tACTIVATES\tRETIRES\tEXPIRES")
	stamp := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	for _, k := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State,
			stamp(&k.Created), stamp(&k.Activates), stamp(k.Retires), stamp(k.Expires))
	}
	return tw.Flush()
}

func keysPrune(args []string, stdout, stderr io.Writer) error {
	c, _, err := keysFlags("prune", "Usage: sessiond keys prune [flags]\n\nRemoves keys whose tokens have all expired.", 0, args, stderr, nil)
	if err != nil {
		return err
	}
	gone, err := keys.Prune(c.keyFile(), c.policy())
	if err != nil {
		return err
	}
	for _, kid := range gone {
		fmt.Fprintf(stdout, "removed expired key %s\n", kid)
	}
	if len(gone) == 0 {
		fmt.Fprintln(stdout, "no expired keys")
	}
	return nil
}

func keysRemove(args []string, stdout, stderr io.Writer) error {
	c, rest, err := keysFlags("remove", "Usage: sessiond keys remove [flags] KID\n\nRemoves a key at once: every token it signed stops verifying.", 1, args, stderr, nil)
	if err != nil {
		return err
	}
	if err := keys.Remove(c.keyFile(), rest[0]); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed key %s; a running server stops accepting its tokens within a few seconds (at once on SIGHUP)\n", rest[0])
	return nil
}
