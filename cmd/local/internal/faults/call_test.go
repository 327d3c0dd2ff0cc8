package faults

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/cmd/local/internal/apigw"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
)

// call is one invocation of a real function: its result, its HTTP answer
// (for the API functions), and the lines it logged, split into EMF metric
// documents and slog records.
type call struct {
	t     *testing.T
	fn    string
	res   *sandbox.Result
	lines []string
	emf   []map[string]any
	logs  []map[string]any
	// report is the REPORT line.
	report string
}

func newCall(t *testing.T, fn string, res *sandbox.Result) *call {
	c := &call{t: t, fn: fn, res: res}
	for _, line := range strings.Split(strings.TrimRight(string(res.Log), "\n"), "\n") {
		c.lines = append(c.lines, line)
		if strings.HasPrefix(line, "REPORT RequestId: ") {
			c.report = line
		}
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			continue
		}
		if _, ok := doc["_aws"]; ok {
			c.emf = append(c.emf, doc)
		} else if _, ok := doc["msg"]; ok {
			c.logs = append(c.logs, doc)
		}
	}
	return c
}

// ok fails the test unless the invocation succeeded.
func (c *call) ok() *call {
	c.t.Helper()
	if c.res.FunctionError != "" {
		c.t.Fatalf("%s failed (%s): %s", c.fn, c.res.ErrorType, c.res.Payload)
	}
	return c
}

// http decodes the API Gateway answer as HTTP APIs do.
func (c *call) http() *apigw.Response {
	c.t.Helper()
	c.ok()
	resp, err := apigw.DecodeResponse(c.res.Payload)
	if err != nil {
		c.t.Fatalf("%s: %v: %s", c.fn, err, c.res.Payload)
	}
	return resp
}

// status returns the HTTP status and decodes the body into v (if not nil).
func (c *call) status(v any) int {
	c.t.Helper()
	resp := c.http()
	if v != nil {
		if err := json.Unmarshal(resp.Body, v); err != nil {
			c.t.Fatalf("%s: body is not JSON: %v: %s", c.fn, err, resp.Body)
		}
	}
	return resp.StatusCode
}

// metric sums the values of a metric over the invocation's EMF documents,
// and says how many samples there were. It also checks that each document
// declares the metric it carries.
func (c *call) metric(name string) (sum float64, samples int) {
	c.t.Helper()
	for _, doc := range c.emf {
		v, ok := doc[name]
		if !ok {
			continue
		}
		if !declares(doc, name) {
			c.t.Errorf("%s: EMF document carries %s without declaring it: %v", c.fn, name, doc)
		}
		switch x := v.(type) {
		case float64:
			sum += x
			samples++
		case []any:
			for _, e := range x {
				f, _ := e.(float64)
				sum += f
				samples++
			}
		default:
			c.t.Errorf("%s: EMF %s is %T", c.fn, name, v)
		}
	}
	return sum, samples
}

// count is metric's sum, for Count metrics.
func (c *call) count(name string) float64 {
	c.t.Helper()
	s, _ := c.metric(name)
	return s
}

// declares reports whether an EMF document's directive names metric name
// with the Function dimension.
func declares(doc map[string]any, name string) bool {
	aws, _ := doc["_aws"].(map[string]any)
	dirs, _ := aws["CloudWatchMetrics"].([]any)
	for _, d := range dirs {
		dir, _ := d.(map[string]any)
		if dir["Namespace"] != "UnifiedCustomerService" {
			continue
		}
		ms, _ := dir["Metrics"].([]any)
		for _, m := range ms {
			if mm, _ := m.(map[string]any); mm["Name"] == name {
				return doc["Function"] != nil
			}
		}
	}
	return false
}

// logged returns the slog records at level whose message contains msg.
func (c *call) logged(level, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range c.logs {
		if l["level"] == level && strings.Contains(l["msg"].(string), msg) {
			out = append(out, l)
		}
	}
	return out
}

// wantLog fails the test unless a record at level has msg in its message
// and, if given, every substring of attrs in its JSON; that record must
// carry the Lambda request id.
func (c *call) wantLog(level, msg string, attrs ...string) map[string]any {
	c.t.Helper()
	l := c.findLog(level, msg, attrs...)
	if l != nil && l["requestId"] != c.res.RequestID {
		c.t.Errorf("%s: log record without the Lambda request id: %v", c.fn, l)
	}
	return l
}

// findLog finds a log record of the call by level, message and attributes
// (wantLog adds the request id check).
func (c *call) findLog(level, msg string, attrs ...string) map[string]any {
	c.t.Helper()
	for _, l := range c.logged(level, msg) {
		raw, _ := json.Marshal(l)
		okAll := true
		for _, a := range attrs {
			if !strings.Contains(string(raw), a) {
				okAll = false
			}
		}
		if okAll {
			return l
		}
	}
	c.t.Errorf("%s: no %s log %q with %q; logs:\n%s", c.fn, level, msg, attrs, strings.Join(c.lines, "\n"))
	return nil
}

// noLog fails the test if a record at level has msg in its message.
func (c *call) noLog(level, msg string) {
	c.t.Helper()
	if l := c.logged(level, msg); len(l) > 0 {
		c.t.Errorf("%s: unexpected %s log %q: %v", c.fn, level, msg, l)
	}
}

