package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/testkit"
	"github.com/acme/unified-customer-service/shared/webhook"
)

const (
	testSecret = "whsec-test-secret"
	testToken  = "systemb-test-token"
)

var t0 = time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)

// customer returns a System B record.
func customer(email, city string, lastUpdated time.Time) *merge.Record {
	r := &merge.Record{LastUpdated: lastUpdated}
	r.Values[merge.FieldEmail] = email
	r.Values[merge.FieldFirstName] = "Zoë"
	r.Values[merge.FieldLastName] = "Ångström"
	r.Values[merge.FieldPhone] = "+46 8 123 45 67"
	r.Values[merge.FieldCity] = city
	r.Values[merge.FieldCountry] = "SE"
	r.Values[merge.FieldMarketingOptIn] = "true"
	return r
}

// rig is a broker, a producer and what the capture needs around them.
type rig struct {
	brokers []string
	pub     *kafka.Producer
	metrics *testkit.Metrics
	logs    *bytes.Buffer
	log     *slog.Logger
	now     time.Time
}

func newRig(t testing.TB) *rig {
	t.Helper()
	brokers := kafkatest.Broker(t, 3, changes.TopicSystemB).ListenAddrs()
	p, err := kafka.NewProducer(kafka.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	logs := new(bytes.Buffer)
	return &rig{brokers: brokers, pub: p, metrics: testkit.NewMetrics(), logs: logs,
		log: slog.New(slog.NewJSONHandler(logs, nil)), now: t0}
}

func (r *rig) clock() time.Time { return r.now }

func (r *rig) webhook() *Webhook {
	return &Webhook{
		Publisher: r.pub, Secret: func(context.Context) (string, error) { return testSecret, nil },
		Now: r.clock, Log: r.log, Metrics: r.metrics, EmailAttr: func(string) slog.Attr { return slog.String("emailHash", "h") },
	}
}

// consume reads n records of System B's topic and returns their event ids
// in offset order per partition.
func (r *rig) consume(t *testing.T, n int) []*kgo.Record {
	t.Helper()
	return kafkatest.Consume(t, r.brokers, changes.TopicSystemB, n)
}

// marker publishes an event no test path builds, so that a test that
// expects nothing published reads it as the first record.
func (r *rig) marker(t *testing.T) changes.Event {
	t.Helper()
	ev, err := changes.NewUpsert(merge.SystemB, customer("marker@example.com", "Nowhere", t0), "test:marker", time.Time{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pub.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// checkNoPII fails when the logs quote a customer's data.
func (r *rig) checkNoPII(t *testing.T, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, "@example.com", "Ångström", "123 45 67", testSecret) {
		if strings.Contains(r.logs.String(), s) {
			t.Errorf("the logs quote %q:\n%s", s, r.logs)
		}
	}
}

func eventID(rec *kgo.Record) string {
	for _, h := range rec.Headers {
		if h.Key == changes.HeaderEventID {
			return string(h.Value)
		}
	}
	return ""
}

// signedDelivery builds a signed webhook request of System B at signedAt.
func signedDelivery(t testing.TB, typ string, rec *merge.Record, signedAt time.Time, secret string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	body := []byte(`{"type":"` + typ + `","customer":`)
	body = systemb.AppendCustomer(body, rec)
	body = append(body, '}')
	req := events.APIGatewayV2HTTPRequest{
		RouteKey: "POST /webhooks/system-b", RawPath: "/webhooks/system-b", Body: string(body),
		Headers: map[string]string{
			"content-type":        "application/json",
			"x-systemb-signature": webhook.Sign([]byte(secret), signedAt, body),
			"x-systemb-delivery":  "d-" + strconv.FormatInt(signedAt.Unix(), 10),
		},
	}
	req.RequestContext.HTTP.Method = http.MethodPost
	req.RequestContext.HTTP.SourceIP = "192.0.2.10"
	return req
}

// fakeB is a System B list endpoint over records: API v1.1 (updatedSince)
// unless v1, cursor = the index of the next item; bad names an item
// served with a broken lastUpdated.
type fakeB struct {
	mu      sync.Mutex
	records []*merge.Record // in join order
	v1      bool
	bad     string
	queries []string // the updatedSince of every request
}

func (f *fakeB) serve(t testing.TB) *systemb.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+testToken || r.URL.Path != "/customers" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		f.queries = append(f.queries, q.Get("updatedSince"))
		var since time.Time
		if v := q.Get("updatedSince"); v != "" {
			var err error
			if since, err = time.Parse(time.RFC3339Nano, v); err != nil || f.v1 {
				http.Error(w, "unknown parameter", http.StatusBadRequest)
				return
			}
		}
		limit, _ := strconv.Atoi(q.Get("limit"))
		start, _ := strconv.Atoi(q.Get("cursor"))
		body := []byte(`{"items":[`)
		n, i := 0, start
		for ; i < len(f.records) && n < limit; i++ {
			rec := f.records[i]
			if rec.LastUpdated.Before(since) {
				continue
			}
			if n > 0 {
				body = append(body, ',')
			}
			doc := systemb.AppendCustomer(nil, rec)
			if rec.Email() == f.bad {
				doc = bytes.Replace(doc, []byte(`"lastUpdated":"`), []byte(`"lastUpdated":"broken/`), 1)
			}
			body = append(body, doc...)
			n++
		}
		body = append(body, `],"nextCursor":`...)
		if i < len(f.records) {
			body = append(body, `"`+strconv.Itoa(i)+`"`...)
		} else {
			body = append(body, "null"...)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(body, '}'))
	}))
	t.Cleanup(srv.Close)
	c, err := systemb.New(systemb.Config{BaseURL: srv.URL, Token: systemb.StaticToken(testToken), DisablePrefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeB) set(recs ...*merge.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records = slices.Clone(recs)
	slices.SortFunc(f.records, func(a, b *merge.Record) int { return strings.Compare(merge.Key(a.Email()), merge.Key(b.Email())) })
}

func (r *rig) poller(b *systemb.Client, state report.Store) *Poller {
	return &Poller{SystemB: b, Publisher: r.pub, State: state, Now: r.clock, Log: r.log, Metrics: r.metrics}
}
