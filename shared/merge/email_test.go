package merge

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEmail(t *testing.T) {
	valid := []struct{ name, in, key string }{
		{"plain", "anna@example.com", "anna@example.com"},
		{"trimmed and lower-cased", "  Anna@Example.COM \n", "anna@example.com"},
		{"non-ASCII upper", "JÖRG@Example.com", "jörg@example.com"},
		{"non-ASCII lower", "jörg@example.com", "jörg@example.com"},
		{"plus local part", "anna+shop@example.com", "anna+shop@example.com"},
		{"unicode domain", "anna@bücher.de", "anna@bücher.de"},
		{"hyphen inside label", "a@my-shop.example", "a@my-shop.example"},
		{"single label domain", "root@localhost", "root@localhost"},
		{"local part at limit", strings.Repeat("a", 64) + "@x.io", strings.Repeat("a", 64) + "@x.io"},
		{"zero-width non-joiner", "a\u200cb@example.ir", "a\u200cb@example.ir"},
		{"quote in local part", "o'brien@example.ie", "o'brien@example.ie"},
	}
	for _, tt := range valid {
		t.Run("valid/"+tt.name, func(t *testing.T) {
			key, err := ParseEmail(tt.in)
			if err != nil {
				t.Fatalf("ParseEmail(%q): %v", tt.in, err)
			}
			if key != tt.key {
				t.Errorf("ParseEmail(%q) = %q, want %q", tt.in, key, tt.key)
			}
			if key != Key(tt.in) {
				t.Errorf("ParseEmail(%q) = %q, Key = %q", tt.in, key, Key(tt.in))
			}
		})
	}

	invalid := []struct{ name, in, reason string }{
		{"empty", "", "empty"},
		{"whitespace only", " \t ", "empty"},
		{"too long", strings.Repeat("a", 60) + "@" + strings.Repeat("b", 190) + ".com", "longer than 254 bytes"},
		{"invalid UTF-8", "anna\xff@example.com", "not valid UTF-8"},
		{"NUL", "anna\x00@example.com", "control character"},
		{"control", "anna\x1b@example.com", "control character"},
		{"C1 control", "anna\u0085x@example.com", "control character"},
		{"inner space", "anna schmidt@example.com", "whitespace"},
		{"no-break space", "anna\u00a0@example.com", "whitespace"},
		{"zero-width space", "an\u200bna@example.com", "invisible formatting character"},
		{"bidi override", "anna\u202e@example.com", "invisible formatting character"},
		{"byte order mark", "\ufeffanna@example.com", "invisible formatting character"},
		{"slash", "../../etc/passwd@example.com", "'/'"},
		{"encoded slash stays literal", "a%2Fb@example.com", ""},
		{"backslash", `anna\x@example.com`, "'/'"},
		{"no at", "anna.example.com", "exactly one '@'"},
		{"two ats", "anna@b@example.com", "exactly one '@'"},
		{"empty local", "@example.com", "empty local part"},
		{"local too long", strings.Repeat("a", 65) + "@x.io", "local part longer than 64 bytes"},
		{"empty domain", "anna@", "empty domain"},
		{"leading dot", "anna@.example.com", "empty label"},
		{"trailing dot", "anna@example.com.", "empty label"},
		{"double dot", "anna@example..com", "empty label"},
		{"leading hyphen", "anna@-example.com", "'-'"},
		{"trailing hyphen", "anna@example-.com", "'-'"},
		{"SQL", "' OR 1=1 --@example.com", "whitespace"},
	}
	for _, tt := range invalid {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			key, err := ParseEmail(tt.in)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("ParseEmail(%q): %v, want valid", tt.in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseEmail(%q) = %q, want an error", tt.in, key)
			}
			if !errors.Is(err, ErrInvalidEmail) {
				t.Errorf("error %v does not wrap ErrInvalidEmail", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if local, _, _ := strings.Cut(strings.TrimSpace(tt.in), "@"); len(local) > 2 && strings.Contains(err.Error(), local) {
				t.Errorf("error %q echoes the address", err)
			}
		})
	}
}

func TestParseEmailRefusesCaseLookAlikes(t *testing.T) {
	for name, email := range map[string]string{
		"Kelvin sign":      "\u212Aatherine.johnson@example.org",
		"dotted capital I": "\u0130da@example.org",
	} {
		t.Run(name, func(t *testing.T) {
			if key, err := ParseEmail(email); !errors.Is(err, ErrInvalidEmail) {
				t.Errorf("ParseEmail(%q) = %q, %v; want ErrInvalidEmail (its key would be another customer's)", email, key, err)
			}
		})
	}
}
