package valkey

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want target
	}{
		{"redis://127.0.0.1:6379", target{addrs: []string{"127.0.0.1:6379"}, redacted: "redis://127.0.0.1:6379"}},
		{"redis://u:p@h:1/3", target{addrs: []string{"h:1"}, user: "u", password: "p", db: 3, redacted: "redis://u:xxxxx@h:1/3"}},
		{"rediss://:p@h:1", target{tls: true, addrs: []string{"h:1"}, password: "p", redacted: "rediss://:xxxxx@h:1"}},
		{"redis://[::1]:1?addr=[::1]:2&addr=h:3", target{addrs: []string{"[::1]:1", "[::1]:2", "h:3"}, cluster: true, redacted: "redis://[::1]:1?addr=[::1]:2&addr=h:3"}},
	} {
		got, err := parseURL(tt.url)
		if err != nil {
			t.Errorf("parseURL(%q) error = %v", tt.url, err)
			continue
		}
		if strings.Join(got.addrs, ",") != strings.Join(tt.want.addrs, ",") || got.tls != tt.want.tls || got.cluster != tt.want.cluster ||
			got.user != tt.want.user || got.password != tt.want.password || got.db != tt.want.db || got.redacted != tt.want.redacted {
			t.Errorf("parseURL(%q) = %+v, want %+v", tt.url, got, tt.want)
		}
	}
}

// FuzzParseURL: parseURL never panics, and its errors never hold the
// password of a URL that has one.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379", "redis://u:s3cretpw@h:1/3", "rediss://:s3cretpw@h:1", "redis://h:1?addr=h:2",
		"redis://u:s3cretpw@h:bad", "redis://u:s3cret pw@h:1", "http://u:s3cretpw@h:1", "redis://u:s3cr/etpw@h:1",
		"u:s3cretpw@h:1", "redis://u:s3cretpw@h:1?x=1#y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseURL(raw)
		if err == nil {
			if got.password != "" && strings.Contains(got.redacted, ":"+got.password+"@") {
				t.Fatalf("redacted %q holds the password", got.redacted)
			}
			return
		}
		// The seeds' password; a fuzzed URL may hold "s3cretpw" elsewhere
		// than in its user info, so only check URLs where it is the
		// password. Elsewhere counts in any case: url.Parse lowercases
		// the scheme, so "S3CRETPW:s3cretpw@" quotes its scheme, the
		// user name of a URL without one, as "s3cretpw".
		if i := strings.Index(raw, ":s3cretpw@"); i >= 0 && strings.Count(strings.ToLower(raw), "s3cretpw") == 1 && strings.Contains(err.Error(), "s3cretpw") {
			t.Fatalf("error %q holds the password", err)
		}
	})
}

// TestPasswordNeverPrints: no fmt verb or logger shows the password of
// the parsed URL or of a Store.
func TestPasswordNeverPrints(t *testing.T) {
	tg, err := parseURL("redis://u:s3cretpw@h:1")
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{url: tg.redacted, password: &secret{tg.password}}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	log.Info("x", "store", s)
	v := reflect.ValueOf(s).Elem() // the Store value, as %v of *s prints it
	log.Info("x", "secret", *s.password)
	for _, out := range []string{
		fmt.Sprintf("%v %+v %#v %s", s, s, s, s),
		fmt.Sprintf("%v %+v %#v", v, v, v),
		fmt.Sprintf("%v %+v %#v %s", *s.password, *s.password, *s.password, *s.password),
		logged.String(),
	} {
		if strings.Contains(out, "s3cretpw") {
			t.Fatalf("printed the password: %s", out)
		}
	}
}

// A URL mistyped so that url.Parse sees no user info (a path, a fragment,
// an opaque URL) still never shows its password in the refusal.
func TestTypoURLHidesPassword(t *testing.T) {
	for _, raw := range []string{"redis:/u:s3cretpw@h:1", "redis:#:s3cretpw@", "redis:u:s3cretpw@h:1", "redis://h:1/u:s3cretpw@x"} {
		if _, err := parseURL(raw); err == nil || strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("parseURL(%q) = %v: want an error without the password", raw, err)
		}
	}
}
