package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// FuzzLookupEvent drives Handle with an arbitrary path parameter, raw path
// and header, both systems up. The answer is exactly what the email's
// validity and the systems' contents call for: 400 for no or an invalid
// parameter, 200 with that very customer, or 404; never an error, a 5xx or
// an email in a problem body or in the logs.
func FuzzLookupEvent(f *testing.F) {
	for _, c := range hostileLookups {
		if len(c.email) <= 1024 { // the 1 MiB case stays in the table test
			f.Add(c.email, "/customer/"+c.email, "x-forwarded-for", "198.51.100.7", !c.noParam)
		}
	}
	f.Add(ada, "/customer/"+strings.ToUpper(ada), "content-type", "text/html; charset=\xff", true)
	f.Add("GRACE.HOPPER@example.com", "/customer/../admin", "cookie", "a=b\r\nx: y", true)
	f.Add(plusAddress, "/customer/ada%2Bbilling%40example.com", "", "", true)

	sys := hostileSystems(f)
	known := map[string]bool{}
	for _, r := range append(append([]*merge.Record{}, sys.A...), sys.B...) {
		known[r.Key()] = true
	}
	f.Fuzz(func(t *testing.T, email, rawPath, header, value string, hasParam bool) {
		req := events.APIGatewayV2HTTPRequest{
			RouteKey: "GET /customer/{email}",
			RawPath:  rawPath,
			Headers:  map[string]string{header: value},
		}
		req.RequestContext.HTTP.Path = rawPath
		req.RequestContext.HTTP.Method = "GET"
		if hasParam {
			req.PathParameters = map[string]string{"email": email}
		}
		key, parseErr := merge.ParseEmail(email)
		want := 404
		switch {
		case !hasParam || parseErr != nil:
			want = 400
		case known[key]:
			want = 200
		}

		h, logs, _ := newHandler(t, sys)
		before := sys.Calls.Load()
		resp, err := h.Handle(context.Background(), req)
		if err != nil {
			t.Fatalf("Handle returned an error: %v", err)
		}
		if resp.StatusCode != want {
			t.Fatalf("status = %d, want %d (email %q): %.300s", resp.StatusCode, want, email, resp.Body)
		}
		testkit.CheckHeaders(t, resp)
		if strings.Contains(logs.String(), "@") {
			t.Fatalf("logs carry an email: %.300s", logs.String())
		}
		if want == 400 && sys.Calls.Load() != before {
			t.Fatalf("a refused request called System B")
		}
		if want != 200 {
			// The reasons' texts hold '@' only as "'@'" between spaces, so an
			// input with an '@' and a letter or digit is in them only if echoed.
			in := strings.TrimSpace(email)
			if strings.Contains(in, "@") && strings.ContainsFunc(in, isAlnum) && strings.Contains(testkit.ProblemDetail(t, resp), in) {
				t.Fatalf("problem body contains the input %q: %s", email, resp.Body)
			}
			return
		}
		var body Response
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
			t.Fatalf("200 body is not a Response: %v", err)
		}
		if got := merge.Key(body.Email); got != key {
			t.Fatalf("asked for %q, answered with the customer %q", key, got)
		}
	})
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
