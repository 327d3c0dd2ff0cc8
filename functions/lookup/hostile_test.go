package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// plusAddress is a customer whose address has a '+' tag; hostileSystems
// adds it to both systems (the generator makes none).
const plusAddress = "ada+billing@example.com"

// hostileSystems returns the generator's systems plus a customer at
// plusAddress, a copy of ShowcaseInSync under that address.
func hostileSystems(t testing.TB) *testkit.Systems {
	t.Helper()
	sys := testkit.NewSystems(t, 20)
	byKey := func(a, b *merge.Record) int { return strings.Compare(a.Key(), b.Key()) }
	for _, side := range []*[]*merge.Record{&sys.A, &sys.B} {
		i := slices.IndexFunc(*side, func(r *merge.Record) bool { return r.Key() == demodata.ShowcaseInSync })
		if i < 0 {
			t.Fatalf("the generator has no %s", demodata.ShowcaseInSync)
		}
		plus := *(*side)[i]
		plus.Values[merge.FieldEmail] = plusAddress
		*side = append(*side, &plus)
		slices.SortFunc(*side, byKey)
	}
	return sys
}

// hostileLookup is a hostile GET /customer/{email} and the answer it must
// get: a 4xx with a reason, or 200 with the customer whose join key is key.
type hostileLookup struct {
	name    string
	email   string // the path parameter, as API Gateway delivers it (URL-decoded)
	noParam bool   // no {email} path parameter at all
	body    string
	status  int
	reason  string // in the problem's detail
	key     string // the join key of the customer a 200 answers with
}

const (
	ada      = demodata.ShowcaseInSync
	mib      = 1 << 20
	notFound = "no customer with this email"
	invalid  = "invalid email: "
)

