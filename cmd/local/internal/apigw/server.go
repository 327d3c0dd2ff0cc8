package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
)

// MaxRequestBody is HTTP APIs' limit on a request payload.
const MaxRequestBody = 10 << 20

// Invoker runs a function by name.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte, opts sandbox.InvokeOptions) (*sandbox.Result, error)
}

// Server is the local HTTP API: an http.Handler.
type Server struct {
	Router    *Router
	Invoker   Invoker
	AccountID string // default "123456789012"
	APIID     string // default "1234567890"
	// Log gets one line per request: the route key (never the raw path,
	// which may hold an email), the function, the status and the time taken.
	Log io.Writer
	Now func() time.Time
}

var _ http.Handler = (*Server)(nil)

// ServeHTTP routes, invokes and answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	start := now()
	rt, params, ok := s.Router.Match(r.Method, r.URL.EscapedPath())
	if !ok {
		writeMessage(w, http.StatusNotFound, "Not Found")
		s.logf("%s (no route) -> 404", r.Method)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBody+1))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > MaxRequestBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	reqID := NewRequestID()
	ev := BuildEvent(r, body, rt, params, EventOptions{
		AccountID: or(s.AccountID, "123456789012"),
		APIID:     or(s.APIID, "1234567890"),
		RequestID: reqID,
		Now:       start,
	})
	payload, err := MarshalEvent(ev)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	w.Header().Set("Apigw-Requestid", reqID)
	res, err := s.Invoker.Invoke(r.Context(), rt.Function, payload, sandbox.InvokeOptions{})
	switch {
	case errors.Is(err, sandbox.ErrClosed):
		writeMessage(w, http.StatusServiceUnavailable, "Service Unavailable")
		s.logf("%s -> %s 503 (shutting down)", rt.Key(), rt.Function)
		return
	case err != nil:
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		s.logf("%s -> %s 500: %v", rt.Key(), rt.Function, err)
		return
	case res.FunctionError != "":
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		s.logf("%s -> %s 500 (function error %s)", rt.Key(), rt.Function, res.ErrorType)
		return
	}
	resp, err := DecodeResponse(res.Payload)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		s.logf("%s -> %s 500: %v", rt.Key(), rt.Function, err)
		return
	}
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing: API Gateway adds no type either
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(resp.Body) //nolint:errcheck // the client may be gone
	s.logf("%s -> %s %d (%.1f ms)", rt.Key(), rt.Function, resp.StatusCode, float64(now().Sub(start))/float64(time.Millisecond))
}

func (s *Server) logf(format string, args ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, "start-api: "+format+"\n", args...)
	}
}

// writeMessage writes API Gateway's own error body: {"message":"..."}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg}) // a string map always marshals
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // the client may be gone
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
