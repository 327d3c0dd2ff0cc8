// Package invokeapi serves the Lambda Invoke API
// (POST /2015-03-31/functions/{name}/invocations) for local functions, so the
// AWS CLI and SDKs can call them with --endpoint-url: RequestResponse, Event
// (202, run in the background) and DryRun (204) invocations, LogType Tail,
// client context, and Lambda's error responses.
package invokeapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/acme/unified-customer-service/cmd/local/internal/sandbox"
)

// Lambda's payload limits.
const (
	MaxSyncPayload  = 6 * 1024 * 1024
	MaxAsyncPayload = 256 * 1024
	// LogTailBytes is how much of the log X-Amz-Log-Result carries.
	LogTailBytes = 4096
)

// Invoker runs a function by name; it returns sandbox.ErrNoFunction
// (wrapped) for an unknown one.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte, opts sandbox.InvokeOptions) (*sandbox.Result, error)
	Has(function string) bool
}

// Server is the local Lambda Invoke API: an http.Handler.
type Server struct {
	Invoker   Invoker
	Region    string // for ARNs in error messages; default us-east-1
	AccountID string // default 123456789012
	// Log gets one line per invocation (function, type, outcome); never
	// payloads.
	Log io.Writer
	// Background is the context of Event invocations; default
	// context.Background(). Cancel it to abandon queued ones.
	Background context.Context

	async sync.WaitGroup
}

var _ http.Handler = (*Server)(nil)

// Wait waits for the Event invocations still running.
func (s *Server) Wait() { s.async.Wait() }

// ServeHTTP serves one Invoke API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/2015-03-31/functions/")
	name, ok2 := strings.CutSuffix(rest, "/invocations")
	if !ok || !ok2 || name == "" || strings.Contains(name, "/") {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "the local Lambda endpoint serves only Invoke (POST /2015-03-31/functions/{name}/invocations)")
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "Invoke is a POST")
		return
	}
	fn, qualifier := functionName(name)
	if q := r.URL.Query().Get("Qualifier"); q != "" {
		qualifier = q
	}
	if !s.Invoker.Has(fn) || (qualifier != "" && qualifier != "$LATEST") {
		arn := s.arn(fn)
		if qualifier != "" {
			arn += ":" + qualifier
		}
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+arn)
		return
	}
	invType := r.Header.Get("X-Amz-Invocation-Type")
	limit := MaxSyncPayload
	switch invType {
	case "", "RequestResponse":
		invType = "RequestResponse"
	case "Event":
		limit = MaxAsyncPayload
	case "DryRun":
	default:
		writeError(w, http.StatusBadRequest, "InvalidParameterValueException", "X-Amz-Invocation-Type must be RequestResponse, Event or DryRun")
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "cannot read the request body")
		return
	}
	if len(payload) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", limit))
		return
	}
	if len(strings.TrimSpace(string(payload))) == 0 {
		payload = []byte("{}")
	}
	if !json.Valid(payload) {
		writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json: the payload is not valid JSON")
		return
	}
	opts := sandbox.InvokeOptions{RequestID: newRequestID()}
	if cc := r.Header.Get("X-Amz-Client-Context"); cc != "" {
		dec, err := base64.StdEncoding.DecodeString(cc)
		if err != nil || !json.Valid(dec) {
			writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "X-Amz-Client-Context must be base64-encoded JSON")
			return
		}
		opts.ClientContext = string(dec)
	}
	w.Header().Set("X-Amzn-Requestid", opts.RequestID)
	switch invType {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		s.async.Add(1)
		go s.runAsync(fn, payload, opts)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	opts.CaptureLog = strings.EqualFold(r.Header.Get("X-Amz-Log-Type"), "Tail")
	res, err := s.Invoker.Invoke(r.Context(), fn, payload, opts)
	switch {
	case errors.Is(err, sandbox.ErrNoFunction):
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+s.arn(fn))
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "ServiceException", "the local sandbox could not run the function: "+err.Error())
		s.logf("%s RequestResponse: %v", fn, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Executed-Version", "$LATEST")
	if res.FunctionError != "" {
		h.Set("X-Amz-Function-Error", res.FunctionError)
	}
	if opts.CaptureLog {
		h.Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString(tail(res.Log, LogTailBytes)))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(res.Payload) //nolint:errcheck // the client may be gone
	s.logf("%s RequestResponse %s: %s", fn, res.RequestID, outcome(res))
}

func (s *Server) runAsync(fn string, payload []byte, opts sandbox.InvokeOptions) {
	defer s.async.Done()
	ctx := s.Background
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := s.Invoker.Invoke(ctx, fn, payload, opts)
	if err != nil {
		s.logf("%s Event %s: %v", fn, opts.RequestID, err)
		return
	}
	s.logf("%s Event %s: %s", fn, res.RequestID, outcome(res))
}

func outcome(res *sandbox.Result) string {
	if res.FunctionError != "" {
		return "function error " + res.ErrorType
	}
	return "ok"
}

func (s *Server) arn(fn string) string {
	region, account := s.Region, s.AccountID
	if region == "" {
		region = "us-east-1"
	}
	if account == "" {
		account = "123456789012"
	}
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, fn)
}

func (s *Server) logf(format string, args ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, "start-lambda: "+format+"\n", args...)
	}
}

// functionName accepts what Invoke's FunctionName accepts: a name, a partial
// ARN (123456789012:function:Name) or a full ARN, each optionally with a
// :qualifier.
func functionName(s string) (name, qualifier string) {
	if _, after, ok := strings.Cut(s, ":function:"); ok {
		s = after
	} else if strings.HasPrefix(s, "function:") {
		s = strings.TrimPrefix(s, "function:")
	}
	name, qualifier, _ = strings.Cut(s, ":")
	return name, qualifier
}

// tail returns the last n bytes of b, starting at a line when it can.
func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	t := b[len(b)-n:]
	if i := strings.IndexByte(string(t), '\n'); i >= 0 && i < len(t)-1 {
		t = t[i+1:]
	}
	return t
}

// writeError writes a Lambda API error as the SDKs parse it: the type in
// X-Amzn-ErrorType, {"Type": "User", "message": ...} in the body.
func writeError(w http.ResponseWriter, status int, errorType, msg string) {
	kind := "User"
	if status >= 500 {
		kind = "Service"
	}
	b, _ := json.Marshal(map[string]string{"Type": kind, "message": msg, "__type": errorType}) // strings always marshal
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", errorType)
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // the client may be gone
}

func newRequestID() string { return sandbox.NewRequestID() }
