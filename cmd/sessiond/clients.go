package main

// This file is the callers' credentials on the command line: the clients
// command (add, list, remove) and serve's flags for credentials and TLS.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond/clients"
	"github.com/sessiond/sessiond/server"
)

const clientsUsage = `Usage: sessiond clients COMMAND [flags] [args]

Manages who may call the session API: the callers' credentials in
DATA_DIR/clients.json (or --clients-file). While the file holds a client,
every JSON-RPC request needs a client's secret (Authorization: Bearer
SECRET) and each method its permission. A running server picks up changes
within a few seconds, or at once on SIGHUP.

Commands:
  add NAME --allow PERMISSIONS
                  add a client and print its new secret on stdout, once
                  (only its SHA-256 is stored). PERMISSIONS is a comma-
                  separated list of: open (session.open_session), close
                  (close_session, close_all_sessions), verify
                  (verify_session_token, introspect_session_token).
                  NAME: 1 to 64 of a-z 0-9 . - _, beginning with a letter
                  or a digit; with --tls-client-ca, a client certificate's
                  CN or DNS name
  list [--json]   every client's name, permissions and creation time
                  (never a secret)
  remove NAME     remove a client: its secret stops working at the
                  server's next reload

Each takes --data-dir and --clients-file (SESSIOND_DATA_DIR,
SESSIOND_CLIENTS_FILE), as "sessiond serve" does. Flags may come before or
after NAME.
`

func clientsCommand(args []string, stdout, stderr io.Writer) error {
	return dispatch("sessiond clients", clientsUsage, args, stdout, stderr, map[string]subcommand{
		"add":    clientsAdd,
		"list":   clientsList,
		"remove": clientsRemove,
	})
}

// clientsConfig is where the clients commands find the clients file.
type clientsConfig struct {
	dataDir     string
	clientsFile string
}

func (c *clientsConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "directory whose clients.json holds the clients (unless --clients-file)")
	fs.StringVar(&c.clientsFile, "clients-file", "", "the clients file, to share one between servers (default DATA_DIR/clients.json)")
}

// path returns the clients file's path. For add (create), it makes the
// data directory (mode 0700) when that is where the file goes; a
// --clients-file's directory must exist.
func (c *clientsConfig) path(create bool) (string, error) {
	if c.clientsFile != "" {
		if info, err := os.Stat(filepath.Dir(c.clientsFile)); err != nil || !info.IsDir() {
			return "", fmt.Errorf("--clients-file %s: the directory %s does not exist: create it (mode 0700) or give another path", c.clientsFile, filepath.Dir(c.clientsFile))
		}
		return c.clientsFile, nil
	}
	if c.dataDir == "" {
		return "", errNoDataDir
	}
	if create {
		if err := makeDataDir(c.dataDir); err != nil {
			return "", err
		}
	} else if _, err := os.Stat(c.dataDir); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("data dir %s does not exist: check --data-dir (or SESSIOND_DATA_DIR), or --clients-file", c.dataDir)
	}
	return filepath.Join(c.dataDir, clients.FileName), nil
}

