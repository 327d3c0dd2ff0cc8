package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/httpapi"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/unified"
)

// Limits of one request.
const (
	MaxBodyBytes = 64 << 10
	MaxEmails    = 100
)

// Reader reads customers from both systems at one logical time.
type Reader interface {
	ReadMany(ctx context.Context, keys []string) []unified.Read
}

// Metrics receives the function's metric samples (EMF in production).
type Metrics interface {
	Count(name string, n int64)
	Observe(name string, value float64, unit emf.Unit)
}

// Handler answers POST /customer/sync: it surfaces field-level conflicts and
// never writes to either system.
type Handler struct {
	Reader  Reader
	Log     *slog.Logger
	Metrics Metrics
	// EmailAttr renders an email for logs (a keyed hash, never the address).
	EmailAttr func(email string) slog.Attr
	Now       func() time.Time
}

// Request is the body of POST /customer/sync: exactly one of Email or Emails.
type Request struct {
	Email  *string   `json:"email"`
	Emails *[]string `json:"emails"`
}

// Response is the body of a 200 answer, one result per distinct email. It
// is 200 when at least one customer could be answered; Partial says that
// some could not (their results have Status StatusUnknown), Degraded names
// the systems that failed for any of them.
type Response struct {
	Results  []Result       `json:"results"`
	Partial  bool           `json:"partial"`
	Degraded []merge.Source `json:"degraded"`
}

// Status is the sync state of one customer.
type Status string

// The states of a Result.
const (
	StatusInSync    Status = "inSync"    // both systems answered and agree
	StatusConflicts Status = "conflicts" // both answered; Conflicts lists how they differ
	StatusNotFound  Status = "notFound"  // both answered "not found"
	StatusUnknown   Status = "unknown"   // a system failed: see Degraded, Reasons and Problem
)

// Result is the sync state of one customer.
type Result struct {
	Email  string `json:"email"`
	Status Status `json:"status"`
	// InSync is true when the systems' answers agree (StatusInSync, and
	// StatusNotFound: neither holds the customer); false when unknown.
	InSync    bool                  `json:"inSync"`
	PresentIn []merge.Source        `json:"presentIn"` // the systems known to hold the customer
	Conflicts []Conflict            `json:"conflicts"`
	Freshness unified.FreshnessView `json:"freshness"`
	// Degraded, Reasons and Problem are set when Status is StatusUnknown:
	// the systems that failed, why (per system), and the problem a request
	// for this customer alone answers.
	Degraded []merge.Source    `json:"degraded,omitempty"`
	Reasons  map[string]string `json:"reasons,omitempty"`
	Problem  *httpapi.Problem  `json:"problem,omitempty"`
}

// Conflict is one field the systems disagree on.
type Conflict struct {
	Field       string         `json:"field"`
	Kind        merge.DiffKind `json:"kind"`
	SystemA     Side           `json:"systemA"`
	SystemB     Side           `json:"systemB"`
	NewerSource merge.Source   `json:"newerSource"`
}

// Side is one system's value of a conflicting field.
type Side struct {
	Value       any        `json:"value"`
	LastUpdated *time.Time `json:"lastUpdated"`
}

// Handle serves one API Gateway HTTP API request.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	keys, emails, prob := parse(&req)
	if prob != nil {
		return prob.Response(), nil
	}
	reads := h.Reader.ReadMany(ctx, keys)
	for i := range reads {
		if !reads[i].Freshness.SystemA.IsZero() {
			h.Metrics.Observe(emf.SyncLag, h.now().Sub(reads[i].Freshness.SystemA).Seconds(), emf.Seconds)
			break // one snapshot for the whole batch
		}
	}
	resp := Response{Results: make([]Result, len(reads)), Degraded: []merge.Source{}}
	answered, total := 0, 0
	for i := range reads {
		r := &reads[i]
		log := h.Log.With(h.EmailAttr(r.Key))
		r.LogFailures(ctx, log)
		res := result(r, emails[i])
		if res.Status == StatusUnknown {
			resp.Partial = true
			for _, s := range res.Degraded {
				if !slices.Contains(resp.Degraded, s) {
					resp.Degraded = append(resp.Degraded, s)
				}
			}
		} else {
			answered++
		}
		total += len(res.Conflicts)
		log.InfoContext(ctx, "sync", "status", res.Status, "inSync", res.InSync,
			"conflicts", len(res.Conflicts), "presentIn", res.PresentIn)
		resp.Results[i] = res
	}
	slices.Sort(resp.Degraded) // systemA before systemB
	if resp.Partial {
		h.Metrics.Count(emf.SyncPartialResults, 1)
	}
	if total > 0 {
		h.Metrics.Count(emf.SyncConflicts, int64(total))
	}
	if answered == 0 {
		return noAnswer(reads).Response(), nil
	}
	return httpapi.JSON(http.StatusOK, resp), nil
}

