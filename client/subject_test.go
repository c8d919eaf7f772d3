package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	sessiond "github.com/sessiond/sessiond/server"
)

// The subject methods against the real service on loopback: a session
// opened for a subject introspects with its claims, close_all_sessions
// ends it, and a bad subject comes back as the server's *Error.
func TestSubjectMethods(t *testing.T) {
	srv := sessiond.New(sessiond.Config{DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0"})
	if err := srv.Open(context.Background()); err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	c := client.New("http://"+srv.Addr()+"/", nil)
	ctx := context.Background()

	res, err := c.OpenSessionFor(ctx, "alice@example.com", time.Hour)
	if err != nil || res.ExpiresIn != 3600 {
		t.Fatalf("OpenSessionFor() = %+v, %v, want a session of 3600 s", res, err)
	}
	got, err := c.IntrospectSessionToken(ctx, res.AccessToken)
	if err != nil || !got.Active || got.Subject != "alice@example.com" || got.Expires-got.IssuedAt != 3600 || got.ID == "" || got.Issuer != "sessiond" {
		t.Errorf("IntrospectSessionToken() = %+v, %v, want the claims of an active token of alice@example.com", got, err)
	}
	plain, err := c.OpenSession(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.IntrospectSessionToken(ctx, plain.AccessToken); err != nil || !got.Active || got.Subject != "" {
		t.Errorf("IntrospectSessionToken(no subject) = %+v, %v, want active without a subject", got, err)
	}

	if err := c.CloseAllSessions(ctx, "alice@example.com"); err != nil {
		t.Fatalf("CloseAllSessions() error = %v", err)
	}
	if got, err := c.IntrospectSessionToken(ctx, res.AccessToken); err != nil || got != (client.Introspection{}) {
		t.Errorf("IntrospectSessionToken(closed) = %+v, %v, want exactly inactive", got, err)
	}
	if active, err := c.VerifySessionToken(ctx, plain.AccessToken); !active || err != nil {
		t.Errorf("a session without a subject after CloseAllSessions: active = %v, %v, want true", active, err)
	}

	var rpcErr *client.Error
	if err := c.CloseAllSessions(ctx, ""); !errors.As(err, &rpcErr) || rpcErr.Code != -32602 {
		t.Errorf("CloseAllSessions(\"\") error = %v, want *client.Error -32602", err)
	}
	if _, err := c.OpenSessionFor(ctx, "bob", 1500*time.Millisecond); !errors.Is(err, client.ErrDuration) {
		t.Errorf("OpenSessionFor(1.5s) error = %v, want ErrDuration", err)
	}
}
