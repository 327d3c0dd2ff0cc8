package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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

// Response is the body of a 200 answer, one result per distinct email.
type Response struct {
	Results []Result `json:"results"`
}

// Result is the sync state of one customer.
type Result struct {
	Email     string                `json:"email"`
	InSync    bool                  `json:"inSync"`
	PresentIn []merge.Source        `json:"presentIn"`
	Conflicts []Conflict            `json:"conflicts"`
	Freshness unified.FreshnessView `json:"freshness"`
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

	var down []merge.Source
	seen := map[merge.Source]bool{}
	for i := range reads {
		for _, s := range reads[i].Degraded() {
			if !seen[s] {
				seen[s] = true
				down = append(down, s)
			}
		}
	}
	if len(reads) > 0 && !reads[0].Freshness.SystemA.IsZero() {
		h.Metrics.Observe(emf.SyncLag, h.now().Sub(reads[0].Freshness.SystemA).Seconds(), emf.Seconds)
	}
	if len(down) > 0 {
		h.Metrics.Count(emf.SyncPartialResults, 1)
		for _, r := range reads {
			for _, e := range []error{r.AErr, r.BErr} {
				if e != nil {
					h.Log.WarnContext(ctx, "system unavailable", "err", e.Error())
					break
				}
			}
		}
		p := httpapi.NewProblem(http.StatusServiceUnavailable,
			"conflict detection needs both systems; unavailable: "+humanList(down))
		for _, s := range down {
			p.Degraded = append(p.Degraded, string(s))
		}
		return p.Response(), nil
	}

	resp := Response{Results: make([]Result, len(reads))}
	total := 0
	for i, r := range reads {
		res := Result{
			Email:     emails[i],
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
		total += len(res.Conflicts)
		h.Log.InfoContext(ctx, "sync", h.EmailAttr(r.Key), "inSync", res.InSync,
			"conflicts", len(res.Conflicts), "presentIn", res.PresentIn)
		resp.Results[i] = res
	}
	if total > 0 {
		h.Metrics.Count(emf.SyncConflicts, int64(total))
	}
	return httpapi.JSON(http.StatusOK, resp), nil
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
		return nil, nil, httpapi.NewProblem(http.StatusBadRequest, err.Error())
	}
	var list []string
	switch {
	case in.Email != nil && in.Emails != nil:
		return nil, nil, httpapi.NewProblem(http.StatusBadRequest, `give either "email" or "emails", not both`)
	case in.Email != nil:
		list = []string{*in.Email}
	case in.Emails != nil:
		list = *in.Emails
		if len(list) == 0 {
			return nil, nil, httpapi.NewProblem(http.StatusBadRequest, `"emails" is empty; give 1 to 100 emails`)
		}
		if len(list) > MaxEmails {
			return nil, nil, httpapi.NewProblem(http.StatusBadRequest,
				fmt.Sprintf(`"emails" has %d entries; at most %d are allowed`, len(list), MaxEmails))
		}
	default:
		return nil, nil, httpapi.NewProblem(http.StatusBadRequest, `the body needs "email" (a string) or "emails" (a list of 1 to 100 strings)`)
	}
	seen := make(map[string]bool, len(list))
	for i, e := range list {
		key, err := merge.ParseEmail(e)
		if err != nil {
			where := `"email"`
			if in.Emails != nil {
				where = fmt.Sprintf(`"emails"[%d]`, i)
			}
			return nil, nil, httpapi.NewProblem(http.StatusBadRequest,
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
