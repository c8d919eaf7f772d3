package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond/keys"
	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/session"
)

// config is what the flags and the environment set.
type config struct {
	listen       string
	dataDir      string
	issuer       string
	maxExpiresIn time.Duration
	leeway       time.Duration
	jwksMaxAge   time.Duration
	keysFile     string // --keys-file; "" is <data-dir>/keys.json (see keyFile)
}

// defaultDataDir follows the XDG base-directory convention for state:
// $XDG_STATE_HOME/sessiond, else $HOME/.local/state/sessiond. A relative
// value of either variable is ignored (as the XDG specification says of
// XDG_STATE_HOME), and without a usable one there is no default: "", which
// check refuses, rather than a directory relative to wherever the command
// happens to run.
func defaultDataDir() string {
	if dir := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "sessiond")
	}
	if home, err := os.UserHomeDir(); err == nil && filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "sessiond")
	}
	return ""
}

// errNoDataDir says how to give a data dir when there is no default.
var errNoDataDir = errors.New("no data dir: set --data-dir (or SESSIOND_DATA_DIR), or HOME or XDG_STATE_HOME (absolute paths) for the default $XDG_STATE_HOME/sessiond, else $HOME/.local/state/sessiond")

// lifecycleFlags registers the settings that the key commands share with
// serve, so that one environment configures both.
func (c *config) lifecycleFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "directory for the signing keys and the revocation list (created with mode 0700); the default is $XDG_STATE_HOME/sessiond, else $HOME/.local/state/sessiond, and without either variable there is none: it must be given")
	fs.DurationVar(&c.maxExpiresIn, "max-expires-in", session.DefaultMaxExpiresIn, "longest session lifetime open_session grants, in whole seconds; when it is under 30 days, expires_in null or absent grants it instead of 30 days")
	fs.DurationVar(&c.leeway, "leeway", 0, "clock skew allowed when checking exp and iat")
	fs.DurationVar(&c.jwksMaxAge, "jwks-max-age", 5*time.Minute, "how long verifiers may cache the published keys; also how long a new key waits before it signs")
}

func (c *config) policy() keys.Policy {
	return keys.Policy{MaxTokenLifetime: c.maxExpiresIn, Leeway: c.leeway, PropagationDelay: c.jwksMaxAge}
}

// keyReloadInterval is how often a running server re-reads the key file.
const keyReloadInterval = server.DefaultKeyReloadInterval

// makeDataDir creates the data dir with mode 0700, and refuses one that
// others can enter, as the server does.
func makeDataDir(dir string) error { return server.MakeDataDir(dir) }

// given reports whether the flag name was set, on the command line or from
// the environment.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// keyFile is the key file: --keys-file, else keys.json in the data dir.
func (c *config) keyFile() string {
	if c.keysFile != "" {
		return c.keysFile
	}
	return filepath.Join(c.dataDir, "keys.json")
}

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
// variable (SESSIOND_ and the flag name in upper case, - as _). Flags may
// come before or after the positional arguments (`keys remove KID
// --data-dir D`); after -- every word is an argument. A bad flag prints one
// line that says what is wrong (for a duration, what one looks like) and
// how to see the flags, not the whole usage.
func parse(fs *flag.FlagSet, args []string) error {
	var bad *badDuration
	restore := checkDurations(fs, &bad)
	out := fs.Output()
	fs.SetOutput(io.Discard) // the errors are explained below
	err := parseInterspersed(fs, args)
	fs.SetOutput(out)
	if err != nil {
		restore()
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.Usage()
			return err
		case bad != nil:
			fmt.Fprintf(out, "%s: invalid value %q for --%s: %v\n", fs.Name(), bad.value, bad.flag, errNotDuration)
		case strings.HasPrefix(err.Error(), "flag provided but not defined"):
			fmt.Fprintf(out, "%s: %v (%s --help lists the flags; an argument that begins with - goes after --, last: %s [flags] -- ARG)\n", fs.Name(), err, fs.Name(), fs.Name())
		default:
			fmt.Fprintf(out, "%s: %v (%s --help lists the flags)\n", fs.Name(), err, fs.Name())
		}
		return errUsage
	}
	defer restore()
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
// lifecycle settings (check), the listen address (its syntax: whether it
// can be bound shows only when the server listens), and an existing key
// file, which must be one the server can start with (a missing one is
// created later).
func (c *config) checkServe() error {
	if err := c.check(); err != nil {
		return err
	}
	if err := checkListen(c.listen); err != nil {
		return err
	}
	if err := c.checkKeyDir(); err != nil {
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
		return errNoDataDir
	case c.maxExpiresIn < time.Second:
		return fmt.Errorf("--max-expires-in must be at least 1s, not %s", c.maxExpiresIn)
	case c.leeway < 0:
		return fmt.Errorf("--leeway must not be negative, not %s", c.leeway)
	case c.jwksMaxAge < 0:
		return fmt.Errorf("--jwks-max-age must not be negative, not %s", c.jwksMaxAge)
	}
	return nil
}

// checkListen checks the syntax of a listen address, offline: host:port,
// where host is empty (every interface), an IP address (IPv6 in brackets,
// with a zone if need be) or a host name, and port is a number from 0 to
// 65535 or a service name from the system's services database.
func checkListen(addr string) error {
	bad := func(why string) error {
		return fmt.Errorf("listen address %q %s: set --listen (or SESSIOND_LISTEN) to host:port, such as 127.0.0.1:8080, [::1]:8080 or :8080 (every interface)", addr, why)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bad("is not host:port (" + strings.TrimPrefix(err.Error(), "address "+addr+": ") + ")")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		if port == "" || strings.Trim(port, "0123456789+-") == "" {
			return bad(fmt.Sprintf("has port %q, not a number from 0 to 65535", port))
		}
		if _, err := net.LookupPort("tcp", port); err != nil {
			return bad(fmt.Sprintf("has port %q, neither a number from 0 to 65535 nor a known service name", port))
		}
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostname(host) {
		return bad(fmt.Sprintf("has host %q, neither an IP address nor a host name", host))
	}
	return nil
}

// validHostname reports whether name is a DNS host name (RFC 1123): dot-
// separated labels of letters, digits and inner hyphens, at most 63 bytes
// each and 253 in all, the last not all digits (that would be a bad IPv4
// address); one final dot is allowed.
func validHostname(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// subcommand runs one command of a group (keys, clients, revocations) with
// the arguments after its name.
type subcommand func(args []string, stdout, stderr io.Writer) error

// dispatch runs the command of group prog that args name: usage to stderr
// (errUsage) when none is named or the name is unknown, to stdout for help.
func dispatch(prog, usage string, args []string, stdout, stderr io.Writer, cmds map[string]subcommand) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	if run, ok := cmds[args[0]]; ok {
		return run(args[1:], stdout, stderr)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", prog, args[0], usage)
	return errUsage
}
