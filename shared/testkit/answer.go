package testkit

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// CheckHeaders checks the headers every HTTP answer carries: the JSON or
// problem+json content type by status, no-store and nosniff.
func CheckHeaders(t testing.TB, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	want := "application/problem+json"
	if resp.StatusCode == 200 {
		want = "application/json"
	}
	if h := resp.Headers; h["Content-Type"] != want || h["Cache-Control"] != "no-store" || h["X-Content-Type-Options"] != "nosniff" {
		t.Errorf("status %d headers %v, want Content-Type %s, no-store, nosniff", resp.StatusCode, h, want)
	}
}

// ProblemDetail decodes an RFC 9457 problem body, checks its members and
// that it quotes no email (an '@' may appear only as the quoted "'@'" of a
// reason), and returns its detail.
func ProblemDetail(t testing.TB, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	var p struct {
		Type, Title, Detail string
		Status              int
	}
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatalf("problem body is not JSON: %v: %q", err, resp.Body)
	}
	if p.Status != resp.StatusCode || p.Type != "about:blank" || p.Title == "" || p.Detail == "" {
		t.Errorf("problem %+v for status %d", p, resp.StatusCode)
	}
	if strings.Contains(strings.ReplaceAll(resp.Body, "'@'", ""), "@") {
		t.Errorf("problem body quotes an email: %s", resp.Body)
	}
	return p.Detail
}
