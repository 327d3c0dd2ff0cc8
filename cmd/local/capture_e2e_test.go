package main

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/syncworker"
)

// changeDeadline is the promise: a change in System B is on
// customer.changes.system-b within 5 s.
const changeDeadline = 5 * time.Second

// testSystemBChangeOnKafka PATCHes a customer in the simulator and reads
// the change from customer.changes.system-b with a plain franz-go consumer
// (and Debian's kcat when installed): the simulator's signed webhook went
// through start-api to CaptureBWebhookFunction, which published it; then
// the sync worker's merged customer for that change on customer.unified.
func testSystemBChangeOnKafka(t *testing.T, s *stack) {
	email := demodata.ShowcaseOnlyInSystemB // a customer the banner's commands do not use
	key := merge.Key(email)
	if !strings.Contains(s.banner, "System B webhook -> "+s.api+"/webhooks/system-b") {
		t.Fatalf("the banner does not show the webhook pointed at start-api:\n%s", s.banner)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka), kgo.ConsumeTopics(changes.TopicSystemB), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The sync worker's merged view, read the same way.
	unified, err := kgo.NewClient(kgo.SeedBrokers(s.kafka), kgo.ConsumeTopics(syncworker.TopicUnified), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unified.Close()
	// Join the topics at their end before the change, so only new records count.
	ready, cancelReady := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelReady()
	for _, c := range []*kgo.Client{cl, unified} {
		if err := c.Ping(ready); err != nil {
			t.Fatal(err)
		}
		c.ForceMetadataRefresh()
	}

	req, err := http.NewRequest(http.MethodPatch, s.systemB+"/customers/"+email, strings.NewReader(`{"loyaltyTier":"silver","address":{"city":"Arlington"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bsim.DefaultToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH: %s", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), changeDeadline)
	defer cancel()
	var got *kgo.Record
	for got == nil {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("no event for the PATCH on %s within %v: %v\n(the simulator's webhook stats: GET %s/_sim/webhook)", changes.TopicSystemB, changeDeadline, err, s.systemB)
		}
		for _, r := range fs.Records() {
			if string(r.Key) == key && strings.Contains(string(r.Value), `"Arlington"`) {
				got = r
			}
		}
	}
	ev, err := changes.Decode(got.Key, got.Value, kafka.Headers(got))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Op != changes.OpUpdate || ev.After.Get(merge.FieldLoyaltyTier) != "silver" || !strings.HasPrefix(ev.Source.Version, "webhook:sim-") {
		t.Errorf("event %+v, want the upsert of the PATCH from the webhook", ev)
	}
	checkWithKcat(t, s.kafka, key, ev.ID)

	// The whole loop: the local Kafka event source mapping hands the event
	// to SyncWorkerFunction, which re-reads both systems, merges and
	// publishes the customer to customer.unified under the change's id.
	// (The lag itself is measured in docs/benchmarks.md; the bound here
	// leaves room for the demo data's backlog on a loaded machine.)
	wctx, wcancel := context.WithTimeout(context.Background(), workerDeadline)
	defer wcancel()
	for {
		fs := unified.PollFetches(wctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("no %s record for the change %s within %v: %v", syncworker.TopicUnified, ev.ID, workerDeadline, err)
		}
		for _, r := range fs.Records() {
			if string(r.Key) != key || headerOf(r, syncworker.HeaderSourceEventID) != ev.ID {
				continue
			}
			if !strings.Contains(string(r.Value), `"city":"Arlington"`) || !strings.Contains(string(r.Value), `"presence":"onlyInSystemB"`) {
				t.Errorf("%s for the change: %s, want System B's new city, only in System B", syncworker.TopicUnified, r.Value)
			}
			return
		}
	}
}

// workerDeadline bounds the wait for the sync worker's output in the end-to-end test.
const workerDeadline = 60 * time.Second

// headerOf returns the value of a record's header, or "".
func headerOf(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// checkWithKcat reads the topic with Debian's kcat, when installed, and
// looks for the event by key and id.
func checkWithKcat(t *testing.T, brokers, key, id string) {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Log("kcat is not installed: the check with it is skipped")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-b", brokers, "-C", "-t", changes.TopicSystemB, "-e", "-q", "-f", "%k %h\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), key+" "+changes.HeaderEventID+"="+id) {
		t.Errorf("kcat did not show %s with event id %s:\n%s", key, id, out)
	}
}