var hostileLookups = []hostileLookup{
	// SQL-looking input is only ever a key: refused for its characters, or not found.
	{name: "SQL or-true", email: `' OR 1=1 --@x.com`, status: 400, reason: invalid + "contains whitespace"},
	{name: "SQL stacked statement", email: `a@x.com; DROP TABLE customers`, status: 400, reason: invalid + "contains whitespace"},
	{name: "SQL without spaces", email: `'OR'1'='1'--@x.com`, status: 404, reason: notFound},
	{name: "SQL comment in a real local part", email: `ada.lovelace'--@example.com`, status: 404, reason: notFound},
	{name: "SQL quote after a real email", email: ada + `'`, status: 404, reason: notFound},
	{name: "SQL LIKE wildcard", email: `%@example.com`, status: 404, reason: notFound},
	{name: "SQL LIKE single character", email: `_da.lovelace@example.com`, status: 404, reason: notFound},
	{name: "GLOB wildcards", email: `*@example.com`, status: 404, reason: notFound},
	{name: "GLOB class", email: `[a]da.lovelace@example.com`, status: 404, reason: notFound},
	// Path traversal and slashes in the segment.
	{name: "path traversal", email: `../../etc/passwd`, status: 400, reason: invalid + `contains '/' or '\'`},
	{name: "decoded %2F traversal", email: `a/../b@x.com`, status: 400, reason: invalid + `contains '/' or '\'`},
	{name: "slash", email: `a/b@x.com`, status: 400, reason: invalid + `contains '/' or '\'`},
	{name: "backslash traversal", email: `..\..\b@x.com`, status: 400, reason: invalid + `contains '/' or '\'`},
	{name: "second email after a slash", email: ada + "/../" + demodata.ShowcaseConflict, status: 400, reason: invalid},
	{name: "literal %2F left encoded", email: `a%2F..%2Fb@x.com`, status: 404, reason: notFound},
	{name: "encoded @ left encoded", email: `ada.lovelace%40example.com`, status: 400, reason: invalid + "must contain exactly one '@'"},
	// Bytes that are not text.
	{name: "invalid UTF-8", email: "ada\xff@example.com", status: 400, reason: invalid + "not valid UTF-8"},
	{name: "overlong UTF-8 dot", email: "ada\xc0\xaelovelace@example.com", status: 400, reason: invalid + "not valid UTF-8"},
	{name: "UTF-16 surrogate half", email: "ada\xed\xa0\x80@example.com", status: 400, reason: invalid + "not valid UTF-8"},
	{name: "NUL byte inside", email: "ada\x00.lovelace@example.com", status: 400, reason: invalid + "contains a control character"},
	{name: "NUL byte after a real email", email: ada + "\x00", status: 400, reason: invalid + "contains a control character"},
	{name: "CRLF header injection", email: ada + "\r\nSet-Cookie: a=b", status: 400, reason: invalid},
	// Sizes.
	{name: "1 MiB path parameter", email: strings.Repeat("a", mib) + "@example.com", status: 400, reason: invalid + "longer than 254 bytes"},
	{name: "local part of 65 bytes", email: strings.Repeat("a", 65) + "@example.com", status: 400, reason: invalid + "local part longer than 64 bytes"},
	{name: "local part of 64 bytes is valid", email: strings.Repeat("a", 64) + "@example.com", status: 404, reason: notFound},
	{name: "1 MiB body on a GET is ignored", email: ada, body: strings.Repeat(`{"a":`, mib/5), status: 200, key: ada},
	// The '@'.
	{name: "many @", email: "a@b@c@example.com", status: 400, reason: invalid + "must contain exactly one '@'"},
	{name: "only @s", email: strings.Repeat("@", 200), status: 400, reason: invalid + "must contain exactly one '@'"},
	{name: "no local part", email: "@example.com", status: 400, reason: invalid + "empty local part before '@'"},
	{name: "no domain", email: "ada@", status: 400, reason: invalid + "empty domain after '@'"},
	{name: "empty", email: "", status: 400, reason: invalid + "empty"},
	{name: "white space only", email: " \t ", status: 400, reason: invalid + "empty"},
	{name: "no path parameter", noParam: true, status: 400, reason: "the path must be /customer/{email}"},
	// Valid spellings of real customers.
	{name: "upper case", email: strings.ToUpper(ada), status: 200, key: ada},
	{name: "mixed case and surrounding spaces", email: " Ada.Lovelace@Example.COM ", status: 200, key: ada},
	{name: "non-ASCII upper case", email: "JÖRG.MÜLLER@EXAMPLE.COM", status: 200, key: merge.Key(demodata.ShowcaseNonASCII)},
	{name: "plus address", email: plusAddress, status: 200, key: plusAddress},
	{name: "plus address upper case", email: "ADA+Billing@Example.com", status: 200, key: plusAddress},
	{name: "plus tag is not stripped", email: "ada.lovelace+other@example.com", status: 404, reason: notFound},
	// Look-alikes and invisible characters never reach another customer.
	{name: "Cyrillic a", email: "\u0430da.lovelace@example.com", status: 404, reason: notFound},
	{name: "Greek omicron", email: "ada.l\u03bfvelace@example.com", status: 404, reason: notFound},
	{name: "fullwidth a", email: "\uff41da.lovelace@example.com", status: 404, reason: notFound},
	{name: "dotless i", email: "alan.tur\u0131ng@example.com", status: 404, reason: notFound},
	{name: "decomposed e-diaeresis is another key", email: "zoe\u0308.dubois@example.org", status: 404, reason: notFound},
	{name: "zero-width space", email: "ada\u200b.lovelace@example.com", status: 400, reason: invalid + "contains an invisible formatting character"},
	{name: "byte order mark", email: "\ufeff" + ada, status: 400, reason: invalid + "contains an invisible formatting character"},
	{name: "right-to-left override", email: "ada\u202e.lovelace@example.com", status: 400, reason: invalid + "contains an invisible formatting character"},
	{name: "soft hyphen", email: "ada\u00ad.lovelace@example.com", status: 400, reason: invalid + "contains an invisible formatting character"},
	{name: "zero-width joiner is allowed but another key", email: "ada\u200d.lovelace@example.com", status: 404, reason: notFound},
	{name: "no-break space", email: "ada\u00a0.lovelace@example.com", status: 400, reason: invalid + "contains whitespace"},
	{name: "domain label starting with -", email: "ada@-example.com", status: 400, reason: invalid + "a domain label starts or ends with '-'"},
	{name: "double dot in the domain", email: "ada@example..com", status: 400, reason: invalid + "domain has an empty label"},
}

func (c hostileLookup) request() events.APIGatewayV2HTTPRequest {
	req := events.APIGatewayV2HTTPRequest{
		RouteKey: "GET /customer/{email}",
		RawPath:  "/customer/" + c.email,
		Body:     c.body,
		Headers:  map[string]string{"accept": "application/json"},
	}
	if !c.noParam {
		req.PathParameters = map[string]string{"email": c.email}
	}
	return req
}

// checkHeaders insists on the headers of every answer.
func TestHandleHostileLookups(t *testing.T) {
	sys := hostileSystems(t)
	for _, tt := range hostileLookups {
		t.Run(tt.name, func(t *testing.T) {
			h, logs, _ := newHandler(t, sys)
			before := sys.Calls.Load()
			resp, err := h.Handle(context.Background(), tt.request())
			if err != nil {
				t.Fatalf("Handle returned an error: %v", err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %.300s", resp.StatusCode, tt.status, resp.Body)
			}
			testkit.CheckHeaders(t, resp)
			if strings.Contains(logs.String(), "@") {
				t.Errorf("logs carry an email: %.300s", logs.String())
			}
			if tt.status == 200 {
				var body Response
				if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
					t.Fatal(err)
				}
				if got := merge.Key(body.Email); got != tt.key {
					t.Errorf("answered with the customer %q, want %q", got, tt.key)
				}
				return
			}
			if detail := testkit.ProblemDetail(t, resp); !strings.Contains(detail, tt.reason) {
				t.Errorf("detail %q does not give the reason %q", detail, tt.reason)
			}
			if tt.status == 400 && sys.Calls.Load() != before {
				t.Errorf("a refused request called System B")
			}
		})
	}
}
