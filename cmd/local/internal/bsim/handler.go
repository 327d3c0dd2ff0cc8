package bsim

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
)

// Page sizes of GET /customers.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// AdminPrefix is the path prefix of the admin endpoints; they need no token.
const AdminPrefix = "/_sim/"

// AdminHelp describes the admin endpoints (served as text at GET /_sim/).
const AdminHelp = `System B simulator admin endpoints (no token needed):
  GET  /_sim/faults   the faults in force, as JSON
  PUT  /_sim/faults   replace them, e.g. {"down":true} or
                      {"latencyMs":0,"errorRate":0.2,"status":503,"failNext":0,"retryAfter":"",
                       "down":false,"hang":false,"redirect":"","malformed":false,"truncated":false,
                       "oversized":false,"oversizedBytes":0,"badLastUpdated":false,"badItem":"",
                       "noPatch":false}
                      (fields left out are off)
  POST /_sim/reset    clear every fault and zero the counters
  GET  /_sim/stats    request counters, as JSON
  GET  /_sim/stats/patches?email=E
                      PATCHes applied to customer E, as {"patches":N}
  GET  /_sim/webhook  where change notifications go, and their counters
  PUT  /_sim/webhook  {"url":"http://127.0.0.1:3000/webhooks/system-b","secret":"..."}
                      (an empty url stops them; the secret defaults to the local one)
`

const cursorPrefix = "v1:"

// Handler returns the HTTP handler of the System B API and the admin paths.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

