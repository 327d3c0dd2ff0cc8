package testkit

import (
	"context"
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

// ServeFixture runs the API Gateway fixture events/name through handle and
// checks what every fixture answer must show: no Go error, the wanted
// status, the headers (CheckHeaders) and the body equal to the golden file
// testdata/<name without .json>.golden.json.
func ServeFixture(t testing.TB, name string, wantStatus int,
	handle func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error),
) (events.APIGatewayV2HTTPRequest, events.APIGatewayV2HTTPResponse) {
	t.Helper()
	var req events.APIGatewayV2HTTPRequest
	Event(t, name, &req)
	resp, err := handle(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: Handle returned an error: %v", name, err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s: status = %d, want %d: %s", name, resp.StatusCode, wantStatus, resp.Body)
	}
	CheckHeaders(t, resp)
	Golden(t, strings.TrimSuffix(name, ".json")+".golden.json", []byte(resp.Body))
	return req, resp
}
