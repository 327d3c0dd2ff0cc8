package apigw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func testRoutes() []samtemplate.FunctionRoute {
	mk := func(fn, method, path string) samtemplate.FunctionRoute {
		return samtemplate.FunctionRoute{Function: fn, Route: samtemplate.Route{Method: method, Path: path, PayloadFormatVersion: "2.0"}}
	}
	return []samtemplate.FunctionRoute{
		mk("Default", "ANY", "$default"),
		mk("Proxy", "ANY", "/files/{proxy+}"),
		mk("Lookup", "GET", "/customer/{email}"),
		mk("Sync", "POST", "/customer/sync"),
		mk("AnyCustomer", "ANY", "/customer/{email}"),
		mk("Report", "GET", "/files/report"),
		mk("Nested", "GET", "/a/{x}/b/{y}"),
	}
}

func TestRouterMatch(t *testing.T) {
	rt := NewRouter(testRoutes())
	tests := []struct {
		name, method, path string
		want               string
		params             map[string]string
	}{
		{"param decoded", "GET", "/customer/jane.doe%40example.com", "Lookup", map[string]string{"email": "jane.doe@example.com"}},
		{"literal beats param", "POST", "/customer/sync", "Sync", nil},
		{"GET on sync is the param route", "GET", "/customer/sync", "Lookup", map[string]string{"email": "sync"}},
		{"method beats ANY", "GET", "/customer/x", "Lookup", map[string]string{"email": "x"}},
		{"ANY takes other methods", "DELETE", "/customer/x", "AnyCustomer", map[string]string{"email": "x"}},
		{"literal beats greedy", "GET", "/files/report", "Report", nil},
		{"greedy", "PUT", "/files/a/b%20c/d", "Proxy", map[string]string{"proxy": "a/b c/d"}},
		{"greedy needs something", "GET", "/files/", "Default", nil},
		{"two params", "GET", "/a/1/b/2", "Nested", map[string]string{"x": "1", "y": "2"}},
		{"too long falls to default", "GET", "/customer/x/y", "Default", nil},
		{"empty param falls to default", "GET", "/customer/", "Default", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, params, ok := rt.Match(tc.method, tc.path)
			if !ok || r.Function != tc.want || !reflect.DeepEqual(params, tc.params) {
				t.Errorf("Match = %v %s %v, want %s %v", ok, r.Function, params, tc.want, tc.params)
			}
		})
	}
	noDefault := NewRouter(testRoutes()[1:])
	if _, _, ok := noDefault.Match("GET", "/nowhere"); ok {
		t.Errorf("matched /nowhere without a $default route")
	}
}