var reportDuration = regexp.MustCompile(`\tDuration: ([0-9.]+) ms`)

// reportedDuration is the Duration of the REPORT line.
func (c *call) reportedDuration() time.Duration {
	c.t.Helper()
	m := reportDuration.FindStringSubmatch(c.report)
	if m == nil {
		c.t.Fatalf("%s: no REPORT line with a Duration: %q", c.fn, c.report)
	}
	ms, _ := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond))
}

// answeredBefore asserts the behaviour "answered before the Lambda
// deadline": the invocation succeeded, its REPORT line has no status, and
// its duration is below the function's Timeout.
func (c *call) answeredBefore(timeout time.Duration) {
	c.t.Helper()
	c.ok()
	if strings.Contains(c.report, "Status:") {
		c.t.Errorf("%s: REPORT has a status: %s", c.fn, c.report)
	}
	if d := c.reportedDuration(); d >= timeout {
		c.t.Errorf("%s: took %v, not before its Timeout of %v", c.fn, d, timeout)
	}
}

// lookupEvent is the API Gateway HTTP API event of GET /customer/{email}.
func lookupEvent(t testing.TB, email string) []byte {
	p := "/customer/" + url.PathEscape(email)
	return httpEvent(t, "GET /customer/{email}", "GET", p, map[string]string{"email": email}, "")
}

// syncEvent is the event of POST /customer/sync with {"emails": [...]}.
func syncEvent(t testing.TB, emails ...string) []byte {
	body := mustJSON(t, map[string][]string{"emails": emails})
	return httpEvent(t, "POST /customer/sync", "POST", "/customer/sync", nil, string(body))
}

func httpEvent(t testing.TB, routeKey, method, path string, params map[string]string, body string) []byte {
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: path,
		Headers:        map[string]string{"accept": "application/json", "content-type": "application/json"},
		PathParameters: params, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "123456789012", APIID: "faults", Stage: "$default", RouteKey: routeKey,
			RequestID: "faults-" + randomHex(6),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "faults",
			},
		},
	}
	return mustJSON(t, ev)
}

// scheduledEvent is EventBridge's scheduled event with id at time at.
func scheduledEvent(t testing.TB, id string, at time.Time) []byte {
	return mustJSON(t, map[string]any{
		"version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.events",
		"account": "123456789012", "time": at.UTC().Format(time.RFC3339), "region": "us-east-1",
		"resources": []string{"arn:aws:events:us-east-1:123456789012:rule/faults"}, "detail": map[string]any{},
	})
}

// lookupBody is the part of a 200 lookup answer the rows check.
type lookupBody struct {
	Email       string            `json:"email"`
	Customer    map[string]any    `json:"customer"`
	Sources     map[string]string `json:"sources"`
	Conflicts   []map[string]any  `json:"conflicts"`
	LastUpdated struct {
		SystemA *time.Time `json:"systemA"`
		SystemB *time.Time `json:"systemB"`
	} `json:"lastUpdated"`
	Freshness struct {
		SystemA *time.Time `json:"systemA"`
		SystemB *time.Time `json:"systemB"`
	} `json:"freshness"`
	Partial  bool              `json:"partial"`
	Degraded []string          `json:"degraded"`
	Reasons  map[string]string `json:"reasons"`
}

// problem is an application/problem+json body.
type problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail"`
	Degraded []string          `json:"degraded"`
	Reasons  map[string]string `json:"reasons"`
}

// syncBody is a 200 sync answer.
type syncBody struct {
	Results []struct {
		Email     string            `json:"email"`
		Status    string            `json:"status"`
		InSync    bool              `json:"inSync"`
		PresentIn []string          `json:"presentIn"`
		Conflicts []map[string]any  `json:"conflicts"`
		Degraded  []string          `json:"degraded"`
		Reasons   map[string]string `json:"reasons"`
		Problem   *problem          `json:"problem"`
	} `json:"results"`
	Partial  bool     `json:"partial"`
	Degraded []string `json:"degraded"`
}

// wantProblem asserts a problem+json answer with status and returns it.
func (c *call) wantProblem(status int) problem {
	c.t.Helper()
	resp := c.http()
	if resp.StatusCode != status {
		c.t.Fatalf("%s: status %d, want %d: %s", c.fn, resp.StatusCode, status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		c.t.Errorf("%s: Content-Type %q, want application/problem+json", c.fn, ct)
	}
	var p problem
	if err := json.Unmarshal(resp.Body, &p); err != nil {
		c.t.Fatalf("%s: problem body: %v: %s", c.fn, err, resp.Body)
	}
	if p.Status != status || p.Title == "" || p.Detail == "" {
		c.t.Errorf("%s: incomplete problem: %+v", c.fn, p)
	}
	// A 503 says when to ask again; no other problem does.
	if ra := resp.Header.Get("Retry-After"); (ra != "") != (status == http.StatusServiceUnavailable) {
		c.t.Errorf("%s: Retry-After %q on a %d", c.fn, ra, status)
	}
	if leaks := data.pii.scan([]string{string(resp.Body)}); len(leaks) > 0 {
		c.t.Errorf("%s: the problem holds personal data: %s", c.fn, leaks[0])
	}
	return p
}
