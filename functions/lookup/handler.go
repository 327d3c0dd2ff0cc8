package main

import (
	"context"
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

// Reader reads one customer from both systems.
type Reader interface {
	Read(ctx context.Context, key string) unified.Read
}

// Metrics receives the function's metric samples (EMF in production).
type Metrics interface {
	Count(name string, n int64)
	Observe(name string, value float64, unit emf.Unit)
}

// Handler answers GET /customer/{email}.
type Handler struct {
	Reader  Reader
	Rules   merge.Rules
	Log     *slog.Logger
	Metrics Metrics
	// EmailAttr renders an email for logs (a keyed hash, never the address).
	EmailAttr func(email string) slog.Attr
	Now       func() time.Time
}

// Response is the body of a 200 answer.
type Response struct {
	Email       string                  `json:"email"`
	Customer    merge.Record            `json:"customer"`
	Sources     map[string]merge.Source `json:"sources"`
	Conflicts   []Conflict              `json:"conflicts"`
	LastUpdated Timestamps              `json:"lastUpdated"`
	Freshness   unified.FreshnessView   `json:"freshness"`
	Partial     bool                    `json:"partial"`
	Degraded    []merge.Source          `json:"degraded"`
	// Reasons says, per system in Degraded, why it failed ("unavailable",
	// "badData", ...); absent when nothing is degraded.
	Reasons map[string]string `json:"reasons,omitempty"`
}

// Conflict is one field the systems disagree on, and how it was resolved.
type Conflict = unified.Conflict

// Timestamps holds one time per system; null where the system has no record.
type Timestamps = unified.Timestamps

// Handle serves one API Gateway HTTP API request.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	raw, ok := req.PathParameters["email"]
	if !ok {
		return httpapi.NewProblem(httpapi.Status(merge.ErrInvalid), "the path must be /customer/{email}").Response(), nil
	}
	key, err := merge.ParseEmail(raw)
	if err != nil {
		return httpapi.NewProblem(httpapi.Status(merge.ErrInvalid), strings.TrimPrefix(err.Error(), "merge: ")).Response(), nil
	}
	read := h.Reader.Read(ctx, key)
	degraded := read.Degraded()
	log := h.Log.With(h.EmailAttr(key))
	read.LogFailures(ctx, log)
	if !read.Freshness.SystemA.IsZero() {
		h.Metrics.Observe(emf.SyncLag, h.now().Sub(read.Freshness.SystemA).Seconds(), emf.Seconds)
	}
	if len(degraded) > 0 {
		h.Metrics.Count(emf.SyncPartialResults, 1)
	}

	if read.A == nil && read.B == nil {
		// Absent only when both systems answered "not found"; with one of
		// them failed, whether the customer exists is unknown.
		p := read.Problem("")
		if p == nil {
			p = httpapi.NewProblem(httpapi.Status(merge.ErrNotFound), "no customer with this email")
		}
		log.InfoContext(ctx, "lookup", "status", p.Status, "degraded", p.Degraded)
		return p.Response(), nil
	}

	res := merge.Merge(read.A, read.B, h.Rules)
	resp := Response{
		Email:       res.Customer.Email(),
		Customer:    res.Customer,
		Sources:     map[string]merge.Source{},
		Conflicts:   unified.ViewConflicts(&res),
		LastUpdated: unified.ViewTimestamps(&res),
		Freshness:   unified.ViewFreshness(read.Freshness),
		Partial:     len(degraded) > 0,
		Degraded:    degraded,
	}
	if resp.Degraded == nil {
		resp.Degraded = []merge.Source{}
	}
	resp.Reasons = read.Reasons()
	for i, src := range res.Sources {
		if src != "" {
			resp.Sources[merge.Fields[i].Path] = src
		}
	}
	if n := len(resp.Conflicts); n > 0 {
		h.Metrics.Count(emf.SyncConflicts, int64(n))
	}
	log.InfoContext(ctx, "lookup", "status", http.StatusOK, "presence", res.Presence,
		"conflicts", len(resp.Conflicts), "partial", resp.Partial)
	return httpapi.JSON(http.StatusOK, resp), nil
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
