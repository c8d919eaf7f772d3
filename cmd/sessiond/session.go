package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/client"
)

const sessionUsage = `Usage: sessiond session COMMAND [flags] [ARG]

Calls the session API of a running sessiond (JSON-RPC over HTTP), as any
other caller does.

Commands:
  open [--expires-in N] [--subject S]
                     open a session (N seconds, or a duration such as 1h;
                     default 30 days) and print its token on the first line
  verify TOKEN       is the session active?
  introspect TOKEN   whose session it is and until when, if it is active
  close TOKEN        close the session
  close-all SUBJECT  close every session of SUBJECT opened so far

Flags of every command (also from SESSIOND_<FLAG>; flags may come before
or after the argument, and -- ends them):
  --server URL       the server (SESSIOND_SERVER; default ` + defaultSessionServer + `)
  --secret-file FILE the caller's secret, sent as Authorization: Bearer
                     (SESSIOND_SECRET_FILE; the file's content, trimmed)
  --json             print the server's result as JSON
  --timeout D        give up after D (default 10s)

Exit status:
  0  ok: opened, closed, or the token is active
  1  the token is not active, or the server refused the request (invalid
     params, unauthorized, forbidden: one line on stderr says why)
  2  usage error
  3  could not reach the server, or it could not decide (internal error,
     an unexpected reply); treat the token as not active`

// defaultSessionServer is where sessiond serve listens by default.
const defaultSessionServer = "http://127.0.0.1:8080"

// The exit statuses of sessiond session, aligned with sessiond verify's.
const (
	exitInactive    exitCode = 1 // not active, or refused
	exitUnreachable exitCode = 3 // could not reach or decide
)

// sessionCommands names each command's argument ("" for none).
var sessionCommands = map[string]string{
	"open": "", "verify": "TOKEN", "introspect": "TOKEN", "close": "TOKEN", "close-all": "SUBJECT",
}

