// Package httpapi holds what the HTTP functions share about API Gateway HTTP
// API (payload format 2.0): JSON and RFC 9457 problem responses, the one
// table from error kinds to HTTP statuses, and strict reading of request
// bodies. It knows nothing of customers.
package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/merge"
)

// Content types of the responses.
const (
	ContentTypeJSON    = "application/json"
	ContentTypeProblem = "application/problem+json"
)

// KindInternal is the kind of an error that wraps no merge.ErrorKind: a bug
// or an unexpected failure.
const KindInternal merge.ErrorKind = ""

// statuses is the one table from error kinds to the HTTP status that answers
// them, after benbjohnson/wtf's http/http.go. Every kind of
// merge.ErrorKinds() has an entry (a test checks it).
//
//   - invalid: 400, the caller's input is wrong;
//   - not found: 404, an answer: the system does not hold the customer;
//   - unavailable: 503, asking again later may help (with Retry-After);
//   - bad data: 502, the upstream system answered with data that breaks its
//     contract; asking again will give the same data;
//   - unauthorized: 502, the upstream system refused this service's
//     credentials: a fault between us and it, not the caller's, and not
//     over by itself;
//   - internal: 500.
var statuses = map[merge.ErrorKind]int{
	KindInternal:          http.StatusInternalServerError,
	merge.ErrInvalid:      http.StatusBadRequest,
	merge.ErrNotFound:     http.StatusNotFound,
	merge.ErrUnavailable:  http.StatusServiceUnavailable,
	merge.ErrBadData:      http.StatusBadGateway,
	merge.ErrUnauthorized: http.StatusBadGateway,
}

