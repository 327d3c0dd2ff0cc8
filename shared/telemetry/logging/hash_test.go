package logging

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

func TestEmailHasher(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	h := NewEmailHasher(key)
	if h.RandomKey() {
		t.Errorf("RandomKey() = true with a key")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("ana.lima@example.com"))
	want := hex.EncodeToString(mac.Sum(nil))[:16]

	tests := []struct{ name, email string }{
		{"canonical", "ana.lima@example.com"},
		{"upper case", "Ana.Lima@EXAMPLE.com"},
		{"spaces", "  ana.lima@example.com\t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.Hash(tt.email); got != want {
				t.Errorf("Hash(%q) = %s, want %s", tt.email, got, want)
			}
		})
	}
	if h.Hash("bob@example.com") == want {
		t.Errorf("two addresses hash alike")
	}
	if NewEmailHasher([]byte("other key")).Hash("ana.lima@example.com") == want {
		t.Errorf("the key does not change the hash")
	}
	key[0] = 'X' // the hasher keeps its own copy
	if h.Hash("ana.lima@example.com") != want {
		t.Errorf("changing the caller's key slice changed the hash")
	}
}

func TestEmailHasherRandomKey(t *testing.T) {
	a, b := NewEmailHasher(nil), NewEmailHasher([]byte{})
	if !a.RandomKey() || !b.RandomKey() {
		t.Fatalf("RandomKey() = false without a key")
	}
	if a.Hash("ana@example.com") == b.Hash("ana@example.com") {
		t.Errorf("two random keys gave the same hash")
	}
	if a.Hash("ana@example.com") != a.Hash("ANA@example.com") {
		t.Errorf("one hasher is not stable")
	}
}

func TestEmailHashAttrInLog(t *testing.T) {
	l, buf := newTest(t)
	h := NewEmailHasher([]byte("k"))
	l.Info("lookup", h.Attr("Ana.Lima@Example.com"))
	if strings.Contains(strings.ToLower(buf.String()), "ana.lima") {
		t.Fatalf("clear address in output: %s", buf.String())
	}
	got := lines(t, buf)[0][EmailHashKey]
	if s, _ := got.(string); !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(s) || s != h.Hash("ana.lima@example.com") {
		t.Errorf("emailHash = %v", got)
	}
}
