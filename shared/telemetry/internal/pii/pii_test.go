package pii

import "testing"

func TestSensitiveKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"email", true},
		{"Email", true},
		{"EMAIL", true},
		{"emails", true},
		{"phone", true},
		{"phone_number", true},
		{"firstName", true},
		{"first_name", true},
		{"lastName", true},
		{"last-name", true},
		{"token", true},
		{"systemBToken", true},
		{"SYSTEM_B_TOKEN", true},
		{"Authorization", true},
		{"password", true},
		{"clientSecret", true},
		{"emailHash", false},
		{"requestId", false},
		{"field", false},
		{"msg", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := SensitiveKey(tt.key); got != tt.want {
				t.Errorf("SensitiveKey(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no address", "snapshot refreshed", "snapshot refreshed"},
		{"empty", "", ""},
		{"plain", "ana@example.com", "[email]"},
		{"in sentence", "lookup of Ana.Lima+x@Example.COM failed", "lookup of [email] failed"},
		{"in url path", `Get "http://b.local/v1/customers/ana@example.com": EOF`, `Get "http://b.local/v1/customers/[email]": EOF`},
		{"query escaped", "GET /c?email=ana%40example.com&x=1", "GET /c?email=[email]&x=1"},
		{"two", "a@b.c, d@e.f", "[email], [email]"},
		{"non-ascii", "für josé@exämple.de.", "für [email]"},
		{"lone at", "meet @ noon", "meet @ noon"},
		{"handle", "ping @ana", "ping @ana"},
		{"trailing at", "ana@", "ana@"},
		{"percent other", "100%41 done", "100%41 done"},
		{"percent at end", "50%4", "50%4"},
		{"angle", "<ana@example.com>", "<[email]>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Scrub(tt.in); got != tt.want {
				t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func BenchmarkScrubClean(b *testing.B) {
	for b.Loop() {
		Scrub("snapshot refreshed in 12ms, version 3")
	}
}
