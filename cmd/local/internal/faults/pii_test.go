package faults

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
	"github.com/acme/unified-customer-service/shared/merge"
)

// piiSet holds what must never appear in clear in a log line: every email,
// first and last name and phone number of the data set (as either system
// stores them, cosmetic variants included), System B's bearer tokens and
// the AWS secrets the functions get.
type piiSet struct {
	emails map[string]bool // NFC, lower-cased
	names  map[string]bool // NFC, lower-cased, inner spaces collapsed
	phones map[string]bool // '+' and digits
	digits map[string]bool // phone digits without the '+'

	mu      sync.Mutex
	secrets []string
}

func newPIISet() *piiSet {
	return &piiSet{
		emails: map[string]bool{}, names: map[string]bool{}, phones: map[string]bool{}, digits: map[string]bool{},
		secrets: []string{sandbox.FakeSecretAccessKey, sandbox.FakeSessionToken},
	}
}

func fold(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(norm.NFC.String(s)), " "))
}

// addRecord adds a record's email, names and phone.
func (p *piiSet) addRecord(r *merge.Record) {
	if e := fold(r.Values[merge.FieldEmail]); e != "" {
		p.emails[e] = true
	}
	for _, f := range []merge.FieldID{merge.FieldFirstName, merge.FieldLastName} {
		if n := fold(r.Values[f]); n != "" {
			p.names[n] = true
		}
	}
	if ph := phoneKey(r.Values[merge.FieldPhone]); len(ph) > 1 {
		p.phones[ph] = true
		p.digits[ph[1:]] = true
	}
}

// addSecret adds a token the suite uses.
func (p *piiSet) addSecret(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.secrets = append(p.secrets, s)
}

func (p *piiSet) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.emails) + len(p.names) + len(p.phones) + len(p.secrets)
}

// phoneKey keeps a leading '+' and the digits.
func phoneKey(s string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// scan returns a description of every line that holds a personal value or
// a secret in clear; the value itself is masked in the description, so a
// failing test does not print it either.
func (p *piiSet) scan(lines []string) []string {
	p.mu.Lock()
	secrets := slices.Clone(p.secrets)
	p.mu.Unlock()
	var out []string
	for i, line := range lines {
		if what := p.find(line, secrets); what != "" {
			out = append(out, fmt.Sprintf("line %d: %s (line of %d bytes starting %q)", i+1, what, len(line), mask(line)))
		}
	}
	return out
}

// find names the first kind of leak in line, or "".
func (p *piiSet) find(line string, secrets []string) string {
	for _, s := range secrets {
		if strings.Contains(line, s) {
			return "a secret"
		}
	}
	l := fold(line)
	// Emails: around every '@', the longest run of email characters.
	for i := strings.IndexByte(l, '@'); i >= 0; {
		start, end := i, i+1
		for start > 0 && isEmailRune(l[start-1]) {
			start--
		}
		for end < len(l) && isEmailRune(l[end]) {
			end++
		}
		for s := start; s < i; s++ { // any suffix of the local part
			if p.emails[strings.TrimRight(l[s:end], ".")] {
				return "an email"
			}
		}
		next := strings.IndexByte(l[i+1:], '@')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	// Names: whole words (or phrases) of letters.
	for n := range p.names {
		for off := 0; ; {
			j := strings.Index(l[off:], n)
			if j < 0 {
				break
			}
			j += off
			if boundary(l, j, true) && boundary(l, j+len(n), false) {
				return "a name"
			}
			off = j + 1
		}
	}
	// Phones: runs of digits with the separators phones use.
	for i := 0; i < len(l); i++ {
		if l[i] != '+' && (l[i] < '0' || l[i] > '9') {
			continue
		}
		j := i
		for j < len(l) && strings.IndexByte("+0123456789 -()", l[j]) >= 0 {
			j++
		}
		k := phoneKey(l[i:j])
		if p.phones[k] || (len(k) >= 9 && p.digits[strings.TrimPrefix(k, "+")]) {
			return "a phone number"
		}
		i = j
	}
	return ""
}

func isEmailRune(c byte) bool {
	return c >= 0x80 || c == '.' || c == '+' || c == '-' || c == '_' || c == '\'' ||
		(c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}

// boundary reports whether a word ends before byte i of s (before) or
// starts there (!before): no letter or digit touches the match.
func boundary(s string, i int, before bool) bool {
	var r rune
	switch {
	case before && i <= 0, !before && i >= len(s):
		return true
	case before:
		r, _ = utf8.DecodeLastRuneInString(s[:i])
	default:
		r, _ = utf8.DecodeRuneInString(s[i:])
	}
	return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r)
}

// mask keeps a line's first bytes with letters and digits hidden.
func mask(line string) string {
	line = line[:min(len(line), 60)]
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsLetter(r):
			return 'x'
		case unicode.IsDigit(r):
			return '9'
		}
		return r
	}, line)
}

