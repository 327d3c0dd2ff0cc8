package merge

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The joiners that internationalised domain names and local parts may need
// (IDNA2008 CONTEXTJ); every other format character (Unicode Cf: zero-width
// space, bidi overrides, soft hyphen, BOM) is refused as invisible.
const (
	zwnj = '\u200c'
	zwj  = '\u200d'
)

// Limits of ParseEmail, in bytes (RFC 5321's path and local-part limits).
const (
	MaxEmailLen = 254
	MaxLocalLen = 64
)

// ParseEmail validates an email (as a user typed it) and returns its join
// key (see Key). It is a pragmatic check, not RFC 5322: after trimming, the
// address is non-empty, at most MaxEmailLen bytes, valid UTF-8, free of
// control characters, whitespace, invisible format characters (other than
// the zero-width joiners), '/' and '\', and has exactly one '@'
// between a non-empty local part of at most MaxLocalLen bytes ('+' and
// non-ASCII allowed) and a domain of non-empty dot-separated labels that do
// not start or end with '-'. Errors wrap ErrInvalidEmail and say why without
// echoing the address.
func ParseEmail(email string) (key string, err error) {
	email = strings.TrimSpace(email)
	if reason := emailProblem(email); reason != "" {
		return "", fmt.Errorf("%w: %s", ErrInvalidEmail, reason)
	}
	return strings.ToLower(email), nil
}

// emailProblem returns why a trimmed email is not valid, "" when it is.
func emailProblem(email string) string {
	switch {
	case email == "":
		return "empty"
	case len(email) > MaxEmailLen:
		return fmt.Sprintf("longer than %d bytes", MaxEmailLen)
	case !utf8.ValidString(email):
		return "not valid UTF-8"
	}
	ats := 0
	for _, r := range email {
		if r > ' ' && r < 0x7f && r != '/' && r != '\\' && r != '@' {
			continue // printable ASCII: the common case
		}
		switch {
		case r == 0 || unicode.IsControl(r):
			return "contains a control character"
		case unicode.IsSpace(r):
			return "contains whitespace"
		case unicode.Is(unicode.Cf, r) && r != zwnj && r != zwj:
			return "contains an invisible formatting character"
		case r == '/' || r == '\\':
			return `contains '/' or '\'`
		case r == '@':
			ats++
		case r >= utf8.RuneSelf && unicode.ToLower(r) < utf8.RuneSelf:
			// The Kelvin sign K (U+212A) and İ (U+0130) lower-case to ASCII,
			// so they would join another customer's key: a look-alike.
			return "contains a non-ASCII letter that lower-cases to ASCII (a look-alike)"
		}
	}
	if ats != 1 {
		return "must contain exactly one '@'"
	}
	local, domain, _ := strings.Cut(email, "@")
	switch {
	case local == "":
		return "empty local part before '@'"
	case len(local) > MaxLocalLen:
		return fmt.Sprintf("local part longer than %d bytes", MaxLocalLen)
	case domain == "":
		return "empty domain after '@'"
	}
	for label := range strings.SplitSeq(domain, ".") {
		switch {
		case label == "":
			return "domain has an empty label (leading, trailing or double '.')"
		case label[0] == '-' || label[len(label)-1] == '-':
			return "a domain label starts or ends with '-'"
		}
	}
	return ""
}