func TestBuildEventGolden(t *testing.T) {
	rt := NewRouter(testRoutes())
	now := time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	tests := []struct {
		name, method, target, contentType, body string
		header                                  map[string][]string
	}{
		{name: "lookup", method: "GET", target: "/customer/Jane.Doe%40example.com?verbose=1&x=a&x=b%20c",
			header: map[string][]string{"Accept": {"application/json"}, "X-Multi": {"1", "2"}, "Cookie": {"a=1; b=2", "c=3"}}},
		{name: "sync-json", method: "POST", target: "/customer/sync", contentType: "application/json", body: `{"email":"a@b.c"}`},
		{name: "form-is-base64", method: "POST", target: "/customer/sync", contentType: "application/x-www-form-urlencoded", body: "email=a%40b.c"},
		{name: "binary", method: "PUT", target: "/files/img/a.png", contentType: "application/octet-stream", body: "\x89PNG\x00\x01"},
		{name: "default-route", method: "GET", target: "/", header: map[string][]string{"User-Agent": {"curl/8.0"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://127.0.0.1:3000"+tc.target, strings.NewReader(tc.body))
			r.RemoteAddr = "127.0.0.1:54321"
			for k, vs := range tc.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			route, params, ok := rt.Match(r.Method, r.URL.EscapedPath())
			if !ok {
				t.Fatalf("no route for %s %s", tc.method, tc.target)
			}
			ev := BuildEvent(r, []byte(tc.body), route, params, EventOptions{AccountID: "123456789012", APIID: "1234567890", RequestID: "JKJaXmPLvHcESHA=", Now: now})
			compact, err := MarshalEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, compact, "", "  "); err != nil {
				t.Fatal(err)
			}
			got.WriteByte('\n')
			golden(t, filepath.Join("testdata", tc.name+".golden.json"), got.Bytes())
			// The event must round-trip through the events type functions use.
			var back events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(compact, &back); err != nil || !reflect.DeepEqual(back, ev) {
				t.Errorf("round trip: %v", err)
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		status  int
		header  http.Header
		body    string
		wantErr bool
	}{
		{name: "full", payload: `{"statusCode": 201, "headers": {"content-type": "application/problem+json", "x-a": "1"},
			"multiValueHeaders": {"x-m": ["1", "2"]}, "cookies": ["s=1; HttpOnly", "t=2"], "body": "{\"ok\":true}"}`,
			status: 201, header: http.Header{"Content-Type": {"application/problem+json"}, "X-A": {"1"}, "X-M": {"1", "2"}, "Set-Cookie": {"s=1; HttpOnly", "t=2"}}, body: `{"ok":true}`},
		{name: "base64", payload: `{"statusCode": 200, "body": "iVBORw==", "isBase64Encoded": true}`, status: 200, header: http.Header{}, body: "\x89PNG"},
		{name: "no body", payload: `{"statusCode": 204}`, status: 204, header: http.Header{}},
		{name: "inferred object", payload: `{"hello": "world"}`, status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: `{"hello": "world"}`},
		{name: "inferred string", payload: `"hi there"`, status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: "hi there"},
		{name: "inferred number", payload: `42`, status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: "42"},
		{name: "not json", payload: `hello`, wantErr: true},
		{name: "status as string", payload: `{"statusCode": "200"}`, wantErr: true},
		{name: "status out of range", payload: `{"statusCode": 42}`, wantErr: true},
		{name: "body not a string", payload: `{"statusCode": 200, "body": {"a": 1}}`, wantErr: true},
		{name: "bad base64", payload: `{"statusCode": 200, "body": "!!", "isBase64Encoded": true}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeResponse([]byte(tc.payload))
			if tc.wantErr {
				if !errors.Is(err, ErrBadResponse) {
					t.Fatalf("err = %v, want ErrBadResponse", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.StatusCode != tc.status || !reflect.DeepEqual(got.Header, tc.header) || string(got.Body) != tc.body {
				t.Errorf("got %d %v %q, want %d %v %q", got.StatusCode, got.Header, got.Body, tc.status, tc.header, tc.body)
			}
		})
	}
}

// fakeInvoker answers with a function that returns a fixed result, or
// echoes the event inside a proxy response.
type fakeInvoker struct {
	res   *sandbox.Result
	err   error
	got   []byte
	gotFn string
}

func (f *fakeInvoker) Invoke(_ context.Context, fn string, payload []byte, _ sandbox.InvokeOptions) (*sandbox.Result, error) {
	f.got, f.gotFn = payload, fn
	if f.res != nil || f.err != nil {
		return f.res, f.err
	}
	body, _ := json.Marshal(string(payload))
	return &sandbox.Result{Payload: []byte(`{"statusCode": 200, "headers": {"content-type": "application/json"}, "body": ` + string(body) + `}`)}, nil
}

var _ Invoker = (*fakeInvoker)(nil)

func TestServer(t *testing.T) {
	tests := []struct {
		name       string
		inv        *fakeInvoker
		method     string
		path       string
		wantStatus int
		wantBody   string
		wantFn     string
	}{
		{"unknown route", &fakeInvoker{}, "GET", "/nowhere", 404, `{"message":"Not Found"}`, ""},
		{"function error", &fakeInvoker{res: &sandbox.Result{FunctionError: "Unhandled", Payload: []byte(`{"errorMessage":"x"}`)}}, "GET", "/customer/a", 500, `{"message":"Internal Server Error"}`, "Lookup"},
		{"bad response", &fakeInvoker{res: &sandbox.Result{Payload: []byte(`{"statusCode": "x"}`)}}, "GET", "/customer/a", 500, `{"message":"Internal Server Error"}`, "Lookup"},
		{"closed", &fakeInvoker{err: sandbox.ErrClosed}, "GET", "/customer/a", 503, `{"message":"Service Unavailable"}`, "Lookup"},
		{"no content type stays absent", &fakeInvoker{res: &sandbox.Result{Payload: []byte(`{"statusCode": 418, "body": "teapot"}`)}}, "GET", "/customer/a", 418, "teapot", "Lookup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			routes := testRoutes()[1:] // no $default
			srv := httptest.NewServer(&Server{Router: NewRouter(routes), Invoker: tc.inv})
			defer srv.Close()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || string(body) != tc.wantBody || tc.inv.gotFn != tc.wantFn {
				t.Errorf("got %d %s (fn %q), want %d %s (fn %q)", resp.StatusCode, body, tc.inv.gotFn, tc.wantStatus, tc.wantBody, tc.wantFn)
			}
			if tc.wantStatus == 418 && resp.Header.Get("Content-Type") != "" {
				t.Errorf("Content-Type = %q, want none", resp.Header.Get("Content-Type"))
			}
		})
	}
	t.Run("round trip", func(t *testing.T) {
		inv := &fakeInvoker{}
		srv := httptest.NewServer(&Server{Router: NewRouter(testRoutes()), Invoker: inv})
		defer srv.Close()
		resp, err := http.Post(srv.URL+"/customer/sync?a=1", "application/json", strings.NewReader(`{"email":"x@y.z"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ev events.APIGatewayV2HTTPRequest
		if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
			t.Fatal(err)
		}
		if ev.RouteKey != "POST /customer/sync" || ev.Body != `{"email":"x@y.z"}` || ev.QueryStringParameters["a"] != "1" ||
			ev.RequestContext.RequestID != resp.Header.Get("Apigw-Requestid") || inv.gotFn != "Sync" {
			t.Errorf("event %+v, header %v", ev, resp.Header)
		}
	})
}
