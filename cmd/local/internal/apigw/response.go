package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ErrBadResponse is returned (wrapped) for a function response API Gateway
// would reject with a 500.
var ErrBadResponse = errors.New("apigw: malformed Lambda proxy response")

// Response is an HTTP response decoded from a function's result.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// proxyResponse is payload format 2.0's response; the fields are raw so
// wrong types can be told from absent ones.
type proxyResponse struct {
	StatusCode        json.RawMessage     `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              *string             `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// DecodeResponse maps a function's response to HTTP as HTTP APIs do for
// payload format 2.0: an object with a statusCode is the response; any other
// valid JSON is the body of a 200 application/json response (a JSON string
// as its text).
func DecodeResponse(payload []byte) (*Response, error) {
	payload = bytes.TrimSpace(payload)
	if !json.Valid(payload) {
		return nil, fmt.Errorf("%w: the response is not JSON", ErrBadResponse)
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(payload, &probe) == nil {
		if _, ok := probe["statusCode"]; ok {
			return decodeProxy(payload)
		}
	}
	body := payload
	var s string
	if json.Unmarshal(payload, &s) == nil {
		body = []byte(s)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return &Response{StatusCode: http.StatusOK, Header: h, Body: body}, nil
}

func decodeProxy(payload []byte) (*Response, error) {
	var pr proxyResponse
	if err := json.Unmarshal(payload, &pr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	var status int
	if err := json.Unmarshal(pr.StatusCode, &status); err != nil || status < 100 || status > 599 {
		return nil, fmt.Errorf("%w: statusCode %s is not an HTTP status", ErrBadResponse, pr.StatusCode)
	}
	h := http.Header{}
	for k, v := range pr.Headers {
		h.Set(k, v)
	}
	for k, vs := range pr.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range pr.Cookies {
		h.Add("Set-Cookie", c)
	}
	var body []byte
	if pr.Body != nil {
		body = []byte(*pr.Body)
		if pr.IsBase64Encoded {
			dec, err := base64.StdEncoding.DecodeString(*pr.Body)
			if err != nil {
				return nil, fmt.Errorf("%w: isBase64Encoded but the body is not base64", ErrBadResponse)
			}
			body = dec
		}
	}
	return &Response{StatusCode: status, Header: h, Body: body}, nil
}