// Status returns the HTTP status that answers a failure of kind k; 500 for
// an internal error or a kind the table does not know.
func Status(k merge.ErrorKind) int {
	if s, ok := statuses[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Worse returns whichever of two kinds answers with the higher status (on a
// tie, a): the kind that decides the status of an answer two failures
// share. It prefers 503 (asking again may help) to 502 to 500.
func Worse(a, b merge.ErrorKind) merge.ErrorKind {
	if Status(b) > Status(a) {
		return b
	}
	return a
}

// Reason names kind k in JSON bodies: a stable camelCase token
// ("unavailable", "badData", "unauthorized", "invalid", "notFound",
// "internal").
func Reason(k merge.ErrorKind) string {
	switch k {
	case merge.ErrInvalid:
		return "invalid"
	case merge.ErrNotFound:
		return "notFound"
	case merge.ErrUnavailable:
		return "unavailable"
	case merge.ErrBadData:
		return "badData"
	case merge.ErrUnauthorized:
		return "unauthorized"
	}
	return "internal"
}

// RetryAfter is the Retry-After of a 503: long enough that clients do not
// pile up requests that each wait for a system in an outage (a lookup gives
// System B up to 4.5 s), short enough to ride out a rolling restart.
const RetryAfter = 30 * time.Second

// Problem is an RFC 9457 problem detail. Detail is written for humans and
// never carries customer data.
type Problem struct {
	Type     string   `json:"type"`
	Title    string   `json:"title"`
	Status   int      `json:"status"`
	Detail   string   `json:"detail,omitempty"`
	Degraded []string `json:"degraded,omitempty"` // systems that failed, when relevant
	// Reasons says, per system in Degraded, why it failed (Reason's tokens).
	Reasons map[string]string `json:"reasons,omitempty"`
	// RetryAfter, when positive, is sent as the Retry-After header (whole
	// seconds, rounded up).
	RetryAfter time.Duration `json:"-"`
}

// NewProblem builds a problem with the standard title of status.
func NewProblem(status int, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// KindProblem builds the problem that answers a failure of kind k: the
// table's status (Status) and detail; a 503 also says "try again later" and
// carries Retry-After.
func KindProblem(k merge.ErrorKind, detail string) *Problem {
	p := NewProblem(Status(k), detail)
	if p.Status == http.StatusServiceUnavailable {
		p.Detail += "; try again later"
		p.RetryAfter = RetryAfter
	}
	return p
}

// Response renders the problem as an API Gateway response.
func (p *Problem) Response() events.APIGatewayV2HTTPResponse {
	resp := respond(p.Status, ContentTypeProblem, p)
	if p.RetryAfter > 0 {
		resp.Headers["Retry-After"] = strconv.FormatInt(int64((p.RetryAfter+time.Second-1)/time.Second), 10)
	}
	return resp
}

// JSON renders v as a JSON response with the given status.
func JSON(status int, v any) events.APIGatewayV2HTTPResponse {
	return respond(status, ContentTypeJSON, v)
}

func respond(status int, contentType string, v any) events.APIGatewayV2HTTPResponse {
	body, err := json.Marshal(v)
	if err != nil {
		// Every value the functions answer with marshals; this is a bug, not input.
		status, contentType = http.StatusInternalServerError, ContentTypeProblem
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"response could not be encoded"}`)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers: map[string]string{
			"Content-Type":           contentType,
			"Cache-Control":          "no-store",
			"X-Content-Type-Options": "nosniff",
		},
		Body: string(body),
	}
}

// MaxNesting is how deeply DecodeStrict lets objects and arrays nest.
const MaxNesting = 16

// Body returns the request body, decoding base64 when API Gateway says so,
// and refuses bodies over max bytes with 413.
func Body(req *events.APIGatewayV2HTTPRequest, max int) ([]byte, *Problem) {
	raw := []byte(req.Body)
	if req.IsBase64Encoded {
		if base64.StdEncoding.DecodedLen(len(req.Body)) > max+3 {
			return nil, NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", max))
		}
		dec, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return nil, NewProblem(http.StatusBadRequest, "request body is marked base64 but is not valid base64")
		}
		raw = dec
	}
	if len(raw) > max {
		return nil, NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", max))
	}
	return raw, nil
}

// DecodeStrict decodes one JSON value from data into v, refusing invalid
// UTF-8 (which encoding/json would silently turn into U+FFFD), unknown
// fields, duplicate object keys (also keys that encoding/json would match to
// the same field: "email" and "EMAIL"), nesting deeper than MaxNesting and
// trailing data. The error is written for the client and quotes no values;
// it names a key only when the key looks like a field name.
func DecodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("request body is empty; want a JSON object")
	}
	if !utf8.Valid(data) {
		return errors.New("request body is not valid UTF-8")
	}
	if err := checkShape(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field == "":
			return fmt.Errorf("field \"\" has the wrong type: want %s", typeErr.Type)
		case errors.As(err, &typeErr):
			return fmt.Errorf("field %s has the wrong type: want %s", quoteKey(typeErr.Field), typeErr.Type)
		default:
			return fmt.Errorf("request body is not valid: %s", sanitize(err))
		}
	}
	return nil
}

// checkShape walks the tokens once for what encoding/json accepts silently:
// duplicate keys, excessive nesting, trailing data.
func checkShape(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkValue(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("request body has data after the JSON value")
	}
	return nil
}

var errNotJSON = errors.New("request body is not valid JSON")

// walkValue consumes one JSON value; depth is bounded by MaxNesting, so the
// recursion is too.
func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return errNotJSON
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth >= MaxNesting {
		return fmt.Errorf("request body nests deeper than %d levels", MaxNesting)
	}
	switch delim {
	case '{':
		seen := map[string]struct{}{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return errNotJSON
			}
			key, _ := keyTok.(string)
			folded := foldKey(key)
			if _, dup := seen[folded]; dup {
				return fmt.Errorf("request body repeats the key %s", quoteKey(key))
			}
			seen[folded] = struct{}{}
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	default:
		return errNotJSON
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return errNotJSON
	}
	return nil
}

// foldKey folds a key as encoding/json does when it matches keys to struct
// fields (ASCII upper case; other runes to the smallest rune of their
// simple case-folding orbit: the Kelvin sign and "k", "ſ" and "s"), so that
// keys decoding into the same field count as duplicates.
func foldKey(key string) string {
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range key {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			continue
		}
		for {
			next := unicode.SimpleFold(r)
			if next <= r {
				r = next
				break
			}
			r = next
		}
		b.WriteRune(r)
	}
	return b.String()
}

// maxQuotedKey bounds the client-supplied key an error message may quote.
const maxQuotedKey = 40

// quoteKey quotes a client-supplied key (or field path) for an error
// message when it looks like a field name (ASCII letters, digits, '_', '-'
// and '.', at most maxQuotedKey bytes); any other key, such as an email
// sent as a key, is not shown.
func quoteKey(key string) string {
	if key == "" || len(key) > maxQuotedKey {
		return "(not shown)"
	}
	for _, c := range []byte(key) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "(not shown)"
		}
	}
	return strconv.Quote(key)
}

// sanitize reduces a decoder error to its kind, without quoting input.
func sanitize(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	}
	msg := err.Error()
	if quoted, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			name = ""
		}
		return "json: unknown field " + quoteKey(name)
	}
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}
