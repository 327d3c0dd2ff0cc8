package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/httpapi"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/webhook"
)

// MaxWebhookBody bounds a delivery's body: one customer and its change type.
const MaxWebhookBody = 64 << 10

// The change types of a delivery.
const (
	ChangeCreated = "created"
	ChangeUpdated = "updated"
	ChangeDeleted = "deleted"
)

// Webhook receives System B's change notifications on POST
// /webhooks/system-b (API Gateway HTTP API, payload format 2.0), outside
// the customer routes' authorizer: a delivery is authenticated by its
// signature (shared/webhook). A verified delivery is published as one
// change event, acknowledged by the broker before the 200; anything else
// publishes nothing.
type Webhook struct {
	Publisher changes.Publisher
	// Secret returns the signing secret ("current[,previous]").
	Secret    func(ctx context.Context) (string, error)
	Now       func() time.Time
	Log       *slog.Logger
	Metrics   Metrics
	EmailAttr func(string) slog.Attr
}

// Metrics is the part of emf.Metrics the capture uses.
type Metrics interface {
	Count(name string, n int64)
	Observe(name string, value float64, unit emf.Unit)
}

// delivery is the body System B posts.
type delivery struct {
	Type     string          `json:"type"`
	Customer json.RawMessage `json:"customer"`
}

// Handle answers one delivery: 200 with the event id once published; 401
// (a missing, malformed, stale or wrong signature), 400 (a signed body that
// breaks the contract) or 413 without publishing; 503 when the broker did
// not acknowledge, so that System B retries (the same change gets the same
// event id).
func (h *Webhook) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := h.Now()
	defer func() {
		h.Metrics.Observe(emf.CaptureDuration, float64(h.Now().Sub(start).Microseconds())/1000, emf.Milliseconds)
	}()

	body, p := httpapi.Body(&req, MaxWebhookBody)
	if p != nil {
		return p.Response(), nil
	}
	secret, err := h.Secret(ctx)
	if err != nil {
		h.Metrics.Count(emf.CaptureWebhookFailed, 1)
		h.Log.ErrorContext(ctx, "webhook secret unavailable", "err", err.Error())
		return httpapi.KindProblem(merge.ErrUnavailable, "the webhook secret could not be read").Response(), nil
	}
	secrets, err := webhook.ParseSecrets(secret)
	if err != nil {
		h.Metrics.Count(emf.CaptureWebhookFailed, 1)
		h.Log.ErrorContext(ctx, "webhook secret is empty")
		return httpapi.KindProblem(merge.ErrUnavailable, "no webhook secret is configured").Response(), nil
	}
	if _, err := webhook.Verify(header(req.Headers, webhook.HeaderSignature), body, secrets, h.Now()); err != nil {
		h.Metrics.Count(emf.CaptureWebhookRejected, 1)
		h.Log.WarnContext(ctx, "webhook delivery refused", "reason", rejectReason(err), "sourceIp", req.RequestContext.HTTP.SourceIP)
		return httpapi.NewProblem(http.StatusUnauthorized, "the delivery's "+webhook.HeaderSignature+" is "+rejectReason(err)).Response(), nil
	}
	ev, p := h.event(body, header(req.Headers, webhook.HeaderDelivery))
	if p != nil {
		h.Log.WarnContext(ctx, "webhook delivery does not follow the contract", "detail", p.Detail)
		return p.Response(), nil
	}
	pctx, cancel := reserve(ctx)
	defer cancel()
	if err := h.Publisher.Publish(pctx, ev); err != nil {
		h.Metrics.Count(emf.CaptureWebhookFailed, 1)
		h.Log.ErrorContext(ctx, "webhook change not published", "err", err.Error(), "eventId", ev.ID, h.EmailAttr(ev.Key))
		return httpapi.KindProblem(merge.ErrUnavailable, "the change could not be published").Response(), nil
	}
	published(h.Metrics, h.Now(), ev)
	h.Log.InfoContext(ctx, "webhook change published", "eventId", ev.ID, "op", string(ev.Op), h.EmailAttr(ev.Key))
	return httpapi.JSON(http.StatusOK, struct {
		EventID string `json:"eventId"`
		Op      string `json:"op"`
	}{ev.ID, string(ev.Op)}), nil
}

// event reads a verified delivery into its change event.
func (h *Webhook) event(body []byte, deliveryID string) (changes.Event, *httpapi.Problem) {
	var d delivery
	if err := httpapi.DecodeStrict(body, &d); err != nil {
		return changes.Event{}, httpapi.NewProblem(http.StatusBadRequest, err.Error())
	}
	if len(bytes.TrimSpace(d.Customer)) == 0 || string(d.Customer) == "null" {
		return changes.Event{}, httpapi.NewProblem(http.StatusBadRequest, `"customer" is required`)
	}
	rec, err := systemb.UnmarshalCustomer(d.Customer)
	if err != nil {
		return changes.Event{}, httpapi.NewProblem(http.StatusBadRequest, `"customer" is not a System B customer: `+fieldReason(err))
	}
	version := "webhook:" + clip(deliveryID)
	var ev changes.Event
	switch d.Type {
	case ChangeCreated, ChangeUpdated:
		ev, err = changes.NewUpsert(merge.SystemB, rec, version, time.Time{}, h.Now())
	case ChangeDeleted:
		ev, err = changes.New(merge.SystemB, rec, nil, version, time.Time{}, h.Now())
	default:
		return changes.Event{}, httpapi.NewProblem(http.StatusBadRequest, `"type" must be created, updated or deleted`)
	}
	if err != nil {
		return changes.Event{}, httpapi.NewProblem(http.StatusBadRequest, `"customer" has no valid email`)
	}
	return ev, nil
}

// DeadlineReserve is the time before the invocation's deadline at which a
// publish that is still waiting for the broker gives up, so the function
// answers (503) or fails cleanly, with a log line, instead of being killed.
const DeadlineReserve = time.Second

// reserve returns ctx shortened by DeadlineReserve when it has a deadline.
func reserve(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-DeadlineReserve))
	}
	return context.WithCancel(ctx)
}

// published counts events the broker acknowledged at now, by op, and
// their capture lag.
func published(m Metrics, now time.Time, evs ...changes.Event) {
	for i := range evs {
		m.Count(emf.CaptureBPublishedName(string(evs[i].Op)), 1)
		m.Observe(emf.CaptureLag, max(now.Sub(evs[i].Source.LastUpdated).Seconds(), 0), emf.Seconds)
	}
}

// header returns a request header; API Gateway lower-cases their names.
func header(h map[string]string, name string) string {
	if v, ok := h[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// rejectReason names why a signature was refused, for the 401 and the log.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, webhook.ErrMissing):
		return "missing"
	case errors.Is(err, webhook.ErrMalformed):
		return "malformed"
	case errors.Is(err, webhook.ErrTooOld):
		return fmt.Sprintf("outside the %v tolerance (a replay or a wrong clock)", webhook.Tolerance)
	case errors.Is(err, webhook.ErrNoSecret):
		return "not verifiable (no secret)"
	}
	return "not valid"
}

// fieldReason keeps what the codec says about the field at fault and
// drops the rest (it never quotes values, but is long).
func fieldReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return clip(msg)
}

// clip bounds a client-supplied token quoted in the event or a log.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "")
}
