package testkit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// SecretsManager is a fake AWS Secrets Manager holding string secrets. It
// serves GetSecretValue over HTTP on 127.0.0.1 (the AWS JSON 1.1 protocol,
// signatures not checked), so tests run the real SDK client against it by
// setting AWS_ENDPOINT_URL_SECRETS_MANAGER to its URL. It is safe for
// concurrent use.
type SecretsManager struct {
	URL string // the endpoint

	mu      sync.Mutex
	secrets map[string]string // by secret id (the ARN)
	reads   map[string]int
}

// NewSecretsManager starts a SecretsManager that stops when the test ends.
func NewSecretsManager(t testing.TB) *SecretsManager {
	t.Helper()
	s := &SecretsManager{secrets: map[string]string{}, reads: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Put stores value as the current version of secret id (a rotation when
// it already exists).
func (s *SecretsManager) Put(id, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[id] = value
}

// Reads returns how many GetSecretValue calls secret id has served.
func (s *SecretsManager) Reads(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[id]
}

func (s *SecretsManager) serveHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
	}
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
		fail(http.StatusBadRequest, "InvalidRequestException", "only GetSecretValue is served")
		return
	}
	var in struct{ SecretId string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(http.StatusBadRequest, "InvalidParameterException", "the body is not JSON")
		return
	}
	s.mu.Lock()
	v, ok := s.secrets[in.SecretId]
	if ok {
		s.reads[in.SecretId]++
	}
	s.mu.Unlock()
	if !ok {
		fail(http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ARN": in.SecretId, "Name": "system-b-token", "SecretString": v, "VersionId": "v1", "VersionStages": []string{"AWSCURRENT"},
	})
}