// result is the sync state of one customer as both systems answered.
func result(r *unified.Read, email string) Result {
	res := Result{
		Email:     email,
		PresentIn: []merge.Source{},
		Conflicts: []Conflict{},
		Freshness: unified.ViewFreshness(r.Freshness),
	}
	if r.A != nil {
		res.PresentIn = append(res.PresentIn, merge.SystemA)
	}
	if r.B != nil {
		res.PresentIn = append(res.PresentIn, merge.SystemB)
	}
	if p := r.Problem("conflict detection needs both systems: "); p != nil {
		res.Status, res.Degraded, res.Reasons = StatusUnknown, r.Degraded(), p.Reasons
		p.Degraded, p.Reasons = nil, nil // said once, beside the problem
		res.Problem = p
		return res
	}
	var aAt, bAt *time.Time
	if r.A != nil {
		aAt = unified.TimePtr(r.A.LastUpdated)
	}
	if r.B != nil {
		bAt = unified.TimePtr(r.B.LastUpdated)
	}
	for _, d := range merge.Diff(r.A, r.B) {
		res.Conflicts = append(res.Conflicts, Conflict{
			Field:       merge.Fields[d.Field].Path,
			Kind:        d.Kind,
			SystemA:     Side{Value: merge.JSONValue(d.Field, d.A), LastUpdated: aAt},
			SystemB:     Side{Value: merge.JSONValue(d.Field, d.B), LastUpdated: bAt},
			NewerSource: d.NewerSource,
		})
	}
	res.InSync = len(res.Conflicts) == 0
	switch {
	case r.A == nil && r.B == nil:
		res.Status = StatusNotFound
	case res.InSync:
		res.Status = StatusInSync
	default:
		res.Status = StatusConflicts
	}
	return res
}

// noAnswer is the problem that answers a request none of whose customers
// could be answered: the worst of the failures decides the status
// (httpapi.Worse: 503 when asking again may help), and the detail groups
// the systems by why they failed ("unavailable: System B").
func noAnswer(reads []unified.Read) *httpapi.Problem {
	worst := map[merge.Source]merge.ErrorKind{}
	kinds := map[merge.ErrorKind][]merge.Source{}
	var kind merge.ErrorKind
	first := true
	for i := range reads {
		for _, f := range reads[i].Failures() {
			if first {
				kind, first = f.Kind, false
			}
			kind = httpapi.Worse(kind, f.Kind)
			if w, ok := worst[f.System]; !ok || httpapi.Worse(w, f.Kind) != w {
				worst[f.System] = f.Kind
			}
			if !slices.Contains(kinds[f.Kind], f.System) {
				kinds[f.Kind] = append(kinds[f.Kind], f.System)
			}
		}
	}
	var groups []string
	all := merge.ErrorKinds()
	for _, k := range append(all[:], httpapi.KindInternal) {
		if srcs := kinds[k]; len(srcs) > 0 {
			slices.Sort(srcs)
			label := string(k)
			if k == httpapi.KindInternal {
				label = "failed unexpectedly"
			}
			groups = append(groups, label+": "+humanList(srcs))
		}
	}
	p := httpapi.KindProblem(kind, "conflict detection needs both systems; "+strings.Join(groups, "; "))
	p.Reasons = map[string]string{}
	for _, s := range []merge.Source{merge.SystemA, merge.SystemB} {
		if k, ok := worst[s]; ok {
			p.Degraded = append(p.Degraded, string(s))
			p.Reasons[string(s)] = httpapi.Reason(k)
		}
	}
	return p
}

// parse validates the request and returns the distinct join keys with the
// emails as the client wrote them (trimmed), in request order.
func parse(req *events.APIGatewayV2HTTPRequest) (keys, emails []string, prob *httpapi.Problem) {
	body, prob := httpapi.Body(req, MaxBodyBytes)
	if prob != nil {
		return nil, nil, prob
	}
	var in Request
	if err := httpapi.DecodeStrict(body, &in); err != nil {
		return nil, nil, httpapi.NewProblem(httpapi.Status(merge.ErrInvalid), err.Error())
	}
	var list []string
	switch {
	case in.Email != nil && in.Emails != nil:
		return nil, nil, httpapi.NewProblem(httpapi.Status(merge.ErrInvalid), `give either "email" or "emails", not both`)
	case in.Email != nil:
		list = []string{*in.Email}
	case in.Emails != nil:
		list = *in.Emails
		if len(list) == 0 {
			return nil, nil, httpapi.NewProblem(httpapi.Status(merge.ErrInvalid), `"emails" is empty; give 1 to 100 emails`)
		}
		if len(list) > MaxEmails {
			return nil, nil, httpapi.NewProblem(httpapi.Status(merge.ErrInvalid),
				fmt.Sprintf(`"emails" has %d entries; at most %d are allowed`, len(list), MaxEmails))
		}
	default:
		return nil, nil, httpapi.NewProblem(httpapi.Status(merge.ErrInvalid), `the body needs "email" (a string) or "emails" (a list of 1 to 100 strings)`)
	}
	seen := make(map[string]bool, len(list))
	for i, e := range list {
		key, err := merge.ParseEmail(e)
		if err != nil {
			where := `"email"`
			if in.Emails != nil {
				where = fmt.Sprintf(`"emails"[%d]`, i)
			}
			return nil, nil, httpapi.NewProblem(httpapi.Status(merge.ErrInvalid),
				where+": "+strings.TrimPrefix(err.Error(), "merge: "))
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		keys = append(keys, key)
		emails = append(emails, strings.TrimSpace(e))
	}
	return keys, emails, nil
}

func humanList(srcs []merge.Source) string {
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = map[merge.Source]string{merge.SystemA: "System A", merge.SystemB: "System B"}[s]
	}
	return strings.Join(names, " and ")
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
