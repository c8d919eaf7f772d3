package rpc

// This file is the validator the decoder trusts: validJSON, which accepts
// exactly what json.Valid accepts, faster.

import "encoding/binary"

// validJSON reports whether b is one JSON value (RFC 8259), with optional
// whitespace around it: exactly what json.Valid reports (invalid UTF-8
// inside strings included, which parseRequest refuses on its own), as
// FuzzValidJSON checks. It exists because json.Valid steps through a state
// machine one function call per byte, and a request is mostly one long
// token string: it was nearly half of a cached verification through the
// handler. Strings are scanned eight bytes at a time; nesting is tracked
// in a stack of bits, so deep nesting costs no recursion.
func validJSON(b []byte) bool {
	var stack [maxNesting/64 + 1]uint64 // bit i: the i-th open container is an object
	depth := 0
	push := func(object bool) {
		if object {
			stack[depth/64] |= 1 << (depth % 64)
		} else {
			stack[depth/64] &^= 1 << (depth % 64)
		}
		depth++
	}
	inObject := func() bool { return stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0 }

	i := skipSpace(b, 0)
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			if i = scanString(b, i); i < 0 {
				return false
			}
		case c == '-' || '0' <= c && c <= '9':
			if i = scanNumber(b, i); i < 0 {
				return false
			}
		case c == 't':
			if !hasPrefix(b[i:], "true") {
				return false
			}
			i += 4
		case c == 'f':
			if !hasPrefix(b[i:], "false") {
				return false
			}
			i += 5
		case c == 'n':
			if !hasPrefix(b[i:], "null") {
				return false
			}
			i += 4
		case c == '[':
			if depth >= maxNesting {
				return false
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			push(false)
			continue // the first element
		case c == '{':
			if depth >= maxNesting {
				return false
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			push(true)
			if i = scanKey(b, i); i < 0 {
				return false
			}
			continue // the first member's value
		default:
			return false
		}
		// After a value: close containers, or go on to the next element.
		for {
			i = skipSpace(b, i)
			if depth == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			obj := inObject()
			switch c := b[i]; {
			case c == ',':
				i = skipSpace(b, i+1)
				if obj {
					if i = scanKey(b, i); i < 0 {
						return false
					}
				}
			case c == ']' && !obj, c == '}' && obj:
				depth--
				i++
				continue
			default:
				return false
			}
			break
		}
	}
}

// maxNesting is encoding/json's limit on nesting, which json.Valid
// enforces: more than 10000 open arrays and objects is not valid.
const maxNesting = 10000

// scanKey reads a member name and its colon at b[i] (whitespace skipped
// before the name) and returns the index of the value (whitespace skipped),
// or -1.
func scanKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = scanString(b, i); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

func hasPrefix(b []byte, lit string) bool {
	return len(b) >= len(lit) && string(b[:len(lit)]) == lit
}

// SWAR constants: a byte of 0x01 and of 0x80 in every lane.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// plainWord reports whether none of the eight bytes of w is a control
// character (below 0x20), '"' or '\': the bytes a string scan must stop at.
func plainWord(w uint64) bool {
	below := (w - lanes01*0x20) &^ w        // high bit set where a byte is < 0x20 (or where a borrow ran on)
	quote := (w ^ lanes01*'"') - lanes01    // a zero byte where w has '"'
	quote &^= w ^ lanes01*'"'               //
	slash := (w ^ lanes01*'\\') - lanes01   // and where w has '\'
	slash &^= w ^ lanes01*'\\'              //
	return (below|quote|slash)&lanes80 == 0 // a false "not plain" only sends the word to the byte loop
}

// scanString reads the string whose quote is at b[i] and returns the index
// after its closing quote, or -1.
func scanString(b []byte, i int) int {
	i++
	for {
		for i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		default:
			i++
		}
	}
}

// scanNumber reads the number at b[i] and returns the index after it, or
// -1.
func scanNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	digits := func() bool {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return -1
		}
	}
	return i
}
