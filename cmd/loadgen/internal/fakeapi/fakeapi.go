// Package fakeapi is a scripted stand-in for start-api and the System B
// simulator's admin endpoints, for loadgen's tests: lookups of an
// @example.net address answer 404, every other lookup 200 with one
// conflict, unless the script says otherwise; the admin calls are recorded.
package fakeapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Drop, returned by Script, cuts the connection in the middle of an answer
// (a transport error for the client).
const Drop = -1

// Server is the fake. Set the exported fields before the first request.
type Server struct {
	*httptest.Server

	// Script, when set, is asked for each lookup in arrival order (n from
	// 0): a status to answer with an error body instead of the normal
	// answer, Drop, or 0 for the normal answer.
	Script func(n int64) int
	// Partial makes every 200 and 404 answer partial (System B degraded).
	Partial bool
	// Injected is what GET /_sim/stats reports as injected errors.
	Injected int64

	lookups atomic.Int64
	mu      sync.Mutex
	admin   []string
}

// New starts a fake on a loopback port; Close it when done.
func New() *Server {
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Lookups returns the number of lookups received.
func (s *Server) Lookups() int64 { return s.lookups.Load() }

// Admin returns the admin calls received, as "METHOD /path body".
func (s *Server) Admin() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.admin...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveAdmin(w, r)
		return
	}
	email, ok := strings.CutPrefix(r.URL.Path, "/customer/")
	if !ok || r.Method != http.MethodGet {
		http.Error(w, "no such route", http.StatusNotFound)
		return
	}
	n := s.lookups.Add(1) - 1
	if s.Script != nil {
		switch st := s.Script(n); {
		case st == Drop:
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					// The answer starts, then the connection is cut: the
					// client cannot retry it away.
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"partial\":")
					c.Close()
					return
				}
			}
			http.Error(w, "cannot drop the connection", http.StatusBadGateway)
			return
		case st != 0:
			writeJSON(w, st, `{"title":"scripted","status":`+strconv.Itoa(st)+`}`)
			return
		}
	}
	degraded := `[]`
	if s.Partial {
		degraded = `["systemB"]`
	}
	if strings.HasSuffix(email, "@example.net") {
		writeJSON(w, http.StatusNotFound, `{"title":"Not Found","status":404,"degraded":`+degraded+`}`)
		return
	}
	writeJSON(w, http.StatusOK, `{"email":"x","partial":`+boolText(s.Partial)+`,"degraded":`+degraded+`,"conflicts":[{"field":"phone","kind":"mismatch"}]}`)
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	s.mu.Lock()
	s.admin = append(s.admin, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
	s.mu.Unlock()
	switch r.Method + " " + r.URL.Path {
	case "POST /_sim/reset":
		w.WriteHeader(http.StatusNoContent)
	case "PUT /_sim/faults":
		writeJSON(w, http.StatusOK, string(body))
	case "GET /_sim/stats":
		n := s.lookups.Load()
		writeJSON(w, http.StatusOK, `{"requests":`+strconv.FormatInt(n, 10)+`,"get":`+strconv.FormatInt(n, 10)+`,"injected":`+strconv.FormatInt(s.Injected, 10)+`}`)
	default:
		http.Error(w, "no such admin endpoint", http.StatusNotFound)
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
