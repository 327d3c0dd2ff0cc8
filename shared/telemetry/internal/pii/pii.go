// Package pii recognises attribute names that carry personal data or
// secrets and scrubs email addresses out of free text. It is shared by the
// logging and metrics packages so that both apply the same rules.
package pii

import "strings"

// Redacted replaces the value of an attribute whose name is sensitive.
const Redacted = "[REDACTED]"

// EmailRedacted replaces an email address found inside free text.
const EmailRedacted = "[email]"

// exactKeys are normalised attribute names that always hold personal data.
var exactKeys = map[string]bool{
	"email":       true,
	"emails":      true,
	"phone":       true,
	"phonenumber": true,
	"firstname":   true,
	"lastname":    true,
	"fullname":    true,
}

// secretParts are substrings of normalised attribute names that hold secrets.
var secretParts = []string{"token", "authorization", "password", "secret"}

// SensitiveKey reports whether an attribute named key holds personal data
// or a secret: email, phone, firstName, lastName (any case, with or without
// '_', '-' or '.'), or any name containing token, authorization, password
// or secret. "emailHash" is not sensitive.
func SensitiveKey(key string) bool {
	k := normalise(key)
	if exactKeys[k] {
		return true
	}
	for _, p := range secretParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// normalise lower-cases key and drops the separators '_', '-' and '.'.
func normalise(key string) string {
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range strings.ToLower(key) {
		switch r {
		case '_', '-', '.', ' ':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Scrub returns s with every email address in it (a run of non-delimiter
// characters around an '@' or its URL escape "%40", with something on both
// sides) replaced by EmailRedacted. Strings without '@' or "%40" are
// returned unchanged without allocating.
func Scrub(s string) string {
	if !strings.Contains(s, "@") && !strings.Contains(s, "%40") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0 // s[last:] is not yet copied to b
	for i := 0; i < len(s); {
		n := atLen(s, i)
		if n == 0 {
			i++
			continue
		}
		start := i
		for start > last && !delimiter(s[start-1]) {
			start--
		}
		end := i + n
		for end < len(s) && !delimiter(s[end]) {
			end++
		}
		if start == i || end == i+n { // nothing on one side: not an address
			i += n
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(EmailRedacted)
		last, i = end, end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// atLen returns the length of the '@' or "%40" at s[i], or 0.
func atLen(s string, i int) int {
	switch {
	case s[i] == '@':
		return 1
	case s[i] == '%' && i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0':
		return 3
	}
	return 0
}

// delimiter reports whether c ends an email address in free text. Bytes of
// multi-byte UTF-8 sequences are never delimiters, so non-ASCII addresses
// are scrubbed whole.
func delimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '`', '<', '>', '(', ')', '[', ']',
		'{', '}', ',', ';', ':', '/', '\\', '=', '?', '&', '|':
		return true
	}
	return false
}
