package clients

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParse: whatever the clients file holds, parse answers a set or an
// error, never a panic; a set it accepts saves and parses back the same.
func FuzzParse(f *testing.F) {
	zeros, ones := strings.Repeat("0", 64), strings.Repeat("1", 64)
	for _, seed := range []string{
		`{"version":1,"clients":[]}`,
		`{"version":1,"clients":[{"name":"app","allow":["open","verify"],"created":"2026-12-01T00:00:00Z","secret_sha256":"` + zeros + `"}]}`,
		`{"version":1,"clients":[{"name":"a","allow":["open"],"secret_sha256":"` + zeros + `"},{"name":"a","allow":["open"],"secret_sha256":"` + ones + `"}]}`,
		`{"version":1,"clients":[{"name":"a","allow":[],"secret_sha256":"` + zeros + `"}]}`,
		`{"version":1,"clients":[{"name":"A pp","allow":["admin"],"secret_sha256":"00"}]}`,
		`{"version":2,"clients":[]}`, `{`, ``, `null`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parse(data, "clients.json")
		if err != nil {
			return
		}
		path := filepath.Join(dir, "round-trip.json")
		os.Remove(path)
		if err := save(path, s); err != nil {
			t.Fatalf("save() of a parsed set: %v", err)
		}
		again, err := Load(path)
		if err != nil {
			t.Fatalf("Load() of a saved set: %v", err)
		}
		if again.Len() != s.Len() {
			t.Fatalf("round trip: %d clients, want %d", again.Len(), s.Len())
		}
		for i, c := range s.Clients() {
			d := again.Clients()[i]
			if c.Name != d.Name || !slices.Equal(c.Allow, d.Allow) || c.hash != d.hash || !c.Created.Equal(d.Created) {
				t.Fatalf("round trip: %+v, want %+v", d, c)
			}
		}
	})
}
