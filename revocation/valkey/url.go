package valkey

// This file parses the store's URL into a rueidis.ClientOption, and
// redacts the password from every form of the URL that may be printed.

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// urlForms names the accepted forms, for every refusal.
const urlForms = "redis://[user:password@]host:port[/db], rediss://[user:password@]host:port[/db] (TLS), or redis://host:port?addr=host2:port2&addr=host3:port3 (a cluster's seed nodes)"

// target is a parsed URL.
type target struct {
	tls      bool
	addrs    []string // the first is the URL's host; more mean a cluster
	cluster  bool
	user     string
	password string
	db       int
	redacted string // the URL with the password replaced by "xxxxx"
}

// parseURL parses raw. Its errors never contain the password.
func parseURL(raw string) (target, error) {
	var t target
	fail := func(why string) (target, error) {
		return target{}, fmt.Errorf("revocation store URL %q: %s: want %s", redactRaw(raw), why, urlForms)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error prints the URL whole; say only what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail(fmt.Sprintf("not a URL (%v)", err))
	}
	switch u.Scheme {
	case "redis":
	case "rediss":
		t.tls = true
	case "":
		return fail("no scheme")
	default:
		return fail(fmt.Sprintf("unknown scheme %q", u.Scheme))
	}
	if u.Opaque != "" {
		return fail("no host (write redis://host:port)")
	}
	if u.User != nil {
		t.user = u.User.Username()
		t.password, _ = u.User.Password()
	}
	t.redacted = u.Redacted() // the user name stays, the password is "xxxxx"
	fail = func(why string) (target, error) {
		// redactRaw too: a URL refused for its shape may hold a password
		// where url.Parse sees none ("redis:/u:pw@h:1" is a path).
		// The reason may quote a part of the URL: what comes before an
		// "@" in it may be a password too.
		if i := strings.LastIndex(why, "@"); i >= 0 {
			j := strings.LastIndexAny(why[:i], "\" =(") + 1
			why = why[:j] + "xxxxx" + why[i:]
		}
		return target{}, fmt.Errorf("revocation store URL %q: %s: want %s", redactRaw(t.redacted), why, urlForms)
	}
	if u.Host == "" {
		return fail("no host")
	}
	first, err := checkAddr(u.Host)
	if err != nil {
		return fail(err.Error())
	}
	t.addrs = []string{first}
	if u.Fragment != "" {
		return fail("a fragment (#...) has no meaning")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fail(fmt.Sprintf("bad query (%v)", err))
	}
	for k, vs := range q {
		if k != "addr" {
			return fail(fmt.Sprintf("unknown query parameter %q (only addr=host:port, for cluster seeds)", k))
		}
		for _, v := range vs {
			a, err := checkAddr(v)
			if err != nil {
				return fail("addr=" + err.Error())
			}
			t.addrs = append(t.addrs, a)
		}
		t.cluster = true
	}
	switch p := strings.TrimPrefix(u.Path, "/"); {
	case p == "":
	case strings.Contains(p, "/"):
		return fail(fmt.Sprintf("path %q is not a database number", u.Path))
	default:
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return fail(fmt.Sprintf("database %q is not a number", p))
		}
		t.db = n
	}
	if t.cluster && t.db != 0 {
		return fail(fmt.Sprintf("database %d with a cluster (a cluster has database 0 only)", t.db))
	}
	return t, nil
}

// checkAddr checks host:port and returns it.
func checkAddr(hp string) (string, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", hp)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", hp)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", hp, port)
	}
	return net.JoinHostPort(host, port), nil
}

// redactRaw hides the password of a URL that did not parse: everything
// between "://" and the last "@" becomes "xxxxx" when it holds a ":"
// (user:password), keeping only a plain user name before that ":", so
// that not even a broken URL prints it. The last "@" of the whole URL, not
// of its authority: a password may hold a "/", "?", "#" or "@" that was
// not percent-encoded, and a broken URL's parts cannot be told apart.
func redactRaw(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "xxxxx" + raw[i:]
		}
		return raw
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 || !strings.Contains(rest[:at], ":") {
		return raw
	}
	if user, _, _ := strings.Cut(rest[:at], ":"); !strings.ContainsAny(user, "/?#@") {
		return scheme + "://" + user + ":xxxxx" + rest[at:]
	}
	return scheme + "://xxxxx" + rest[at:]
}
