package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/webhook"
)

var (
	secret = []byte("whsec-current")
	old    = []byte("whsec-previous")
	t0     = time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	body   = []byte(`{"type":"updated","customer":{"email":"ada@example.com","lastUpdated":"2026-12-02T00:59:59Z"}}`)
)

// TestSignKnownAnswer pins the scheme: HMAC-SHA256 over "<unix>.<body>",
// checked against an independent computation (openssl dgst -sha256 -hmac).
func TestSignKnownAnswer(t *testing.T) {
	// printf '%s' '1796173200.{}' | openssl dgst -sha256 -hmac whsec-current
	got := webhook.Sign(secret, t0, []byte("{}"))
	want := "t=1796173200,v1=" + knownMAC
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

const knownMAC = "5652ea3fe6b4b1a53f288de598e6b509a68f5031856a966c8b235892722c0c16"

func TestVerify(t *testing.T) {
	good := webhook.Sign(secret, t0, body)
	tests := []struct {
		name    string
		header  string
		body    []byte
		secrets [][]byte
		now     time.Time
		want    error
	}{
		{"valid", good, body, [][]byte{secret}, t0, nil},
		{"valid at the edge of the tolerance", good, body, [][]byte{secret}, t0.Add(webhook.Tolerance), nil},
		{"valid under the previous secret during a rotation", webhook.Sign(old, t0, body), body, [][]byte{secret, old}, t0, nil},
		{"several v1 entries, one matches", good + ",v1=" + strings.Repeat("00", 32), body, [][]byte{secret}, t0, nil},
		{"unknown scheme ignored", good + ",v0=abc", body, [][]byte{secret}, t0, nil},
		{"replayed after the tolerance", good, body, [][]byte{secret}, t0.Add(webhook.Tolerance + time.Second), webhook.ErrTooOld},
		{"from the future", good, body, [][]byte{secret}, t0.Add(-webhook.Tolerance - time.Second), webhook.ErrTooOld},
		{"tampered body", good, []byte(strings.Replace(string(body), "updated", "deleted", 1)), [][]byte{secret}, t0, webhook.ErrBadSignature},
		{"another secret", good, body, [][]byte{[]byte("guess")}, t0, webhook.ErrBadSignature},
		{"time changed", strings.Replace(good, "t=1796173200", "t=1796173201", 1), body, [][]byte{secret}, t0, webhook.ErrBadSignature},
		{"missing", "", body, [][]byte{secret}, t0, webhook.ErrMissing},
		{"no time", "v1=" + strings.Repeat("ab", 32), body, [][]byte{secret}, t0, webhook.ErrMalformed},
		{"two times", "t=1,t=2,v1=" + strings.Repeat("ab", 32), body, [][]byte{secret}, t0, webhook.ErrMalformed},
		{"no signature", "t=1796173200", body, [][]byte{secret}, t0, webhook.ErrMalformed},
		{"short signature", "t=1796173200,v1=abcd", body, [][]byte{secret}, t0, webhook.ErrMalformed},
		{"not hex", "t=1796173200,v1=" + strings.Repeat("zz", 32), body, [][]byte{secret}, t0, webhook.ErrMalformed},
		{"negative time", "t=-5,v1=" + strings.Repeat("ab", 32), body, [][]byte{secret}, t0, webhook.ErrMalformed},
		{"no equals sign", "t1796173200", body, [][]byte{secret}, t0, webhook.ErrMalformed},
		{"huge header", "t=1796173200,v1=" + strings.Repeat("a", webhook.MaxHeaderBytes), body, [][]byte{secret}, t0, webhook.ErrMalformed},
		{"no secret configured", good, body, nil, t0, webhook.ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signed, err := webhook.Verify(tt.header, tt.body, tt.secrets, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if tt.want == nil {
				if !signed.Equal(t0) {
					t.Errorf("signed time = %v, want %v", signed, t0)
				}
				return
			}
			if !errors.Is(err, merge.ErrUnauthorized) {
				t.Errorf("err %v is not of kind unauthorized", err)
			}
			if strings.Contains(err.Error(), "whsec") || strings.Contains(err.Error(), "ada@") {
				t.Errorf("the error quotes a secret or the body: %v", err)
			}
		})
	}
}

func TestParseSecrets(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
		ok   bool
	}{
		{"one", "s1", 1, true},
		{"rotation", " s1 , s2 ", 2, true},
		{"blank entries dropped", "s1,,", 1, true},
		{"empty", " ", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := webhook.ParseSecrets(tt.in)
			if (err == nil) != tt.ok || len(got) != tt.want {
				t.Errorf("ParseSecrets(%q) = %d secrets, %v; want %d, ok %v", tt.in, len(got), err, tt.want, tt.ok)
			}
		})
	}
}
