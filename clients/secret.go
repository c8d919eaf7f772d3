package clients

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
)

// secretBytes is the number of random bytes in a secret.
const secretBytes = 32

// Secret is a client's secret as [Add] returns it: the only time it exists
// outside the caller's hands. It never prints: every fmt verb and slog show
// "[REDACTED]"; [Secret.Reveal] is the one way to get the text, for the
// operator to copy.
type Secret struct {
	value string
}

// newSecret returns a new random secret.
func newSecret() (Secret, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return Secret{}, fmt.Errorf("generate secret: %w", err)
	}
	return Secret{value: base64.RawURLEncoding.EncodeToString(b)}, nil
}

func (s Secret) hash() [sha256.Size]byte { return sha256.Sum256([]byte(s.value)) }

// Reveal returns the secret's text, base64url without padding (43
// characters), which the caller sends as "Authorization: Bearer <secret>".
func (s Secret) Reveal() string { return s.value }

const redacted = "[REDACTED]"

// String returns "[REDACTED]".
func (Secret) String() string { return redacted }

// GoString returns "[REDACTED]".
func (Secret) GoString() string { return redacted }

// Format prints "[REDACTED]" for every verb, %x and %q among them.
func (Secret) Format(f fmt.State, _ rune) { f.Write([]byte(redacted)) }

// LogValue logs "[REDACTED]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[REDACTED]", so encoding/json cannot leak it either.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
