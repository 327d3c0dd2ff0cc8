package merge

import (
	"strings"
	"unicode/utf8"
)

// JSONValue renders a field's value for JSON: nil when absent, a bool for
// KindBool (nil when the text is not a boolean), the trimmed string otherwise.
func JSONValue(id FieldID, v string) any {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	if kindOf(id) == KindBool {
		b, ok := parseBool(v)
		if !ok {
			return nil
		}
		return b
	}
	return v
}

// MarshalJSON renders the record as the unified customer object, nested by
// the fields' paths (absent values as null). LastUpdated is not included.
func (r Record) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 256)), nil
}

// AppendJSON appends the record's MarshalJSON form to dst.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	open := "" // dotted path of the nested object being written, "" at the top
	first := true
	for i, f := range Fields {
		parent, name := "", f.Path
		if dot := strings.LastIndexByte(f.Path, '.'); dot >= 0 {
			parent, name = f.Path[:dot], f.Path[dot+1:]
		}
		for open != "" && !hasPathPrefix(parent, open) {
			dst = append(dst, '}')
			open = open[:max(strings.LastIndexByte(open, '.'), 0)]
			first = false
		}
		for open != parent {
			rest := strings.TrimPrefix(parent[len(open):], ".")
			seg, _, _ := strings.Cut(rest, ".")
			if !first {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, seg)
			dst = append(dst, ':', '{')
			open = parent[:len(parent)-len(rest)+len(seg)]
			first = true
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = AppendJSONString(dst, name)
		dst = append(dst, ':')
		dst = appendJSONValue(dst, FieldID(i), r.Values[i])
	}
	for ; open != ""; open = open[:max(strings.LastIndexByte(open, '.'), 0)] {
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// hasPathPrefix reports whether dotted path p is prefix or lies under it.
func hasPathPrefix(p, prefix string) bool {
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '.')
}

// appendJSONValue appends JSONValue(id, v) as JSON, without boxing it.
func appendJSONValue(dst []byte, id FieldID, v string) []byte {
	v = strings.TrimSpace(v)
	if v == "" {
		return append(dst, "null"...)
	}
	if kindOf(id) != KindBool {
		return AppendJSONString(dst, v)
	}
	switch b, ok := parseBool(v); {
	case !ok:
		return append(dst, "null"...)
	case b:
		return append(dst, "true"...)
	default:
		return append(dst, "false"...)
	}
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaping quotes, backslashes,
// control characters and U+2028/U+2029; invalid UTF-8 becomes U+FFFD. It
// does not allocate beyond growing dst; the System B codec uses it too.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			switch r {
			case utf8.RuneError:
				dst = append(dst, `\ufffd`...)
			default:
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			}
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