// parseInterleaved parses args with fs (then the environment, see parse),
// allowing flags after the positional arguments too (add NAME --allow
// ...), and checks that there are nargs of those.
func parseInterleaved(fs *flag.FlagSet, name string, nargs int, args []string, stderr io.Writer) ([]string, error) {
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	var pos []string
	for fs.NArg() > 0 {
		rest := fs.Args()
		pos = append(pos, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
	}
	if len(pos) != nargs {
		fmt.Fprintf(stderr, "sessiond clients %s: want %d argument(s), have %d (%q)\n", name, nargs, len(pos), pos)
		return nil, errUsage
	}
	return pos, nil
}

func clientsAdd(args []string, stdout, stderr io.Writer) error {
	var c clientsConfig
	fs := newFlagSet("sessiond clients add", "Usage: sessiond clients add NAME --allow open,close,verify [flags]\n\nAdds a client and prints its new secret on stdout, once.", stderr)
	c.flags(fs)
	allow := fs.String("allow", "", "comma-separated permissions: open, close, verify (required)")
	pos, err := parseInterleaved(fs, "add", 1, args, stderr)
	if err != nil {
		return err
	}
	name := pos[0]
	if err := clients.ValidName(name); err != nil {
		return err
	}
	if *allow == "" {
		return fmt.Errorf("--allow is required: the permissions of %s, a comma-separated list of open, close and verify (e.g. sessiond clients add %s --allow verify)", name, name)
	}
	perms, err := clients.ParsePermissions(*allow)
	if err != nil {
		return err
	}
	path, err := c.path(true)
	if err != nil {
		return err
	}
	secret, err := clients.Add(path, name, perms, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret.Reveal())
	fmt.Fprintf(stderr, "added client %s (allowed: %s) to %s.\nIts secret is above, shown this once and stored nowhere: callers send it as the header\nAuthorization: Bearer SECRET. A running server picks the client up within a few seconds.\n",
		name, permList(perms), path)
	return nil
}

func permList(perms []clients.Permission) string {
	s := make([]string, len(perms))
	for i, p := range perms {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

func clientsList(args []string, stdout, stderr io.Writer) error {
	var c clientsConfig
	fs := newFlagSet("sessiond clients list", "Usage: sessiond clients list [--json] [flags]\n\nLists every client's name, permissions and creation time.", stderr)
	c.flags(fs)
	asJSON := fs.Bool("json", false, "print JSON only")
	if _, err := parseInterleaved(fs, "list", 0, args, stderr); err != nil {
		return err
	}
	path, err := c.path(false)
	if err != nil {
		return err
	}
	set, err := clients.Load(path)
	if err != nil {
		return err
	}
	if *asJSON {
		type entry struct {
			Name    string               `json:"name"`
			Allow   []clients.Permission `json:"allow"`
			Created time.Time            `json:"created"`
		}
		list := []entry{}
		for _, cl := range set.Clients() {
			list = append(list, entry{cl.Name, cl.Allow, cl.Created})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if set.Len() == 0 {
		fmt.Fprintf(stderr, "no clients in %s: every caller is unauthenticated (on loopback only, unless --insecure-allow-unauthenticated); add one with sessiond clients add NAME --allow open,close,verify\n", path)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tALLOW\tCREATED")
	for _, cl := range set.Clients() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cl.Name, permList(cl.Allow), cl.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

func clientsRemove(args []string, stdout, stderr io.Writer) error {
	var c clientsConfig
	fs := newFlagSet("sessiond clients remove", "Usage: sessiond clients remove NAME [flags]\n\nRemoves a client; its secret stops working at the server's next reload.", stderr)
	c.flags(fs)
	pos, err := parseInterleaved(fs, "remove", 1, args, stderr)
	if err != nil {
		return err
	}
	path, err := c.path(false)
	if err != nil {
		return err
	}
	if err := clients.Remove(path, pos[0]); err != nil {
		return err
	}
	set, _ := clients.Load(path)
	fmt.Fprintf(stdout, "removed client %s from %s\n", pos[0], path)
	if set.Len() == 0 {
		fmt.Fprintln(stderr, "that was the last client: a server on loopback (or with --insecure-allow-unauthenticated) now lets every caller in; one on another address lets nobody in")
	}
	return nil
}

// authFlags registers serve's flags for callers' credentials and TLS.
func (c *serveConfig) authFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ClientsFile, "clients-file", "", "callers' credentials file (sessiond clients), to share one between servers (default DATA_DIR/clients.json)")
	fs.BoolVar(&c.AllowUnauthenticated, "insecure-allow-unauthenticated", false, "serve an address other than loopback with no client configured, letting anyone who can reach it open and close sessions")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key; re-read when it changes")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.TLSClientCAFile, "tls-client-ca", "", "PEM CA that every caller's client certificate must come from (mutual TLS); its CN or a DNS name names the client in the clients file")
}

// checkAuth checks serve's credential and TLS flags, offline.
func (c *serveConfig) checkAuth() error {
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return errors.New("--tls-cert and --tls-key (SESSIOND_TLS_CERT, SESSIOND_TLS_KEY) go together: give both the certificate and its private key, or neither for plain HTTP")
	case c.TLSClientCAFile != "" && c.TLSCertFile == "":
		return errors.New("--tls-client-ca needs TLS: give --tls-cert and --tls-key too")
	}
	return nil
}

// authError adds to a refusal of the server's credential or TLS settings
// the flags and commands that fix it; it returns nil for any other error.
func authError(err error, c *serveConfig) error {
	switch {
	case errors.Is(err, server.ErrUnauthenticated):
		where := "--data-dir " + c.DataDir
		if c.ClientsFile != "" {
			where = "--clients-file " + c.ClientsFile
		}
		return fmt.Errorf("refusing to serve the session API on %s, an address other than loopback, with no client configured: anyone who could reach it could open sessions. Add a client first: sessiond clients add NAME --allow open,close,verify %s (callers then send Authorization: Bearer SECRET); or require client certificates with --tls-client-ca; or listen on loopback (--listen 127.0.0.1:8080); or pass --insecure-allow-unauthenticated to serve anyway",
			c.Listen, where)
	case errors.Is(err, server.ErrTLSConfig):
		return fmt.Errorf("%w (--tls-cert, --tls-key, --tls-client-ca)", err)
	case errors.Is(err, clients.ErrInsecure), errors.Is(err, clients.ErrNotRegular), errors.Is(err, clients.ErrCorrupt):
		return fmt.Errorf("%w (--clients-file, or DATA_DIR/clients.json; sessiond clients)", err)
	}
	return nil
}
