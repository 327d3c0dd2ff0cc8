package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The Runtime API's headers (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
const (
	headerRequestID       = "Lambda-Runtime-Aws-Request-Id"
	headerDeadlineMS      = "Lambda-Runtime-Deadline-Ms"
	headerFunctionARN     = "Lambda-Runtime-Invoked-Function-Arn"
	headerTraceID         = "Lambda-Runtime-Trace-Id"
	headerClientContext   = "Lambda-Runtime-Client-Context"
	headerCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	headerErrorType       = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody      = "Lambda-Runtime-Function-Error-Body"
)

// MaxResponseSize is Lambda's limit on a synchronous response payload.
const MaxResponseSize = 6 * 1024 * 1024

// invocation is one event on its way through the Runtime API.
type invocation struct {
	id            string
	payload       []byte
	arn           string
	traceID       string
	clientContext string
	cognito       string
	timeout       time.Duration

	delivered   chan struct{} // closed by the /next handler
	deliveredAt time.Time
	deadline    time.Time

	done chan outcome // buffered 1; the first response or error wins
	once sync.Once
}

// outcome is what the runtime posted for an invocation.
type outcome struct {
	payload   []byte
	isError   bool
	errorType string
}

// again returns a copy of inv to hand to another process.
func (inv *invocation) again() *invocation {
	return &invocation{
		id: inv.id, payload: inv.payload, arn: inv.arn, traceID: inv.traceID,
		clientContext: inv.clientContext, cognito: inv.cognito, timeout: inv.timeout,
		delivered: make(chan struct{}), done: make(chan outcome, 1),
	}
}

func (inv *invocation) finish(o outcome) bool {
	won := false
	inv.once.Do(func() {
		inv.done <- o
		won = true
	})
	return won
}

// runtimeAPI serves the Lambda Runtime API to one process.
type runtimeAPI struct {
	ln   net.Listener
	srv  *http.Server
	next chan *invocation // unbuffered: a send completes when a /next takes it
	stop chan struct{}
	now  func() time.Time

	mu        sync.Mutex
	inflight  map[string]*invocation
	initDone  time.Time // the first /next
	initErr   *outcome  // what /runtime/init/error posted
	readyOnce sync.Once
	ready     chan struct{} // closed at the first /next
}

func newRuntimeAPI(now func() time.Time) (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: runtime API listen: %w", err)
	}
	a := &runtimeAPI{
		ln:       ln,
		next:     make(chan *invocation),
		stop:     make(chan struct{}),
		now:      now,
		inflight: map[string]*invocation{},
		ready:    make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", a.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", a.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", a.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", a.handleInitError)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go a.srv.Serve(ln) //nolint:errcheck // Serve returns when closed
	return a, nil
}

// addr is the value of AWS_LAMBDA_RUNTIME_API.
func (a *runtimeAPI) addr() string { return a.ln.Addr().String() }

func (a *runtimeAPI) close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close() //nolint:errcheck // best effort: the process is gone
	}
}

func (a *runtimeAPI) handleNext(w http.ResponseWriter, r *http.Request) {
	a.readyOnce.Do(func() {
		a.mu.Lock()
		a.initDone = a.now()
		a.mu.Unlock()
		close(a.ready)
	})
	var inv *invocation
	select {
	case inv = <-a.next:
	case <-r.Context().Done():
		return
	case <-a.stop:
		http.Error(w, "the sandbox is shutting down", http.StatusGone)
		return
	}
	now := a.now()
	inv.deliveredAt = now
	inv.deadline = now.Add(inv.timeout)
	a.mu.Lock()
	a.inflight[inv.id] = inv
	a.mu.Unlock()
	close(inv.delivered)

	h := w.Header()
	h.Set(headerRequestID, inv.id)
	h.Set(headerDeadlineMS, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set(headerFunctionARN, inv.arn)
	h.Set(headerTraceID, inv.traceID)
	if inv.clientContext != "" {
		h.Set(headerClientContext, inv.clientContext)
	}
	if inv.cognito != "" {
		h.Set(headerCognitoIdentity, inv.cognito)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(inv.payload) //nolint:errcheck // a broken connection shows as a process exit or a timeout
}

func (a *runtimeAPI) take(w http.ResponseWriter, r *http.Request) (*invocation, bool) {
	id := r.PathValue("id")
	a.mu.Lock()
	inv, ok := a.inflight[id]
	delete(a.inflight, id)
	a.mu.Unlock()
	if !ok {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation in progress with this request id")
		return nil, false
	}
	return inv, true
}

func (a *runtimeAPI) handleResponse(w http.ResponseWriter, r *http.Request) {
	inv, ok := a.take(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxResponseSize+1))
	switch {
	case err != nil:
		inv.finish(errorOutcome("Runtime.InvalidResponse", fmt.Sprintf("RequestId: %s Error: reading the response: %v", inv.id, err)))
		writeRuntimeError(w, http.StatusBadRequest, "InvalidResponse", "cannot read the response body")
		return
	case len(body) > MaxResponseSize:
		inv.finish(errorOutcome("Function.ResponseSizeTooLarge",
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxResponseSize)))
		writeRuntimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response payload too large")
		return
	}
	// A streamed response that failed midway carries its error in trailers.
	if et := r.Trailer.Get(headerErrorType); et != "" {
		payload, _ := base64.StdEncoding.DecodeString(r.Trailer.Get(trailerErrorBody))
		if !json.Valid(payload) {
			payload = errorJSON(et, "the function failed while streaming its response")
		}
		inv.finish(outcome{payload: payload, isError: true, errorType: et})
	} else {
		inv.finish(outcome{payload: body})
	}
	writeAccepted(w)
}

func (a *runtimeAPI) handleError(w http.ResponseWriter, r *http.Request) {
	inv, ok := a.take(w, r)
	if !ok {
		return
	}
	inv.finish(readErrorOutcome(r))
	writeAccepted(w)
}

func (a *runtimeAPI) handleInitError(w http.ResponseWriter, r *http.Request) {
	o := readErrorOutcome(r)
	a.mu.Lock()
	if a.initErr == nil {
		a.initErr = &o
	}
	a.mu.Unlock()
	writeAccepted(w)
}

// initError returns what /runtime/init/error posted, if anything.
func (a *runtimeAPI) initError() *outcome {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.initErr
}

func (a *runtimeAPI) initDoneAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.initDone
}

func readErrorOutcome(r *http.Request) outcome {
	body, _ := io.ReadAll(io.LimitReader(r.Body, MaxResponseSize))
	et := r.Header.Get(headerErrorType)
	var parsed struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(body, &parsed) == nil {
		if et == "" {
			et = parsed.ErrorType
		}
	} else {
		msg := string(bytes.TrimSpace(body))
		if msg == "" {
			msg = "the function reported an error without a body"
		}
		body = errorJSON(et, msg)
	}
	if et == "" {
		et = "Unhandled"
	}
	return outcome{payload: body, isError: true, errorType: et}
}

// errorJSON renders a Lambda error payload.
func errorJSON(errorType, message string) []byte {
	b, _ := json.Marshal(struct { // two strings always marshal
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType,omitempty"`
	}{message, errorType})
	return b
}

func errorOutcome(errorType, message string) outcome {
	return outcome{payload: errorJSON(errorType, message), isError: true, errorType: errorType}
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`) //nolint:errcheck // the runtime may be gone
}

func writeRuntimeError(w http.ResponseWriter, status int, errorType, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(errorJSON(errorType, message)) //nolint:errcheck // the runtime may be gone
}
