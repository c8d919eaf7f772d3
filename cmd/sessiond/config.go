package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/rpc"
)

// config is what the flags and the environment set.
type config struct {
	listen       string
	dataDir      string
	issuer       string
	maxExpiresIn time.Duration
	leeway       time.Duration
	jwksMaxAge   time.Duration
}

// defaultDataDir follows the XDG base-directory convention for state.
func defaultDataDir() string {
	if dir := os.Getenv("XDG_STATE_HOME"); dir != "" {
		return filepath.Join(dir, "sessiond")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "sessiond")
	}
	return "sessiond-data"
}

// lifecycleFlags registers the settings that the key commands share with
// serve, so that one environment configures both.
func (c *config) lifecycleFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "directory for the signing keys and the revocation list (created with mode 0700)")
	fs.DurationVar(&c.maxExpiresIn, "max-expires-in", rpc.DefaultMaxExpiresIn, "longest session lifetime open_session grants, in whole seconds; when it is under 30 days, expires_in null or absent grants it instead of 30 days")
	fs.DurationVar(&c.leeway, "leeway", 0, "clock skew allowed when checking exp and iat")
	fs.DurationVar(&c.jwksMaxAge, "jwks-max-age", 5*time.Minute, "how long verifiers may cache the published keys; also how long a new key waits before it signs")
}

func (c *config) policy() keys.Policy {
	return keys.Policy{MaxTokenLifetime: c.maxExpiresIn, Leeway: c.leeway, PropagationDelay: c.jwksMaxAge}
}

func (c *config) keyFile() string { return filepath.Join(c.dataDir, "keys.json") }

func (c *config) storeDir() string { return filepath.Join(c.dataDir, "revocations") }

// newFlagSet returns a flag set whose -help prints summary and the flags.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags (each also read from SESSIOND_<FLAG>, a flag wins over the environment):\n", summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, then fills every flag not given from its environment
// variable (SESSIOND_ and the flag name in upper case, - as _).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // the flag package has explained
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "SESSIOND_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid %s=%q: %v", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// checkServe validates what serve needs, before it writes anything: the
// lifecycle settings (check) and an existing key file, which must be one
// the server can start with (a missing one is created later).
func (c *config) checkServe() error {
	if err := c.check(); err != nil {
		return err
	}
	if _, err := os.Lstat(c.keyFile()); !errors.Is(err, fs.ErrNotExist) {
		if err := keys.Check(c.keyFile(), time.Now()); err != nil {
			return fmt.Errorf("open signing keys: %w", err)
		}
	}
	return nil
}

// check validates the lifecycle settings.
func (c *config) check() error {
	switch {
	case c.dataDir == "":
		return errors.New("--data-dir must not be empty")
	case c.maxExpiresIn < time.Second:
		return fmt.Errorf("--max-expires-in must be at least 1s, not %s", c.maxExpiresIn)
	case c.leeway < 0:
		return fmt.Errorf("--leeway must not be negative, not %s", c.leeway)
	case c.jwksMaxAge < 0:
		return fmt.Errorf("--jwks-max-age must not be negative, not %s", c.jwksMaxAge)
	}
	return nil
}