// TestPIIScanner proves the row 15 scanner finds what it looks for (and
// does not cry wolf on the lines the functions really write).
func TestPIIScanner(t *testing.T) {
	a := data.a[len(data.a)/2]
	email := a.Values[merge.FieldEmail]
	first, last := a.Values[merge.FieldFirstName], a.Values[merge.FieldLastName]
	var phoned *merge.Record
	for _, r := range data.a {
		if len(r.Values[merge.FieldPhone]) > 8 {
			phoned = r
			break
		}
	}
	phone := phoned.Values[merge.FieldPhone]
	secret := "faults-token-" + randomHex(12)
	data.pii.addSecret(secret)
	tests := []struct {
		name string
		line string
		want string
	}{
		{"clean slog line", `{"time":"2026-11-24T09:15:02Z","level":"WARN","msg":"system unavailable","requestId":"7d3c","function":"lookup","emailHash":"hmac:2f1c9a","err":"unified: system B: systemb: System B unavailable (get, 4 attempts)"}`, ""},
		{"clean EMF line", `{"Function":"LookupFunction","_aws":{"Timestamp":1795511702123,"CloudWatchMetrics":[]},"system_b.latency":[301.2,300.9]}`, ""},
		{"clean REPORT line", "REPORT RequestId: 6f1e3a5c-0c7d-4d84-9d1b-2d4c5e6f7a8b\tDuration: 1234.56 ms\tBilled Duration: 1235 ms\tMemory Size: 256 MB\tMax Memory Used: 41 MB", ""},
		{"email", `{"msg":"lookup","key":"` + email + `"}`, "an email"},
		{"upper-case email in a URL", `GET /customers/` + asciiUpper(email) + ` failed`, "an email"},
		{"first name", `{"msg":"hello ` + first + `"}`, "a name"},
		{"last name", `{"err":"` + last + `: mismatch"}`, "a name"},
		{"NFD name", `name=` + norm.NFD.String(last), "a name"},
		{"phone", `{"phone":"` + phone + `"}`, "a phone number"},
		{"compact phone", `{"v":"` + strings.ReplaceAll(phone, " ", "") + `"}`, "a phone number"},
		{"token", `Authorization: Bearer ` + secret, "a secret"},
		{"AWS secret", `key=` + sandbox.FakeSecretAccessKey, "a secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := data.pii.find(tc.line, append(slices.Clone(data.pii.secrets), secret))
			if got != tc.want {
				t.Errorf("find = %q, want %q", got, tc.want)
			}
		})
	}
	if leaks := data.pii.scan([]string{"ok", "x " + email}); len(leaks) != 1 || strings.Contains(leaks[0], email) {
		t.Errorf("scan = %q, want one masked finding", leaks)
	}
}

// asciiUpper upper-cases ASCII letters only (strings.ToUpper turns ß into
// SS, which no lower-casing undoes).
func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}
