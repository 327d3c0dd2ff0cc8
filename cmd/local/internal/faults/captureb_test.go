package faults

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/acme/unified-customer-service/cmd/local/internal/apigw"
	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/webhook"
)

// The rows' Lambda timeouts for System B's capture (the template's are
// 10 s and 300 s): a publish to a broker that is down gives up one second
// before them (captureb.DeadlineReserve).
const (
	webhookTimeout = 4 * time.Second
	pollTimeout    = 5 * time.Second
)

// stateKey is the poller's state object in the report bucket.
const stateKey = reportPrefix + "/capture/system-b/state.json"

// broker is an embedded Kafka broker a row can stop and start again on the
// same address, as a broker restarts.
type broker struct {
	t    *testing.T
	addr string
	c    *kfake.Cluster
}

func startStoppableBroker(t *testing.T) *broker {
	t.Helper()
	b := &broker{t: t, addr: "127.0.0.1:0"}
	b.start()
	b.addr = b.c.ListenAddrs()[0]
	t.Cleanup(func() {
		if b.c != nil {
			b.c.Close()
		}
	})
	return b
}

func (b *broker) start() {
	b.t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, b.addr) }),
		kfake.SeedTopics(3, changes.TopicSystemA, changes.TopicSystemB),
	)
	if err != nil {
		b.t.Fatalf("start the broker on %s: %v", b.addr, err)
	}
	b.c = c
}

func (b *broker) stop() {
	b.c.Close()
	b.c = nil
}

// captureBRig is a rig whose functions publish to b.
func captureBRig(t *testing.T, b *broker) *rig {
	t.Helper()
	return newRig(t, withEnv("KAFKA_BOOTSTRAP_SERVERS", b.addr),
		withTimeout(webhookBFn, webhookTimeout), withTimeout(pollBFn, pollTimeout))
}

// patch changes customers in the simulator through its API: their
// lastUpdated becomes now.
func (r *rig) patch(body string, emails ...string) {
	r.t.Helper()
	for _, email := range emails {
		req, err := http.NewRequest(http.MethodPatch, r.simURL+"/customers/"+url.PathEscape(email), strings.NewReader(body))
		if err != nil {
			r.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			r.t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			r.t.Fatalf("PATCH a customer: %s", resp.Status)
		}
	}
}

// customerB is the simulator's record of email.
func (r *rig) customerB(email string) *merge.Record {
	r.t.Helper()
	doc, ok := r.sim.Customer(email)
	if !ok {
		r.t.Fatalf("the simulator has no %s", email)
	}
	rec, err := systemb.UnmarshalCustomer(doc)
	if err != nil {
		r.t.Fatal(err)
	}
	return rec
}

// upsertID is the event id of the upsert of System B's record.
func upsertID(rec *merge.Record) string {
	return changes.ID(merge.SystemB, rec.Key(), changes.OpUpdate, rec.LastUpdated, rec)
}

// poll invokes the poller with a scheduler event.
func (r *rig) poll() *call {
	r.t.Helper()
	return r.invoke(pollBFn, scheduledEvent(r.t, "poll-"+randomHex(4), time.Now()))
}

// state returns the poller's state object and whether it exists.
func (r *rig) state() (string, bool) {
	r.t.Helper()
	b := r.getObjectIfAny(reportBucket, stateKey)
	return string(b), b != nil
}

// getObjectIfAny is getObject that returns nil for a missing object.
func (r *rig) getObjectIfAny(bucket, key string) []byte {
	r.t.Helper()
	if _, ok := r.objectVersions(bucket, key)[""]; !ok { // keyed by the name after the prefix
		return nil
	}
	return r.getObject(bucket, key)
}

