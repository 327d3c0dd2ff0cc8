package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// hostileBody is a hostile POST /customer/sync body and the answer it must
// get: a 4xx with a reason, or 200 with the customers' presence.
type hostileBody struct {
	name      string
	body      string
	b64       bool // sent base64-encoded, as API Gateway does for binary bodies
	status    int
	reason    string   // in the problem's detail
	presentIn []string // for a 200 with one result: where the customer is
}

// emailList renders {"emails": [...]} with n entries made by item.
func emailList(n int, item func(i int) string) string {
	list := make([]string, n)
	for i := range list {
		list[i] = item(i)
	}
	b, _ := json.Marshal(map[string][]string{"emails": list})
	return string(b)
}

func nestedArrays(n int) string {
	return `{"emails":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
}

const mib = 1 << 20

var both = []string{"systemA", "systemB"}

var hostileBodies = []hostileBody{
	// Sizes.
	{name: "1 MiB body", body: `{"email":"` + strings.Repeat("a", mib) + `@example.com"}`, status: 413, reason: "larger than 65536 bytes"},
	{name: "1 MiB body base64", body: base64.StdEncoding.EncodeToString(make([]byte, mib)), b64: true, status: 413, reason: "larger than 65536 bytes"},
	{name: "10,000 emails over 64 KiB", body: emailList(10000, func(i int) string { return fmt.Sprintf("c%d@example.com", i) }), status: 413, reason: "larger than"},
	{name: "10,000 empty emails under 64 KiB", body: emailList(10000, func(int) string { return "" }), status: 400, reason: `"emails" has 10000 entries; at most 100`},
	{name: "100 emails is the limit", body: emailList(100, func(i int) string { return fmt.Sprintf("c%d@example.com", i) }), status: 200},
	// JSON shape.
	{name: "duplicate key", body: `{"email":"a@x.com","email":"` + demodata.ShowcaseInSync + `"}`, status: 400, reason: `repeats the key "email"`},
	{name: "duplicate key by case", body: `{"email":"a@x.com","EMAIL":"` + demodata.ShowcaseInSync + `"}`, status: 400, reason: "repeats the key"},
	{name: "duplicate key by Unicode folding", body: `{"emails":["a@x.com"],"email\u017f":["` + demodata.ShowcaseInSync + `"]}`, status: 400, reason: "repeats the key"},
	{name: "10,000 levels of nesting", body: nestedArrays(10000), status: 400, reason: "nests deeper than 16"},
	{name: "10,000 unclosed arrays", body: strings.Repeat("[", 10000), status: 400, reason: "nests deeper than 16"},
	{name: "email as an unknown key", body: `{"email":"a@x.com","ada.lovelace@example.com":true}`, status: 400, reason: "unknown field"},
	{name: "email as a duplicate key", body: `{"ada.lovelace@example.com":1,"ada.lovelace@example.com":2}`, status: 400, reason: "repeats the key"},
	{name: "null in the list", body: `{"emails":[null]}`, status: 400, reason: `"emails"[0]: invalid email: empty`},
	{name: "email is a list", body: `{"email":["a@x.com"]}`, status: 400, reason: "wrong type"},
	{name: "emails is a string", body: `{"emails":"a@x.com"}`, status: 400, reason: "wrong type"},
	// Bytes that are not text.
	{name: "invalid UTF-8", body: "{\"email\":\"ada\xff@example.com\"}", status: 400, reason: "not valid UTF-8"},
	{name: "invalid UTF-8 base64", body: base64.StdEncoding.EncodeToString([]byte("{\"email\":\"ada\xff@example.com\"}")), b64: true, status: 400, reason: "not valid UTF-8"},
	{name: "UTF-16 surrogate half", body: "{\"email\":\"ada\xed\xa0\x80@example.com\"}", status: 400, reason: "not valid UTF-8"},
	{name: "escaped NUL byte", body: `{"email":"ada.lovelace@example.com\u0000"}`, status: 400, reason: "contains a control character"},
	{name: "raw NUL byte", body: "{\"email\":\"ada\x00@example.com\"}", status: 400, reason: "not valid JSON"},
	{name: "escaped lone surrogate", body: `{"email":"ada\ud800@example.com"}`, status: 200, presentIn: []string{}},
	// Emails.
	{name: "SQL stacked statement", body: `{"emails":["a@x.com; DROP TABLE customers"]}`, status: 400, reason: `"emails"[0]: invalid email: contains whitespace`},
	{name: "SQL without spaces", body: `{"email":"'OR'1'='1'--@x.com"}`, status: 200, presentIn: []string{}},
	{name: "path traversal", body: `{"email":"../../etc/passwd"}`, status: 400, reason: "contains '/'"},
	{name: "decoded %2F", body: `{"email":"a/../b@x.com"}`, status: 400, reason: "contains '/'"},
	{name: "zero-width space", body: `{"email":"ada\u200b.lovelace@example.com"}`, status: 400, reason: "invisible formatting character"},
	{name: "local part of 65 bytes", body: `{"email":"` + strings.Repeat("a", 65) + `@example.com"}`, status: 400, reason: "local part longer than 64 bytes"},
	{name: "many @", body: `{"emails":["ada@lovelace@example.com"]}`, status: 400, reason: "exactly one '@'"},
	{name: "upper case", body: `{"email":"ADA.LOVELACE@EXAMPLE.COM"}`, status: 200, presentIn: both},
	{name: "plus address", body: `{"email":"Ada.Lovelace+billing@example.com"}`, status: 200, presentIn: []string{}},
	{name: "Cyrillic look-alike", body: `{"email":"\u0430da.lovelace@example.com"}`, status: 200, presentIn: []string{}},
	{name: "fullwidth look-alike", body: `{"email":"\uff41da.lovelace@example.com"}`, status: 200, presentIn: []string{}},
}

// checkAnswer insists on what every answer must be: no Go error, a status
// in allowed, the headers, no email in the logs nor in a problem body (an
// '@' appears only as the quoted "'@'" of a reason), no System B call for a
// refused request. It returns the problem's detail ("" for a 200).
func checkAnswer(t *testing.T, sys *testkit.Systems, req events.APIGatewayV2HTTPRequest, allowed ...int) (events.APIGatewayV2HTTPResponse, string) {
	t.Helper()
	h, logs, _ := newHandler(t, sys)
	before := sys.Calls.Load()
	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	if !slices.Contains(allowed, resp.StatusCode) {
		t.Fatalf("status = %d, want one of %v: %.300s", resp.StatusCode, allowed, resp.Body)
	}
	if strings.Contains(logs.String(), "@") {
		t.Fatalf("logs carry an email: %.300s", logs.String())
	}
	testkit.CheckHeaders(t, resp)
	if resp.StatusCode == 200 {
		return resp, ""
	}
	if calls := sys.Calls.Load() - before; calls != 0 {
		t.Fatalf("a refused body called System B %d times", calls)
	}
	return resp, testkit.ProblemDetail(t, resp)
}

func TestHostileSyncBodies(t *testing.T) {
	sys := testkit.NewSystems(t, 20)
	for _, tt := range hostileBodies {
		t.Run(tt.name, func(t *testing.T) {
			req := events.APIGatewayV2HTTPRequest{Body: tt.body, IsBase64Encoded: tt.b64}
			resp, detail := checkAnswer(t, sys, req, tt.status)
			if tt.status != 200 {
				if !strings.Contains(detail, tt.reason) {
					t.Errorf("detail %q does not give the reason %q", detail, tt.reason)
				}
				return
			}
			r := decode(t, resp.Body)
			if tt.presentIn == nil {
				return
			}
			if len(r.Results) != 1 {
				t.Fatalf("%d results, want 1", len(r.Results))
			}
			got := fmt.Sprint(r.Results[0].PresentIn)
			if want := fmt.Sprint(tt.presentIn); got != want {
				t.Errorf("presentIn = %s, want %s", got, want)
			}
		})
	}
}

// FuzzSyncBody sends arbitrary body bytes, both systems up: the answer is
// 200, 400 or 413 (413 exactly when the body is over MaxBodyBytes), never an
// error or a 5xx; a refused body calls no system; a 200 answers each
// distinct valid email once with its true presence; the same bytes sent
// base64-encoded get the same answer. With b64 the bytes themselves are
// sent marked as base64.
func FuzzSyncBody(f *testing.F) {
	for _, c := range hostileBodies {
		if len(c.body) <= 4096 {
			f.Add([]byte(c.body), c.b64)
		}
	}
	for _, name := range testkit.Events(f, "sync-") {
		var req events.APIGatewayV2HTTPRequest
		testkit.Event(f, name, &req)
		f.Add([]byte(req.Body), req.IsBase64Encoded)
	}
	f.Add([]byte("e30="), true)
	f.Add([]byte("eyJlbWFpbCI6ImFAeC5jb20ifQ"), true) // unpadded

	sys := testkit.NewSystems(f, 20)
	presence := map[string][]merge.Source{}
	for _, side := range []struct {
		recs []*merge.Record
		src  merge.Source
	}{{sys.A, merge.SystemA}, {sys.B, merge.SystemB}} {
		for _, r := range side.recs {
			presence[r.Key()] = append(presence[r.Key()], side.src)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, b64 bool) {
		if b64 {
			checkAnswer(t, sys, events.APIGatewayV2HTTPRequest{Body: string(body), IsBase64Encoded: true}, 200, 400, 413)
			return
		}
		before := sys.Calls.Load()
		resp, _ := checkAnswer(t, sys, events.APIGatewayV2HTTPRequest{Body: string(body)}, 200, 400, 413)
		calls := sys.Calls.Load() - before
		if (resp.StatusCode == 413) != (len(body) > MaxBodyBytes) {
			t.Fatalf("status %d for a body of %d bytes", resp.StatusCode, len(body))
		}
		encoded, _ := checkAnswer(t, sys, events.APIGatewayV2HTTPRequest{
			Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
		}, 200, 400, 413)
		if encoded.StatusCode != resp.StatusCode || encoded.Body != resp.Body {
			t.Fatalf("base64 changes the answer: %d %.200s, plain %d %.200s", encoded.StatusCode, encoded.Body, resp.StatusCode, resp.Body)
		}
		if resp.StatusCode != 200 {
			return
		}
		r := decode(t, resp.Body)
		if len(r.Results) == 0 || len(r.Results) > MaxEmails || calls != int64(len(r.Results)) {
			t.Fatalf("%d results, %d System B calls", len(r.Results), calls)
		}
		seen := map[string]bool{}
		for _, res := range r.Results {
			key, err := merge.ParseEmail(res.Email)
			if err != nil || seen[key] {
				t.Fatalf("result for %q: parse error %v, repeated %v", res.Email, err, seen[key])
			}
			seen[key] = true
			if got, want := fmt.Sprint(res.PresentIn), fmt.Sprint(presence[key]); got != want {
				t.Fatalf("%q: presentIn %s, want %s", res.Email, got, want)
			}
		}
	})
}
