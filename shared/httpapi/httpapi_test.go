package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// nested returns n levels of arrays around a scalar.
func nested(n int) string {
	return strings.Repeat("[", n) + "1" + strings.Repeat("]", n)
}

// target is a struct like the functions' request bodies.
type target struct {
	Email  *string   `json:"email"`
	Emails *[]string `json:"emails"`
	Limit  int       `json:"limit"`
}

func TestDecodeStrictRejects(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		reason string
	}{
		{"empty", ``, "empty"},
		{"only white space", " \n\t ", "empty"},
		{"not JSON", `email=a@x.com`, "not valid JSON"},
		{"truncated", `{"email":"a@x.com"`, "not valid JSON"},
		{"trailing data", `{"email":"a@x.com"} {}`, "after the JSON value"},
		{"trailing garbage", `{"email":"a@x.com"}x`, "after the JSON value"},
		{"duplicate key", `{"email":"a@x.com","email":"b@x.com"}`, `repeats the key "email"`},
		{"duplicate key by escape", `{"email":"a@x.com","\u0065mail":"b@x.com"}`, "repeats the key"},
		{"duplicate key by case", `{"email":"a@x.com","EMAIL":"b@x.com"}`, "repeats the key"},
		{"duplicate key by Unicode folding", `{"emails":["a@x.com"],"email\u017f":["b@x.com"]}`, "repeats the key"},
		{"duplicate key in a nested object", `{"emails":[{"a":1,"a":2}]}`, "repeats the key"},
		{"nesting one level too deep", nested(MaxNesting + 1), "nests deeper than 16"},
		{"nesting 10,000 levels", nested(10000), "nests deeper than 16"},
		{"nesting 10,000 open objects", strings.Repeat(`{"a":`, 10000), "nests deeper than 16"},
		{"unknown field", `{"email":"a@x.com","overwrite":true}`, `unknown field "overwrite"`},
		{"wrong type", `{"email":42}`, `field "email" has the wrong type`},
		{"not an object", `["a@x.com"]`, "wrong type"},
		{"invalid UTF-8 in a value", "{\"email\":\"a\xffb@x.com\"}", "not valid UTF-8"},
		{"invalid UTF-8 in a key", "{\"e\xffmail\":\"a@x.com\"}", "not valid UTF-8"},
		{"a UTF-16 surrogate half", "{\"email\":\"a\xed\xa0\x80@x.com\"}", "not valid UTF-8"},
		{"NUL byte outside a string", "{\"email\":\"a@x.com\"\x00}", "not valid JSON"},
		{"raw NUL byte in a string", "{\"email\":\"a\x00@x.com\"}", "not valid JSON"},
		{"number out of range", `{"limit":1e400}`, "wrong type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v target
			err := DecodeStrict([]byte(tt.body), &v)
			if err == nil {
				t.Fatalf("accepted %q as %+v", tt.body, v)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not give the reason %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), "x.com") {
				t.Errorf("error %q quotes a value", err)
			}
		})
	}
}