// delivery is a webhook invocation event of System B's change of rec,
// signed with secret at signedAt.
func delivery(t *testing.T, typ string, rec *merge.Record, secret string, signedAt time.Time) []byte {
	t.Helper()
	body := `{"type":"` + typ + `","customer":` + string(systemb.AppendCustomer(nil, rec)) + `}`
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /webhooks/system-b", RawPath: "/webhooks/system-b", Body: body,
		Headers: map[string]string{
			"content-type":        "application/json",
			"x-systemb-signature": webhook.Sign([]byte(secret), signedAt, []byte(body)),
			"x-systemb-delivery":  "faults-" + randomHex(4),
		},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "123456789012", APIID: "faults", Stage: "$default", RouteKey: "POST /webhooks/system-b",
			RequestID: "faults-" + randomHex(6),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: "POST", Path: "/webhooks/system-b", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "faults",
			},
		},
	}
	return mustJSON(t, ev)
}

// TestRowCaptureBBrokerDown: with the broker unreachable a poll fails
// (the invocation errs, so Lambda retries it and then the DLQ holds it)
// and leaves its watermark, and a webhook delivery is answered 503 (System
// B delivers it again); once the broker is back the next poll publishes
// the changes, with the ids of the changes themselves, and the webhook's
// retry publishes the same id again: nothing lost, nothing under a new id.
func TestRowCaptureBBrokerDown(t *testing.T) {
	b := startStoppableBroker(t)
	r := captureBRig(t, b)
	first := r.poll().ok()
	if n := first.count(emf.CaptureBPublishedName("u")); n != 0 {
		t.Fatalf("the first poll published %v events; the demo data changed before it", n)
	}
	before, ok := r.state()
	if !ok {
		t.Fatal("the first poll wrote no state")
	}
	r.patch(`{"loyaltyTier":"platinum"}`, conflictEmail, onlyBEmail)

	b.stop()
	down := r.poll()
	if down.res.FunctionError == "" {
		t.Fatalf("the poll succeeded with the broker down: %s", down.res.Payload)
	}
	down.wantLog("ERROR", "System B poll failed: the watermark stays", `"kind":"unavailable"`)
	if after, _ := r.state(); after != before {
		t.Errorf("the state moved with nothing acknowledged:\n%s\n->\n%s", before, after)
	}
	changed := r.customerB(onlyBEmail)
	hook := r.invoke(webhookBFn, delivery(t, "updated", changed, r.webhookSecret, time.Now()))
	hook.wantProblem(http.StatusServiceUnavailable)
	if hook.count(emf.CaptureWebhookFailed) != 1 {
		t.Errorf("%s not counted", emf.CaptureWebhookFailed)
	}

	b.start()
	up := r.poll().ok()
	if n := up.count(emf.CaptureBPublishedName("u")); n != 2 {
		t.Errorf("the poll after the outage published %v events, want 2", n)
	}
	var sum struct {
		Published int       `json:"published"`
		Watermark time.Time `json:"watermark"`
	}
	// The watermark is the newest lastUpdated published, or the first
	// poll's start when that is newer (System B stamps whole seconds).
	if err := json.Unmarshal(up.res.Payload, &sum); err != nil || sum.Published != 2 ||
		sum.Watermark.Before(changed.LastUpdated) || sum.Watermark.Before(r.customerB(conflictEmail).LastUpdated) {
		t.Errorf("summary %s (%v): want 2 published and a watermark at or after both changes", up.res.Payload, err)
	}
	if after, _ := r.state(); after == before {
		t.Error("the state was not written after the successful poll")
	}
	retry := r.invoke(webhookBFn, delivery(t, "updated", changed, r.webhookSecret, time.Now()))
	var ans struct{ EventID string }
	if st := retry.status(&ans); st != http.StatusOK || ans.EventID != upsertID(changed) {
		t.Errorf("the webhook's retry: %d %s, want 200 with id %s", st, ans.EventID, upsertID(changed))
	}
	want := map[string]string{merge.Key(conflictEmail): upsertID(r.customerB(conflictEmail)), merge.Key(onlyBEmail): upsertID(changed)}
	recs := kafkatest.Consume(t, []string{b.addr}, changes.TopicSystemB, 3)
	for _, rec := range recs {
		ev, err := changes.Decode(rec.Key, rec.Value, kafka.Headers(rec))
		if err != nil {
			t.Fatal(err)
		}
		if want[ev.Key] != ev.ID {
			t.Errorf("published %s with id %s, want %s", ev.Key, ev.ID, want[ev.Key])
		}
	}
}

