package unified

import (
	"context"
	"log/slog"
	"time"

	"github.com/acme/unified-customer-service/shared/httpapi"
	"github.com/acme/unified-customer-service/shared/merge"
)

// FreshnessView is merge.Freshness as the functions write it in JSON: null
// where a system was not read.
type FreshnessView struct {
	SystemA *time.Time `json:"systemA"`
	SystemB *time.Time `json:"systemB"`
	AsOf    *time.Time `json:"asOf"`
}

// ViewFreshness renders f for JSON.
func ViewFreshness(f merge.Freshness) FreshnessView {
	return FreshnessView{SystemA: TimePtr(f.SystemA), SystemB: TimePtr(f.SystemB), AsOf: TimePtr(f.AsOf)}
}

// TimePtr returns nil for the zero time and a UTC copy otherwise, so JSON
// shows null for "unknown".
func TimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// systemName is a system as a sentence names it.
func systemName(s merge.Source) string {
	if s == merge.SystemA {
		return "System A"
	}
	return "System B"
}

// outcome says in words what one system answered for the customer, after
// the system's name ("could not be asked"), or before it for the answers
// ("the customer is not in").
func (r *Read) outcome(s merge.Source) (phrase string, nameFirst bool) {
	rec, err := r.A, r.AErr
	if s == merge.SystemB {
		rec, err = r.B, r.BErr
	}
	switch {
	case err == nil && rec != nil:
		return "the customer is in", false
	case err == nil:
		return "the customer is not in", false
	}
	switch merge.ErrorKindOf(err) {
	case merge.ErrUnavailable:
		return "could not be asked", true
	case merge.ErrBadData:
		return "answered with data that breaks its contract", true
	case merge.ErrUnauthorized:
		return "refused this service's credentials", true
	case merge.ErrInvalid:
		return "refused the request as invalid", true
	case merge.ErrNotFound: // a failure that says "not found" is still a failure
	}
	return "failed unexpectedly", true
}

// Problem describes why r has no complete answer: nil when neither system
// failed. Its status is the failures' (httpapi.Status; of two failures, the
// worse: httpapi.Worse), Degraded and Reasons name the systems that failed
// and why, and Detail, after prefix, says what each system answered
// ("the customer is not in System A and System B could not be asked"),
// never quoting the customer. A 503 carries Retry-After.
func (r *Read) Problem(prefix string) *httpapi.Problem {
	fails := r.Failures()
	if len(fails) == 0 {
		return nil
	}
	kind := fails[0].Kind
	for _, f := range fails[1:] {
		kind = httpapi.Worse(kind, f.Kind)
	}
	clause := func(s merge.Source) (phrase, full string) {
		phrase, nameFirst := r.outcome(s)
		if nameFirst {
			return phrase, systemName(s) + " " + phrase
		}
		return phrase, phrase + " " + systemName(s)
	}
	pa, words := clause(merge.SystemA)
	if pb, b := clause(merge.SystemB); pa == pb { // both failed alike: two answers are no problem
		words = "System A and System B " + pa
	} else {
		words += " and " + b
	}
	p := httpapi.KindProblem(kind, prefix+words)
	for _, f := range fails {
		p.Degraded = append(p.Degraded, string(f.System))
	}
	p.Reasons = r.Reasons()
	return p
}

// Reasons says, per failed system, why it failed (httpapi.Reason's
// tokens); nil when neither failed.
func (r *Read) Reasons() map[string]string {
	var out map[string]string
	for _, f := range r.Failures() {
		if out == nil {
			out = map[string]string{}
		}
		out[string(f.System)] = httpapi.Reason(f.Kind)
	}
	return out
}

// LogFailures logs each system's failure at warning level: "system
// unavailable" for ErrUnavailable, "system degraded" for any other kind,
// with the system, the kind and the error (which never carries an email).
func (r *Read) LogFailures(ctx context.Context, log *slog.Logger) {
	for _, f := range r.Failures() {
		msg := "system degraded"
		if f.Kind == merge.ErrUnavailable {
			msg = "system unavailable"
		}
		log.WarnContext(ctx, msg, "system", string(f.System), "kind", httpapi.Reason(f.Kind), "err", f.Err.Error())
	}
}

// Conflict is one field the systems disagree on, and how it was resolved,
// as the functions write it in JSON (the lookup's answer, the sync
// worker's customer.conflicts).
type Conflict struct {
	Field        string         `json:"field"`
	Kind         merge.DiffKind `json:"kind"`
	SystemA      any            `json:"systemA"`
	SystemB      any            `json:"systemB"`
	NewerSource  merge.Source   `json:"newerSource"`
	ResolvedFrom merge.Source   `json:"resolvedFrom"`
	Rule         merge.Rule     `json:"rule"`
}

// ViewConflicts renders res's conflicts in field order: an empty list,
// never nil, when there are none.
func ViewConflicts(res *merge.Result) []Conflict {
	out := make([]Conflict, 0, len(res.Conflicts))
	for _, c := range res.Conflicts {
		out = append(out, Conflict{
			Field:        c.Field.Path(),
			Kind:         c.Kind,
			SystemA:      merge.JSONValue(c.Field, c.A),
			SystemB:      merge.JSONValue(c.Field, c.B),
			NewerSource:  c.NewerSource,
			ResolvedFrom: c.ResolvedFrom,
			Rule:         c.Rule,
		})
	}
	return out
}

// Timestamps holds one time per system; null where the system has no record.
type Timestamps struct {
	SystemA *time.Time `json:"systemA"`
	SystemB *time.Time `json:"systemB"`
}

// ViewTimestamps renders res's per-system lastUpdated.
func ViewTimestamps(res *merge.Result) Timestamps {
	return Timestamps{SystemA: TimePtr(res.A), SystemB: TimePtr(res.B)}
}
