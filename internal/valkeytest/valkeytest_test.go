package valkeytest_test

import (
	"strings"
	"testing"

	"github.com/sessiond/sessiond/internal/valkeytest"
)

// binaries are the servers the single-server tests run against.
var binaries = []string{"valkey-server", "redis-server"}

func TestStartKillRestartKeepsAOF(t *testing.T) {
	for _, bin := range binaries {
		t.Run(bin, func(t *testing.T) {
			s := valkeytest.Start(t, valkeytest.Options{Binary: bin})
			if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
				t.Errorf("URL() = %q, want redis://127.0.0.1:PORT", s.URL())
			}
			if got := s.MustDo("CONFIG", "GET", "appendfsync"); got != "appendfsync\nalways" {
				t.Errorf("CONFIG GET appendfsync = %q, want always", got)
			}
			s.MustDo("SET", "k", "v")
			s.Kill()
			if _, err := s.Do("PING"); err == nil {
				t.Fatal("PING after Kill succeeded, want an error")
			}
			s.Restart()
			if got := s.MustDo("GET", "k"); got != "v" {
				t.Errorf("GET k after restart = %q, want %q (replayed from the AOF)", got, "v")
			}
		})
	}
}

func TestPassword(t *testing.T) {
	s := valkeytest.Start(t, valkeytest.Options{Password: "s3cret"})
	if got := s.MustDo("PING"); got != "PONG" {
		t.Errorf("PING = %q, want PONG", got)
	}
	if want := "redis://:s3cret@" + s.Addr(); s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six servers")
	}
	c := valkeytest.StartCluster(t, 3, 1)
	if c.Len() != 6 {
		t.Fatalf("Len() = %d, want 6", c.Len())
	}
	if got := strings.Count(c.URL(), "addr="); got != 2 {
		t.Errorf("URL() = %q, want two addr= seeds", c.URL())
	}
	m := c.MasterOf("{rl}")
	c.Node(m).Kill()
	n := c.WaitFailover("{rl}", m)
	if n == m {
		t.Errorf("WaitFailover = %d, the killed node", n)
	}
}