// TestRowCaptureBBadItem: a changed System B customer served broken in the
// poll's page is skipped, counted and logged by position (never by value);
// the others are published and the watermark moves on past it (it is
// published when System B serves it well again, with a newer lastUpdated).
func TestRowCaptureBBadItem(t *testing.T) {
	b := startStoppableBroker(t)
	r := captureBRig(t, b)
	r.poll().ok()
	r.patch(`{"address":{"city":"Springfield"}}`, conflictEmail, inSyncEmail, onlyBEmail)
	r.setFaults(bsim.Faults{BadItem: inSyncEmail})
	c := r.poll().ok()
	if n := c.count(emf.CaptureBPublishedName("u")); n != 2 {
		t.Errorf("published %v, want the 2 good changes", n)
	}
	if n := c.count(emf.CaptureBadRecordsSystemB); n != 1 {
		t.Errorf("%s = %v, want 1", emf.CaptureBadRecordsSystemB, n)
	}
	c.wantLog("WARN", "System B list item skipped: it breaks the contract", `"reason":"lastUpdated is not RFC 3339"`, `"position":"page `)
	var keys []string
	for _, rec := range kafkatest.Consume(t, []string{b.addr}, changes.TopicSystemB, 2) {
		keys = append(keys, string(rec.Key))
	}
	if strings.Contains(strings.Join(keys, ","), merge.Key(inSyncEmail)) {
		t.Errorf("the broken item was published: %v", keys)
	}
}

// TestRowCaptureBForgedWebhook: deliveries with a wrong signature or an old
// one (a replay) are refused with 401 and publish nothing; the simulator's
// own deliveries, through the local HTTP API, are published.
func TestRowCaptureBForgedWebhook(t *testing.T) {
	b := startStoppableBroker(t)
	r := captureBRig(t, b)
	rec := r.customerB(conflictEmail)
	tests := []struct {
		name     string
		secret   string
		signedAt time.Time
	}{
		{"wrong secret", "guessed-" + randomHex(4), time.Now()},
		{"replayed after 5 minutes", r.webhookSecret, time.Now().Add(-webhook.Tolerance - time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := r.invoke(webhookBFn, delivery(t, "updated", rec, tt.secret, tt.signedAt))
			c.wantProblem(http.StatusUnauthorized)
			if c.count(emf.CaptureWebhookRejected) != 1 || c.count(emf.CaptureBPublishedName("u")) != 0 {
				t.Errorf("rejected %v, published %v; want 1, 0", c.count(emf.CaptureWebhookRejected), c.count(emf.CaptureBPublishedName("u")))
			}
			c.wantLog("WARN", "webhook delivery refused")
		})
	}

	// System B's own deliveries, through the local HTTP API.
	var routes = tpl.SortedRoutes()
	api := httptest.NewServer(&apigw.Server{Router: apigw.NewRouter(routes), Invoker: r.fns, Log: r.log})
	t.Cleanup(api.Close)
	if err := r.sim.SetWebhook(bsim.WebhookConfig{URL: api.URL + "/webhooks/system-b", Secret: r.webhookSecret}); err != nil {
		t.Fatal(err)
	}
	r.patch(`{"loyaltyTier":"bronze"}`, onlyBEmail)
	got := kafkatest.Consume(t, []string{b.addr}, changes.TopicSystemB, 1)
	if len(got) != 1 || string(got[0].Key) != merge.Key(onlyBEmail) {
		t.Fatalf("the first record on the topic is %s, want only the simulator's delivery of %s", got[0].Key, merge.Key(onlyBEmail))
	}
	if id := string(got[0].Headers[0].Value); id != upsertID(r.customerB(onlyBEmail)) {
		t.Errorf("id %s, want %s", id, upsertID(r.customerB(onlyBEmail)))
	}
}