// sessionCommand runs sessiond session COMMAND.
func sessionCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, sessionUsage)
		return errUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, sessionUsage)
		return nil
	}
	argName, ok := sessionCommands[name]
	if !ok {
		fmt.Fprintf(stderr, "sessiond session: unknown command %q\n\n%s\n", name, sessionUsage)
		return errUsage
	}
	prog := "sessiond session " + name
	fs := newFlagSet(prog, sessionUsage, stderr)
	server := fs.String("server", defaultSessionServer, "URL of the server")
	secretFile := fs.String("secret-file", "", "file that holds the caller's secret, sent as Authorization: Bearer")
	asJSON := fs.Bool("json", false, "print the server's result as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	var expiresIn, subject string
	if name == "open" {
		fs.StringVar(&expiresIn, "expires-in", "", "lifetime: whole seconds (3600) or a duration (1h); default 30 days")
		fs.StringVar(&subject, "subject", "", "whose session it is; the token carries it as sub")
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "%s: %s\n", prog, fmt.Sprintf(format, a...))
		return errUsage
	}
	switch {
	case argName == "" && fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case argName != "" && fs.NArg() != 1:
		return usage("want exactly one %s, have %d arguments (write: %s [flags] %s)", argName, fs.NArg(), prog, argName)
	case *timeout <= 0:
		return usage("--timeout must be positive, such as 10s, not %s", *timeout)
	}
	lifetime, err := parseExpiresIn(expiresIn)
	if err != nil {
		return usage("%v", err)
	}
	endpoint, err := sessionEndpoint(*server)
	if err != nil {
		return usage("%v", err)
	}
	transport := &callerTransport{base: http.DefaultTransport}
	if *secretFile != "" {
		if transport.secret, err = readSecret(*secretFile, stderr, prog); err != nil {
			return usage("%v", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := client.New(endpoint, &http.Client{Transport: transport})
	call := sessionCall{prog: prog, server: *server, transport: transport, json: *asJSON, stdout: stdout, stderr: stderr}
	arg := fs.Arg(0)
	switch name {
	case "open":
		res, err := c.OpenSessionFor(ctx, subject, lifetime)
		if err != nil {
			return call.fail(err)
		}
		if call.json {
			return call.printJSON(res)
		}
		fmt.Fprintf(stdout, "%s\nexpires in %d s, at %s\n", res.AccessToken, res.ExpiresIn,
			time.Now().Add(time.Duration(res.ExpiresIn)*time.Second).UTC().Format(time.RFC3339))
		return nil
	case "verify":
		active, err := c.VerifySessionToken(ctx, arg)
		if err != nil {
			return call.fail(err)
		}
		if call.json {
			err = call.printJSON(map[string]bool{"active": active})
		} else {
			fmt.Fprintln(stdout, activeWord(active))
		}
		return errors.Join(err, inactive(active))
	case "introspect":
		res, err := c.IntrospectSessionToken(ctx, arg)
		if err != nil {
			return call.fail(err)
		}
		if call.json {
			return errors.Join(call.printJSON(res), inactive(res.Active))
		}
		fmt.Fprintln(stdout, activeWord(res.Active))
		if res.Active {
			if res.Subject != "" {
				fmt.Fprintf(stdout, "sub  %s\n", res.Subject)
			}
			fmt.Fprintf(stdout, "exp  %d (%s)\niat  %d (%s)\njti  %s\niss  %s\n",
				res.Expires, time.Unix(res.Expires, 0).UTC().Format(time.RFC3339),
				res.IssuedAt, time.Unix(res.IssuedAt, 0).UTC().Format(time.RFC3339), res.ID, res.Issuer)
		}
		return inactive(res.Active)
	case "close":
		if err := c.CloseSession(ctx, arg); err != nil {
			return call.fail(err)
		}
		if call.json {
			return call.printJSON(true)
		}
		fmt.Fprintln(stdout, "closed")
		return nil
	default: // close-all
		if err := c.CloseAllSessions(ctx, arg); err != nil {
			return call.fail(err)
		}
		if call.json {
			return call.printJSON(true)
		}
		fmt.Fprintf(stdout, "closed every session of %s opened so far\n", strconv.Quote(arg))
		return nil
	}
}

func activeWord(active bool) string {
	if active {
		return "active"
	}
	return "inactive"
}

// inactive is the exit status of an answer that says not active.
func inactive(active bool) error {
	if active {
		return nil
	}
	return exitInactive
}

// parseExpiresIn reads --expires-in: "" (the server's default), whole
// seconds from 1, or a duration of whole seconds (1h, 90s).
func parseExpiresIn(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	bad := fmt.Errorf("--expires-in %q is not a lifetime: give whole seconds of at least 1 (3600) or a duration of whole seconds (1h, 90s)", v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 1 || n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, bad
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d%time.Second != 0 {
		return 0, bad
	}
	return d, nil
}

// sessionEndpoint turns --server into the JSON-RPC endpoint's URL.
func sessionEndpoint(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--server (SESSIOND_SERVER) %q is not an http:// or https:// URL of a server, such as %s", server, defaultSessionServer)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String(), nil
}

// readSecret reads the caller's secret from path: the content, trimmed of
// white space. It warns when others may read the file, and refuses an
// empty one or one of several lines. The secret is never printed.
func readSecret(path string, stderr io.Writer, prog string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--secret-file (SESSIOND_SECRET_FILE): %v", err)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "%s: warning: --secret-file %s is open to other users (mode %04o); it holds a secret: chmod 600 %s\n", prog, path, info.Mode().Perm(), path)
	}
	secret := strings.TrimSpace(string(data))
	switch {
	case secret == "":
		return "", fmt.Errorf("--secret-file %s is empty; put the secret that `sessiond clients add` printed in it", path)
	case strings.ContainsFunc(secret, func(r rune) bool { return r < 0x21 || r == 0x7f }):
		return "", fmt.Errorf("--secret-file %s holds more than one word (white space or control characters inside the secret); it must hold the secret alone", path)
	}
	return secret, nil
}

// callerTransport sends the caller's secret with every request, and
// remembers the HTTP status of the last reply, to tell a refusal (401,
// 403) from a failure.
type callerTransport struct {
	base   http.RoundTripper
	secret string // "" sends none
	status atomic.Int32
}

func (t *callerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.secret != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.secret)
	}
	resp, err := t.base.RoundTrip(r)
	if resp != nil {
		t.status.Store(int32(resp.StatusCode))
	}
	return resp, err
}

// sessionCall is what one command prints with.
type sessionCall struct {
	prog, server   string
	transport      *callerTransport
	json           bool
	stdout, stderr io.Writer
}

func (c sessionCall) printJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", data)
	return err
}

// fail prints the one line that says why a call failed, and returns its
// exit status: refused (1) for a JSON-RPC error other than an internal one
// or an HTTP 401 or 403; could not reach or decide (3) for anything else.
func (c sessionCall) fail(err error) error {
	var rpcErr *client.Error
	status := int(c.transport.status.Load())
	switch {
	case errors.As(err, &rpcErr) && rpcErr.Code == -32603:
		fmt.Fprintf(c.stderr, "%s: could not decide: the server answered %v; see its log\n", c.prog, rpcErr)
		return exitUnreachable
	case errors.As(err, &rpcErr):
		fmt.Fprintf(c.stderr, "%s: refused: %v\n", c.prog, rpcErr)
		return exitInactive
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		fmt.Fprintf(c.stderr, "%s: refused: %v; give a caller's secret with --secret-file (SESSIOND_SECRET_FILE)\n", c.prog, err)
		return exitInactive
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(c.stderr, "%s: could not reach %s: no answer within --timeout; check --server (SESSIOND_SERVER) and that sessiond serve runs there\n", c.prog, c.server)
		return exitUnreachable
	case status == 0:
		fmt.Fprintf(c.stderr, "%s: could not reach %s: %v; check --server (SESSIOND_SERVER) and that sessiond serve runs there\n", c.prog, c.server, err)
		return exitUnreachable
	default:
		fmt.Fprintf(c.stderr, "%s: could not decide: %v\n", c.prog, err)
		return exitUnreachable
	}
}
