package bsim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/acme/unified-customer-service/shared/webhook"
)

// DefaultWebhookSecret is the signing secret of the local loop's webhook
// (the functions get it as SYSTEM_B_WEBHOOK_SECRET).
const DefaultWebhookSecret = "local-systemb-webhook-secret"

// Webhook delivery parameters, as a real provider's: a delivery that is not
// answered 2xx is tried again after 1 s, 2 s, 4 s ... (at most
// WebhookMaxWait apart), WebhookAttempts times in all, each attempt signed
// afresh with the time it is sent.
const (
	WebhookAttempts = 8
	WebhookMaxWait  = 30 * time.Second
	WebhookTimeout  = 10 * time.Second
	// webhookQueue bounds the notifications waiting to be sent; a change
	// made while it is full is counted as dropped (Stats.WebhookDropped).
	webhookQueue = 4096
)

// WebhookConfig is where the simulator sends its change notifications.
type WebhookConfig struct {
	// URL receives POSTs of {"type": "created"|"updated"|"deleted",
	// "customer": {...}}; empty sends nothing.
	URL string `json:"url"`
	// Secret signs them (X-SystemB-Signature); DefaultWebhookSecret when empty.
	Secret string `json:"secret"`
}

// notification is one change waiting to be delivered.
type notification struct {
	typ string
	doc []byte // the customer document (the last one for a deletion)
}

// webhookState is the sender's part of a Sim.
type webhookState struct {
	cfg     atomic.Pointer[WebhookConfig]
	queue   chan notification
	seq     atomic.Int64
	started atomic.Bool

	sent, failed, dropped atomic.Int64
}

// SetWebhook makes the simulator POST a signed notification to cfg.URL
// for every customer created, updated or deleted through the API from now
// on (not for Load); an empty URL stops it. Deliveries go one at a time,
// in the order of the changes.
func (s *Sim) SetWebhook(cfg WebhookConfig) error {
	if cfg.URL != "" {
		u, err := url.Parse(cfg.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("bsim: webhook: the URL must be an absolute http(s) URL")
		}
	}
	if cfg.Secret == "" {
		cfg.Secret = DefaultWebhookSecret
	}
	s.hook.cfg.Store(&cfg)
	if cfg.URL != "" && s.hook.started.CompareAndSwap(false, true) {
		go s.sendWebhooks()
	}
	return nil
}

// Webhook returns the webhook configuration in force.
func (s *Sim) Webhook() WebhookConfig {
	if c := s.hook.cfg.Load(); c != nil {
		return *c
	}
	return WebhookConfig{}
}

// notify queues a notification of a change when a webhook is set.
func (s *Sim) notify(typ string, doc []byte) {
	if c := s.hook.cfg.Load(); c == nil || c.URL == "" {
		return
	}
	select {
	case s.hook.queue <- notification{typ, doc}:
	default:
		s.hook.dropped.Add(1)
	}
}

// sendWebhooks delivers the queued notifications until Close.
func (s *Sim) sendWebhooks() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	hc := &http.Client{Timeout: WebhookTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-s.hook.queue:
			if s.deliver(ctx, hc, n) {
				s.hook.sent.Add(1)
			} else {
				s.hook.failed.Add(1)
			}
		}
	}
}

// deliver sends one notification, retrying on anything but a 2xx; it
// reports whether it was accepted.
func (s *Sim) deliver(ctx context.Context, hc *http.Client, n notification) bool {
	body := make([]byte, 0, len(n.doc)+32)
	body = append(body, `{"type":"`...)
	body = append(body, n.typ...)
	body = append(body, `","customer":`...)
	body = append(body, n.doc...)
	body = append(body, '}')
	id := "sim-" + strconv.FormatInt(s.hook.seq.Add(1), 10)
	wait := time.Second
	for attempt := 1; attempt <= WebhookAttempts; attempt++ {
		cfg := s.Webhook()
		if cfg.URL == "" {
			return false
		}
		if s.post(ctx, hc, cfg, id, body) {
			return true
		}
		if attempt == WebhookAttempts || !s.sleep(ctx, wait) {
			return false
		}
		wait = min(2*wait, WebhookMaxWait)
	}
	return false
}

// post makes one attempt, signed now.
func (s *Sim) post(ctx context.Context, hc *http.Client, cfg WebhookConfig, id string, body []byte) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bsim-webhooks/1.1")
	req.Header.Set(webhook.HeaderDelivery, id)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(strings.TrimSpace(strings.SplitN(cfg.Secret, ",", 2)[0])), s.now(), body))
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode >= 200 && resp.StatusCode <= 299
}

// WebhookStats counts the deliveries: accepted, given up after every
// attempt, and dropped because the queue was full.
type WebhookStats struct {
	Sent    int64 `json:"sent"`
	Failed  int64 `json:"failed"`
	Dropped int64 `json:"dropped"`
}

// WebhookStats returns the delivery counters.
func (s *Sim) WebhookStats() WebhookStats {
	return WebhookStats{Sent: s.hook.sent.Load(), Failed: s.hook.failed.Load(), Dropped: s.hook.dropped.Load()}
}
