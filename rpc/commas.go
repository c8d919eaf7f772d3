package rpc

// This file is the one leniency of the decoder towards pasted examples: a
// trailing comma before '}' or ']' (the API documentation has one) is
// removed before the body is decoded again.

// stripTrailingCommas returns a copy of doc without the commas that follow a
// value and precede a '}' or ']' (whitespace aside), and whether it removed
// any. It respects strings and their escapes and leaves everything else,
// valid or not, to the JSON decoder.
func stripTrailingCommas(doc []byte) ([]byte, bool) {
	out := make([]byte, 0, len(doc))
	removed := false
	var prev byte // the last significant byte copied, outside strings
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		switch {
		case c == '"':
			j := skipString(doc, i)
			out = append(out, doc[i:j]...)
			i = j - 1
			prev = c
			continue
		case isSpace(c):
			out = append(out, c)
			continue
		case c == ',' && prev != 0 && prev != ',' && prev != '[' && prev != '{' && prev != ':':
			if k := skipSpace(doc, i+1); k < len(doc) && (doc[k] == '}' || doc[k] == ']') {
				removed = true
				continue
			}
		}
		out = append(out, c)
		prev = c
	}
	return out, removed
}
