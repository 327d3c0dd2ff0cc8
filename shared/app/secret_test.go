package app

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// fakeSecrets is a Secrets Manager API holding one secret value.
type fakeSecrets struct {
	mu    sync.Mutex
	value string
	err   error
	reads int
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.GetSecretValueOutput{ARN: in.SecretId, SecretString: aws.String(f.value)}, nil
}

func TestSecretTokenCache(t *testing.T) {
	start := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		after     time.Duration // since the first read
		refresh   bool          // Refresh instead of Token
		failRead  bool          // the second read fails
		wantTok   string
		wantReads int
		wantErr   bool
	}{
		{"cached within the ttl", 59 * time.Minute, false, false, "old", 1, false},
		{"read again after the ttl", time.Hour, false, false, "new", 2, false},
		{"refresh bypasses the cache", time.Second, true, false, "new", 2, false},
		{"failed refresh", time.Second, true, true, "", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			sm := &fakeSecrets{value: " old\n"}
			s := &secretToken{client: sm, arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:b", ttl: time.Hour, now: func() time.Time { return now }}
			if tok, err := s.Token(context.Background()); tok != "old" || err != nil {
				t.Fatalf("first Token = %q, %v", tok, err)
			}
			sm.value = "new"
			if tt.failRead {
				sm.err = errors.New("throttled")
			}
			now = now.Add(tt.after)
			get := s.Token
			if tt.refresh {
				get = s.Refresh
			}
			tok, err := get(context.Background())
			if tok != tt.wantTok || (err != nil) != tt.wantErr || sm.reads != tt.wantReads {
				t.Errorf("got %q, %v after %d reads; want %q, error %v, %d reads", tok, err, sm.reads, tt.wantTok, tt.wantErr, tt.wantReads)
			}
			if tt.failRead { // the cached token is kept
				if tok, err := s.Token(context.Background()); tok != "old" || err != nil {
					t.Errorf("Token after a failed refresh = %q, %v; want the cached one", tok, err)
				}
			}
		})
	}
}

// TestSecretErrorsNameTheSetting: the webhook secret's reader names its own
// setting in errors, the token's reader keeps naming the token's.
func TestSecretErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		name, setting, want string
	}{
		{"token", "", "SYSTEM_B_TOKEN_SECRET_ARN"},
		{"webhook secret", "SYSTEM_B_WEBHOOK_SECRET_ARN", "SYSTEM_B_WEBHOOK_SECRET_ARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &secretToken{client: &fakeSecrets{err: errors.New("AccessDenied")}, arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
				ttl: time.Minute, now: time.Now, setting: tt.setting}
			if _, err := s.Token(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
