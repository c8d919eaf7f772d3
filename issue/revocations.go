package issue

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond/internal/jose"
	"github.com/sessiond/sessiond/token"
)

// SignRevocations returns the revocation document of list, signed with the
// active key of keys; token.RevocationFeed and Verifier.ParseRevocations read it. It sorts list.Revoked by id, in place; an id that
// appears twice, an expiry outside the years 1970 to 9999, a FreshUntil not
// after IssuedAt, or a snapshot with a Since are errors. Times are
// truncated to whole seconds; callers round expiries up first if that
// matters.
func SignRevocations(keys SigningKeys, list *token.RevocationList) ([]byte, error) {
	if !slices.IsSortedFunc(list.Revoked, compareRevoked) {
		slices.SortFunc(list.Revoked, compareRevoked)
	}
	if !slices.IsSortedFunc(list.Cutoffs, compareCutoffs) {
		slices.SortFunc(list.Cutoffs, compareCutoffs)
	}
	return SignRevocationsFunc(keys, list, len(list.Revoked), func(i int) token.Revoked { return list.Revoked[i] })
}

// SignRevocationsFunc is [SignRevocations] for a list too large to copy
// into list.Revoked, which it ignores: the document lists n entries, the
// i-th being entry(i), in ascending order of id (it is an error otherwise).
// entry is called twice for each i. The subject cutoffs are list.Cutoffs,
// which must be in ascending order of hash; the document has a "cutoffs"
// member only when there are some.
//
// The document is written into one buffer of its final size, without
// intermediate copies of the list: a million ids cost the document's 37 MB.
func SignRevocationsFunc(keys SigningKeys, list *token.RevocationList, n int, entry func(i int) token.Revoked) ([]byte, error) {
	listLen, err := checkList(list, n, entry)
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	cutoffs, err := encodeCutoffs(list.Cutoffs)
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	kid, alg, key, err := keys.SigningKey()
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	sigLen, err := jose.SignatureSize(alg, key)
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, jose.TypeRevocations})
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	// The payload is written in two parts around the revoked list, which is
	// the one that may be large.
	head, err := json.Marshal(struct {
		Issuer     string           `json:"iss"`
		IssuedAt   *jwt.NumericDate `json:"iat"`
		FreshUntil *jwt.NumericDate `json:"fresh_until"`
		Epoch      string           `json:"epoch"`
		Seq        uint64           `json:"seq"`
		Since      uint64           `json:"since"`
		Snapshot   bool             `json:"snapshot"`
		Retain     int64            `json:"retain"`
		Cutoffs    string           `json:"cutoffs,omitempty"`
	}{list.Issuer, jwt.NewNumericDate(list.IssuedAt), jwt.NewNumericDate(list.FreshUntil), list.Epoch, list.Seq, list.Since, list.Snapshot,
		int64(list.Retain / time.Second), cutoffs})
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	head = append(head[:len(head)-1], `,"revoked":"`...)
	const tail = `"}`
	payloadLen := len(head) + jose.B64.EncodedLen(listLen) + len(tail)
	size := jose.B64.EncodedLen(len(header)) + 1 + jose.B64.EncodedLen(payloadLen) + 1 + jose.B64.EncodedLen(sigLen)

	var doc bytes.Buffer
	doc.Grow(size)
	doc.WriteString(jose.B64.EncodeToString(header))
	doc.WriteByte('.')
	payload := base64.NewEncoder(jose.B64, &doc)
	payload.Write(head)
	revoked := base64.NewEncoder(jose.B64, payload)
	// Writes to a bytes.Buffer do not fail, so neither do the encoders'.
	chunk := binary.AppendUvarint(make([]byte, 0, 48<<10), uint64(n))
	for i := range n {
		if len(chunk) > cap(chunk)-32 {
			revoked.Write(chunk)
			chunk = chunk[:0]
		}
		r := entry(i)
		chunk = append(chunk, r.ID[:]...)
		chunk = binary.AppendUvarint(chunk, uint64(r.Expires.Unix()))
	}
	revoked.Write(chunk)
	revoked.Close()
	payload.Write([]byte(tail))
	payload.Close()

	sig, err := jose.Sign(alg, key, doc.Bytes())
	if err != nil {
		return nil, fmt.Errorf("sign revocations: %w", err)
	}
	doc.WriteByte('.')
	doc.WriteString(jose.B64.EncodeToString(sig))
	return doc.Bytes(), nil
}

// checkList validates list and its n entries for signing, and returns the
// length of the binary revoked list.
func checkList(list *token.RevocationList, n int, entry func(i int) token.Revoked) (int, error) {
	switch {
	case !list.FreshUntil.After(list.IssuedAt):
		return 0, errors.New("fresh until must be after issued at")
	case list.Snapshot && list.Since != 0:
		return 0, errors.New("a snapshot has no since")
	case list.Since > list.Seq:
		return 0, errors.New("since is after seq")
	case n < 0:
		return 0, errors.New("negative number of entries")
	case list.Retain < 0:
		return 0, errors.New("negative retain")
	}
	size := jose.UvarintLen(uint64(n))
	var prev token.Revoked
	for i := range n {
		r := entry(i)
		exp := r.Expires.Unix()
		if exp < 1 || exp > jose.MaxExpiry {
			return 0, fmt.Errorf("id %s expires at %v, outside the years 1970 to 9999", r.ID, r.Expires)
		}
		if i > 0 && compareRevoked(prev, r) >= 0 {
			return 0, fmt.Errorf("id %s twice or out of order", r.ID)
		}
		size += 16 + jose.UvarintLen(uint64(exp))
		prev = r
	}
	return size, nil
}

// compareRevoked orders entries by id, as bytes.Compare of the ids would,
// in two integer comparisons.
func compareRevoked(a, b token.Revoked) int {
	if c := cmp.Compare(binary.BigEndian.Uint64(a.ID[:8]), binary.BigEndian.Uint64(b.ID[:8])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(a.ID[8:]), binary.BigEndian.Uint64(b.ID[8:]))
}

// encodeCutoffs returns the "cutoffs" member of cs (see
// token.RevocationList): base64url of the count and each cutoff's hash,
// cutoff second and expiry; empty when cs is.
func encodeCutoffs(cs []token.Cutoff) (string, error) {
	if len(cs) == 0 {
		return "", nil
	}
	raw := binary.AppendUvarint(make([]byte, 0, 10+len(cs)*(32+2*jose.UvarintLen(jose.MaxExpiry))), uint64(len(cs)))
	for i, c := range cs {
		at, exp := c.At.Unix(), c.Expires.Unix()
		switch {
		case at < 0 || at > jose.MaxExpiry:
			return "", fmt.Errorf("cutoff at %v, outside the years 1970 to 9999", c.At)
		case exp < 1 || exp > jose.MaxExpiry:
			return "", fmt.Errorf("cutoff expires at %v, outside the years 1970 to 9999", c.Expires)
		case i > 0 && compareCutoffs(cs[i-1], c) >= 0:
			return "", errors.New("a subject cutoff twice or out of order")
		}
		raw = append(raw, c.Subject[:]...)
		raw = binary.AppendUvarint(raw, uint64(at))
		raw = binary.AppendUvarint(raw, uint64(exp))
	}
	return jose.B64.EncodeToString(raw), nil
}

// compareCutoffs orders cutoffs by subject hash.
func compareCutoffs(a, b token.Cutoff) int { return bytes.Compare(a.Subject[:], b.Subject[:]) }