var pagePool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, AdminPrefix) || r.URL.Path == strings.TrimSuffix(AdminPrefix, "/") {
		s.serveAdmin(w, r)
		return
	}
	s.stats.requests.Add(1)
	f, ok := s.injectFaults(w, r)
	if !ok {
		return
	}
	if !s.authorized(r) {
		s.stats.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="systemb"`)
		writeProblem(w, http.StatusUnauthorized, "a valid bearer token is required")
		return
	}
	path := r.URL.EscapedPath()
	switch {
	case path == "/customers":
		if !allow(w, r, http.MethodGet) {
			return
		}
		s.stats.list.Add(1)
		s.serveList(w, r, f)
	case strings.HasPrefix(path, "/customers/") && !strings.Contains(path[len("/customers/"):], "/"):
		email, err := url.PathUnescape(path[len("/customers/"):])
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "the email path segment is not validly escaped")
			return
		}
		if !allow(w, r, http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete) {
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.stats.get.Add(1)
			s.serveGet(w, email, f)
		case http.MethodPatch:
			s.stats.put.Add(1)
			s.stats.patch.Add(1)
			if f.NoPatch {
				s.stats.injected.Add(1)
				w.Header().Set("Allow", "GET, PUT, DELETE")
				writeProblem(w, http.StatusMethodNotAllowed, "method not allowed (System B API v1 has no PATCH)")
				return
			}
			s.servePut(w, r, email, true)
		case http.MethodPut:
			s.stats.put.Add(1)
			s.servePut(w, r, email, false)
		default:
			s.stats.delete.Add(1)
			s.serveDelete(w, email)
		}
	default:
		writeProblem(w, http.StatusNotFound, "no such resource")
	}
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeProblem(w, http.StatusMethodNotAllowed, "method not allowed")
	return false
}

func (s *Sim) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.Token())) == 1
}

// injectFaults applies the request-level faults. It returns the faults for
// the answer, and false when a fault has already answered (or dropped) it.
func (s *Sim) injectFaults(w http.ResponseWriter, r *http.Request) (Faults, bool) {
	ctx := r.Context()
	if s.latency > 0 && !s.sleep(ctx, s.latency) {
		return s.faults.load().f, false
	}
	for {
		st := s.faults.load()
		f := st.f
		if f.LatencyMs > 0 && !s.sleep(ctx, time.Duration(f.LatencyMs)*time.Millisecond) {
			return f, false
		}
		switch {
		case f.Down:
			s.stats.injected.Add(1)
			dropConnection(w)
			return f, false
		case f.Hang:
			s.stats.injected.Add(1)
			select {
			case <-ctx.Done():
				return f, false
			case <-s.stop:
				writeProblem(w, http.StatusServiceUnavailable, "the simulator is shutting down")
				return f, false
			case <-st.release:
				continue // the faults changed: start over under the new ones
			}
		case f.FailNext > 0 && st.failNext.Add(-1) >= 0,
			f.ErrorRate > 0 && s.random() < f.ErrorRate:
			s.stats.injected.Add(1)
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			writeProblem(w, f.Status, "injected fault")
			return f, false
		case f.Redirect != "":
			s.stats.injected.Add(1)
			w.Header().Set("Location", f.Redirect)
			w.WriteHeader(http.StatusFound)
			return f, false
		}
		return f, true
	}
}

// dropConnection closes the client's connection without an answer, or
// answers 503 when the connection cannot be taken over (HTTP/2).
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeProblem(w, http.StatusServiceUnavailable, "System B is down")
		return
	}
	_ = conn.Close()
}

func (s *Sim) serveGet(w http.ResponseWriter, email string, f Faults) {
	key := merge.Key(email)
	s.mu.RLock()
	i, ok := s.find(key)
	var doc []byte
	var rev uint64
	if ok {
		doc, rev = s.entries[i].doc, s.entries[i].rev // documents are never modified in place
	}
	s.mu.RUnlock()
	if !ok || key == "" {
		writeProblem(w, http.StatusNotFound, "no such customer")
		return
	}
	if f.BadItem != "" && merge.Key(f.BadItem) == key {
		s.stats.injected.Add(1)
		doc = breakLastUpdated(doc)
	}
	w.Header().Set("ETag", ETag(rev))
	s.writeOK(w, doc, f)
}

func (s *Sim) serveList(w http.ResponseWriter, r *http.Request, f Faults) {
	q := r.URL.Query()
	limit := DefaultLimit
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if len(v) != 1 || err != nil || n < 1 || n > MaxLimit {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("limit must be one integer in 1..%d", MaxLimit))
			return
		}
		limit = n
	}
	var since int64
	hasSince := false
	if v, ok := q["updatedSince"]; ok {
		if s.v1Only {
			writeProblem(w, http.StatusBadRequest, "unknown query parameter updatedSince (this System B implements API v1)")
			return
		}
		t, err := time.Parse(time.RFC3339Nano, v[0])
		if len(v) != 1 || err != nil {
			writeProblem(w, http.StatusBadRequest, "updatedSince must be one RFC 3339 time")
			return
		}
		since, hasSince = t.UnixNano(), true
	}
	after, hasCursor := "", false
	if v, ok := q["cursor"]; ok && (len(v) != 1 || v[0] != "") { // "cursor=" is the first page
		c, err := decodeCursor(v)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "cursor is not a cursor this API returned")
			return
		}
		after, hasCursor = c, true
	}

	bp := pagePool.Get().(*[]byte)
	defer pagePool.Put(bp)
	buf := append((*bp)[:0], `{"items":[`...)
	s.mu.RLock()
	i, found := s.find(after)
	if found && hasCursor {
		i++
	}
	badKey := ""
	if f.BadItem != "" {
		badKey = merge.Key(f.BadItem)
	}
	// end is after the last entry looked at: limit of them, or with
	// updatedSince the first limit changed ones (scanning past the others).
	end, n := i, 0
	for ; end < len(s.entries) && n < limit; end++ {
		e := &s.entries[end]
		if hasSince && e.updated < since {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		if badKey != "" && e.key == badKey {
			s.stats.injected.Add(1)
			buf = append(buf, breakLastUpdated(e.doc)...)
			continue
		}
		buf = append(buf, e.doc...)
	}
	buf = append(buf, `],"nextCursor":`...)
	if end < len(s.entries) {
		buf = append(buf, '"')
		buf = appendCursor(buf, s.entries[end-1].key)
		buf = append(buf, '"')
	} else {
		buf = append(buf, "null"...)
	}
	s.mu.RUnlock()
	buf = append(buf, '}')
	*bp = buf
	s.writeOK(w, buf, f)
}

// appendCursor appends the opaque cursor naming key: base64url of "v1:"+key.
func appendCursor(dst []byte, key string) []byte {
	raw := cursorPrefix + key
	return base64.RawURLEncoding.AppendEncode(dst, []byte(raw))
}

func decodeCursor(v []string) (string, error) {
	if len(v) != 1 {
		return "", errors.New("bsim: more than one cursor")
	}
	raw, err := base64.RawURLEncoding.DecodeString(v[0])
	if err != nil || !bytes.HasPrefix(raw, []byte(cursorPrefix)) {
		return "", errors.New("bsim: not a cursor")
	}
	return string(raw[len(cursorPrefix):]), nil
}

// writeOK writes a 200 JSON answer, broken as the body faults say.
func (s *Sim) writeOK(w http.ResponseWriter, body []byte, f Faults) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch {
	case f.Oversized:
		s.stats.injected.Add(1)
		writeOversized(w, f.OversizedBytes)
		return
	case f.Malformed:
		s.stats.injected.Add(1)
		body = []byte(`{"items": [{"email": not json`)
	case f.Truncated:
		s.stats.injected.Add(1)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2]) // net/http then closes the connection
		return
	case f.BadLastUpdated:
		s.stats.injected.Add(1)
		body = breakLastUpdated(body)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// breakLastUpdated returns a copy of the documents in body with every
// lastUpdated made unparsable.
func breakLastUpdated(body []byte) []byte {
	return bytes.ReplaceAll(body, []byte(`"lastUpdated":"`), []byte(`"lastUpdated":"not-a-time/`))
}

// writeOversized writes {"padding":"xxx..."} of exactly n bytes (at least
// the frame's), without holding it in memory.
func writeOversized(w http.ResponseWriter, n int64) {
	const head, tail = `{"padding":"`, `"}`
	pad := max(n-int64(len(head)+len(tail)), 0)
	w.Header().Set("Content-Length", strconv.FormatInt(pad+int64(len(head)+len(tail)), 10))
	w.WriteHeader(http.StatusOK)
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	for pad > 0 {
		k := min(pad, int64(len(chunk)))
		if _, err := w.Write(chunk[:k]); err != nil {
			return // the client stopped reading, as it should
		}
		pad -= k
	}
	_, _ = io.WriteString(w, tail)
}

// servePut stores a customer: PUT replaces the whole record; PATCH (API
// v1.1) overlays the body's fields on the stored record, "address" member by
// member. Either way a body without lastUpdated gets Now. With If-Match,
// the write happens only when the stored record's ETag matches (or "*" and
// the customer exists), else 412; the check and the write are one step.
// The answer carries the stored document and its new ETag.
func (s *Sim) servePut(w http.ResponseWriter, r *http.Request, email string, patch bool) {
	key := merge.Key(email)
	if key == "" {
		writeProblem(w, http.StatusBadRequest, "the email path segment is empty")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxLineBytes))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body must be a customer JSON object of at most %d bytes", MaxLineBytes))
		return
	}
	ifMatch, conditional := r.Header.Get("If-Match"), len(r.Header.Values("If-Match")) > 0
	status, stored, rev, detail := s.write(key, email, body, patch, ifMatch, conditional)
	if detail != "" {
		if status == http.StatusPreconditionFailed {
			s.stats.preconditionFailed.Add(1)
		}
		writeProblem(w, status, detail)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(stored)))
	w.Header().Set("ETag", ETag(rev))
	w.WriteHeader(status)
	_, _ = w.Write(stored)
}

// write applies a PUT or PATCH body to key under the lock. It returns the
// status and either the stored document and its revision or a problem
// detail (never customer data).
func (s *Sim) write(key, email string, body []byte, patch bool, ifMatch string, conditional bool) (status int, stored []byte, rev uint64, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, exists := s.find(key)
	if conditional && (!exists || !etagMatches(ifMatch, s.entries[i].rev)) {
		return http.StatusPreconditionFailed, nil, 0, "If-Match does not match the customer's current ETag; read it again"
	}
	if patch {
		if !exists {
			return http.StatusNotFound, nil, 0, "no such customer"
		}
		var err error
		if body, err = overlay(s.entries[i].doc, body); err != nil {
			return http.StatusBadRequest, nil, 0, err.Error()
		}
	}
	doc, err := s.completeCustomer(body, email)
	if err != nil {
		return http.StatusBadRequest, nil, 0, err.Error()
	}
	rec, err := systemb.UnmarshalCustomer(doc)
	if err != nil {
		return http.StatusBadRequest, nil, 0, err.Error()
	}
	if merge.Key(rec.Email()) != key {
		return http.StatusBadRequest, nil, 0, "the email in the body does not match the path"
	}
	stored = systemb.AppendCustomer(nil, rec)
	rev, created := s.put(key, stored, rec.LastUpdated)
	if patch {
		if s.patches == nil {
			s.patches = map[string]int64{}
		}
		s.patches[key]++
	}
	if created {
		return http.StatusCreated, stored, rev, ""
	}
	return http.StatusOK, stored, rev, ""
}

// etagMatches reports whether an If-Match value (a list of entity tags, or
// "*") names revision rev. Weak tags never match (strong comparison).
func etagMatches(ifMatch string, rev uint64) bool {
	want := ETag(rev)
	for tag := range strings.SplitSeq(ifMatch, ",") {
		if tag = strings.TrimSpace(tag); tag == "*" || tag == want {
			return true
		}
	}
	return false
}

// overlay returns the stored document with patch's members put over it
// ("address" member by member) and without its lastUpdated unless patch
// gives one.
func overlay(stored, patch []byte) ([]byte, error) {
	var base, over map[string]json.RawMessage
	if err := json.Unmarshal(patch, &over); err != nil || over == nil {
		return nil, errors.New("bsim: patch customer: the body is not a JSON object")
	}
	if err := json.Unmarshal(stored, &base); err != nil {
		return nil, fmt.Errorf("bsim: patch customer: stored document: %w", err)
	}
	delete(base, "lastUpdated")
	for name, v := range over {
		var sub, subOver map[string]json.RawMessage
		if name == "address" && json.Unmarshal(base[name], &sub) == nil && sub != nil &&
			json.Unmarshal(v, &subOver) == nil && subOver != nil {
			for k, sv := range subOver {
				sub[k] = sv
			}
			v, _ = json.Marshal(sub) // raw messages always marshal
		}
		base[name] = v
	}
	b, err := json.Marshal(base)
	if err != nil {
		return nil, fmt.Errorf("bsim: patch customer: %w", err)
	}
	return b, nil
}

// completeCustomer fills a PUT body's missing email (from the path) and
// missing lastUpdated (Now) and returns the document to decode.
func (s *Sim) completeCustomer(body []byte, email string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, errors.New("bsim: put customer: the body is not a JSON object")
	}
	fill := func(name, value string) {
		if raw, ok := top[name]; !ok || bytes.Equal(raw, []byte("null")) {
			b, _ := json.Marshal(value) // a string always marshals
			top[name] = b
		}
	}
	fill("email", strings.TrimSpace(email))
	fill("lastUpdated", s.now().UTC().Format(time.RFC3339))
	b, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("bsim: put customer: %w", err)
	}
	return b, nil
}

func (s *Sim) serveDelete(w http.ResponseWriter, email string) {
	if !s.remove(merge.Key(email)) {
		writeProblem(w, http.StatusNotFound, "no such customer")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimSuffix(r.URL.Path, "/") + " " + r.Method {
	case "/_sim GET":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, AdminHelp)
	case "/_sim/faults GET":
		writeJSON(w, s.Faults())
	case "/_sim/faults PUT":
		var f Faults
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeProblem(w, http.StatusBadRequest, "bsim: faults: want a JSON object of known fields: "+err.Error())
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeProblem(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, s.Faults())
	case "/_sim/reset POST":
		_ = s.SetFaults(Faults{})
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	case "/_sim/stats GET":
		writeJSON(w, s.Stats())
	case "/_sim/stats/patches GET":
		email := r.URL.Query().Get("email")
		if merge.Key(email) == "" {
			writeProblem(w, http.StatusBadRequest, "bsim: want ?email=<the customer's email>")
			return
		}
		writeJSON(w, struct {
			Patches int64 `json:"patches"`
		}{s.PatchCount(email)})
	case "/_sim/webhook GET":
		c := s.Webhook()
		writeJSON(w, struct {
			URL   string       `json:"url"`
			Stats WebhookStats `json:"stats"`
		}{c.URL, s.WebhookStats()}) // never the secret
	case "/_sim/webhook PUT":
		var c WebhookConfig
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			writeProblem(w, http.StatusBadRequest, "bsim: webhook: want {\"url\": ..., \"secret\": ...}: "+err.Error())
			return
		}
		if err := s.SetWebhook(c); err != nil {
			writeProblem(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeProblem(w, http.StatusNotFound, "no such admin endpoint; GET /_sim/ lists them")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "bsim: encode answer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// writeProblem writes an RFC 9457 problem document. detail never carries
// customer data.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{"about:blank", http.StatusText(status), status, detail})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