func TestDecodeStrictQuotesNoEmail(t *testing.T) {
	long := strings.Repeat("k", 100)
	tests := []struct {
		name string
		body string
	}{
		{"email as an unknown key", `{"ada.lovelace@example.com":true}`},
		{"email as a duplicate key", `{"email":"x","ada.lovelace@example.com":1,"ada.lovelace@example.com":2}`},
		{"email as a nested duplicate key", `{"emails":[{"grace@example.com":1,"grace@example.com":2}]}`},
		{"a long unknown key", `{"` + long + `":1}`},
		{"a long duplicate key", `{"` + long + `":1,"` + long + `":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v target
			err := DecodeStrict([]byte(tt.body), &v)
			if err == nil {
				t.Fatalf("accepted %q", tt.body)
			}
			if msg := err.Error(); strings.Contains(msg, "@") || strings.Contains(msg, long[:50]) {
				t.Errorf("error %q quotes the client's key", msg)
			}
		})
	}
}

func TestDecodeStrictAccepts(t *testing.T) {
	tests := []struct {
		name string
		body string
		want target
	}{
		{"one email", `{"email":"a@x.com"}`, target{Email: ptr("a@x.com")}},
		{"surrounding white space", " \r\n{\"email\" : \"a@x.com\"}\n", target{Email: ptr("a@x.com")}},
		{"emails", `{"emails":["a@x.com","B@x.com"]}`, target{Emails: &[]string{"a@x.com", "B@x.com"}}},
		{"escaped unicode", `{"email":"j\u00f6rg@x.com"}`, target{Email: ptr("jörg@x.com")}},
		{"escaped NUL is valid JSON", `{"email":"a\u0000b"}`, target{Email: ptr("a\x00b")}},
		{"null leaves the field unset", `{"email":null,"limit":1}`, target{Limit: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got target
			if err := DecodeStrict([]byte(tt.body), &got); err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tt.want)
			if string(gb) != string(wb) {
				t.Errorf("got %s, want %s", gb, wb)
			}
		})
	}
}

func TestDecodeStrictNestingLimit(t *testing.T) {
	var v any
	if err := DecodeStrict([]byte(nested(MaxNesting)), &v); err != nil {
		t.Errorf("%d levels: %v", MaxNesting, err)
	}
	if err := DecodeStrict([]byte(nested(MaxNesting+1)), &v); err == nil {
		t.Errorf("%d levels accepted", MaxNesting+1)
	}
}

func ptr(s string) *string { return &s }

func TestBody(t *testing.T) {
	const max = 64
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		want   string
		status int // 0: accepted
	}{
		{"plain", events.APIGatewayV2HTTPRequest{Body: "{}"}, "{}", 0},
		{"empty", events.APIGatewayV2HTTPRequest{}, "", 0},
		{"exactly the limit", events.APIGatewayV2HTTPRequest{Body: strings.Repeat("a", max)}, strings.Repeat("a", max), 0},
		{"one byte over", events.APIGatewayV2HTTPRequest{Body: strings.Repeat("a", max+1)}, "", http.StatusRequestEntityTooLarge},
		{"1 MiB", events.APIGatewayV2HTTPRequest{Body: strings.Repeat("a", 1<<20)}, "", http.StatusRequestEntityTooLarge},
		{"base64", events.APIGatewayV2HTTPRequest{Body: b64([]byte("{\x00}")), IsBase64Encoded: true}, "{\x00}", 0},
		{"base64 at the limit", events.APIGatewayV2HTTPRequest{Body: b64([]byte(strings.Repeat("a", max))), IsBase64Encoded: true}, strings.Repeat("a", max), 0},
		{"base64 one byte over", events.APIGatewayV2HTTPRequest{Body: b64([]byte(strings.Repeat("a", max+1))), IsBase64Encoded: true}, "", http.StatusRequestEntityTooLarge},
		{"base64 of 1 MiB", events.APIGatewayV2HTTPRequest{Body: b64(make([]byte, 1<<20)), IsBase64Encoded: true}, "", http.StatusRequestEntityTooLarge},
		{"invalid base64", events.APIGatewayV2HTTPRequest{Body: "%%%", IsBase64Encoded: true}, "", http.StatusBadRequest},
		{"unpadded base64", events.APIGatewayV2HTTPRequest{Body: "e30", IsBase64Encoded: true}, "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, p := Body(&tt.req, max)
			switch {
			case tt.status == 0 && p != nil:
				t.Fatalf("refused: %v", p)
			case tt.status != 0 && p == nil:
				t.Fatalf("accepted %d bytes", len(got))
			case tt.status != 0 && (p.Status != tt.status || p.Detail == ""):
				t.Fatalf("problem %+v, want status %d with a reason", p, tt.status)
			case tt.status == 0 && string(got) != tt.want:
				t.Errorf("body %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	tests := []struct {
		name        string
		resp        events.APIGatewayV2HTTPResponse
		status      int
		contentType string
	}{
		{"JSON", JSON(http.StatusOK, map[string]string{"a": "b"}), 200, ContentTypeJSON},
		{"problem", NewProblem(http.StatusBadRequest, "bad").Response(), 400, ContentTypeProblem},
		{"problem 413", NewProblem(http.StatusRequestEntityTooLarge, "big").Response(), 413, ContentTypeProblem},
		{"a value that cannot be encoded", JSON(http.StatusOK, math.NaN()), 500, ContentTypeProblem},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.resp.Headers
			if tt.resp.StatusCode != tt.status || h["Content-Type"] != tt.contentType ||
				h["Cache-Control"] != "no-store" || h["X-Content-Type-Options"] != "nosniff" {
				t.Errorf("status %d headers %v, want %d %s, no-store, nosniff", tt.resp.StatusCode, h, tt.status, tt.contentType)
			}
			if !json.Valid([]byte(tt.resp.Body)) {
				t.Errorf("body is not JSON: %s", tt.resp.Body)
			}
			if tt.contentType != ContentTypeProblem {
				return
			}
			var p Problem
			if err := json.Unmarshal([]byte(tt.resp.Body), &p); err != nil || p.Status != tt.status ||
				p.Title != http.StatusText(tt.status) || p.Type != "about:blank" || p.Detail == "" {
				t.Errorf("problem body %s (%v)", tt.resp.Body, err)
			}
		})
	}
}
