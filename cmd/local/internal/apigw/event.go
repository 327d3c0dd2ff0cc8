package apigw

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

// EventOptions are the parts of an event that do not come from the request.
type EventOptions struct {
	AccountID string
	APIID     string
	RequestID string // default: a new API Gateway style id
	Now       time.Time
}

// BuildEvent builds the API Gateway HTTP API payload format 2.0 event for r,
// whose body has been read into body, on route rt with path parameters
// params.
func BuildEvent(r *http.Request, body []byte, rt samtemplate.FunctionRoute, params map[string]string, o EventOptions) events.APIGatewayV2HTTPRequest {
	if o.RequestID == "" {
		o.RequestID = NewRequestID()
	}
	now := o.Now.UTC()
	headers := map[string]string{}
	var cookies []string
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range r.Header[k] {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		v := strings.Join(r.Header[k], ",")
		if prev, ok := headers[lk]; ok {
			v = prev + "," + v
		}
		headers[lk] = v
	}
	headers["host"] = r.Host
	if len(body) > 0 {
		headers["content-length"] = itoa(len(body))
	}
	sourceIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		sourceIP = r.RemoteAddr
	}
	if prev := headers["x-forwarded-for"]; prev != "" {
		headers["x-forwarded-for"] = prev + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	headers["x-forwarded-proto"] = "http"
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		headers["x-forwarded-port"] = port
	}
	domain := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		domain = h
	}
	prefix, _, _ := strings.Cut(domain, ".")

	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       rt.Key(),
		RawPath:        r.URL.Path, // HTTP APIs pass the path URL-decoded
		RawQueryString: r.URL.RawQuery,
		Cookies:        cookies,
		Headers:        headers,
		PathParameters: params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     rt.Key(),
			AccountID:    o.AccountID,
			Stage:        "$default",
			RequestID:    o.RequestID,
			APIID:        o.APIID,
			DomainName:   domain,
			DomainPrefix: prefix,
			Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if q := queryParameters(r.URL.RawQuery); len(q) > 0 {
		ev.QueryStringParameters = q
	}
	if len(body) > 0 {
		if isText(r.Header.Get("Content-Type")) && utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// queryParameters decodes a query string; repeated keys are comma-joined in
// order, as payload format 2.0 does.
func queryParameters(raw string) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			dv = v
		}
		if prev, ok := out[dk]; ok {
			dv = prev + "," + dv
		}
		out[dk] = dv
	}
	return out
}

// isText reports whether HTTP APIs pass a body of this content type as text:
// text/*, application/json, application/xml and application/javascript;
// everything else (a missing type and form posts included) is base64.
func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", mt == "application/xml", mt == "application/javascript":
		return true
	}
	return false
}

// NewRequestID returns an id shaped like API Gateway's ("JKJaXmPLvHcESHA=").
func NewRequestID() string {
	b := make([]byte, 11)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return base64.StdEncoding.EncodeToString(b)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// emptyAuthentication is what the events type writes for a request without
// a client certificate; API Gateway sends no authentication block then.
const emptyAuthentication = `,"authentication":{"clientCert":{"clientCertPem":"","issuerDN":"","serialNumber":"","subjectDN":"","validity":{"notAfter":"","notBefore":""}}}`

// MarshalEvent renders an event as API Gateway sends it: no HTML escaping,
// no empty mTLS block.
func MarshalEvent(ev events.APIGatewayV2HTTPRequest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, fmt.Errorf("apigw: marshal event: %w", err)
	}
	return bytes.Replace(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte(emptyAuthentication), nil, 1), nil
}
