package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/testkit"
	"github.com/acme/unified-customer-service/shared/webhook"
)

// TestWebhookAndPollSameID: one change of System B seen by the webhook and
// by the poll is published twice with one event id, as op "u" with before
// null, on the real Kafka protocol.
func TestWebhookAndPollSameID(t *testing.T) {
	r := newRig(t)
	changed := customer("Zoë.Ångström@Example.com", "Malmö", t0.Add(-30*time.Second))
	resp, err := r.webhook().Handle(context.Background(), signedDelivery(t, ChangeUpdated, changed, t0, testSecret))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d %s, %v", resp.StatusCode, resp.Body, err)
	}
	b := &fakeB{}
	b.set(changed, customer("old@example.com", "Lund", t0.Add(-time.Hour)))
	state := &report.FileStore{Dir: t.TempDir()}
	writeState(t, state, State{Watermark: t0.Add(-time.Minute)})
	sum, err := r.poller(b.serve(t), state).Poll(context.Background())
	if err != nil || sum.Published != 1 {
		t.Fatalf("poll: %+v, %v; want 1 published", sum, err)
	}
	recs := r.consume(t, 2)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for _, rec := range recs {
		ev, err := changes.Decode(rec.Key, rec.Value, kafka.Headers(rec))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Op != changes.OpUpdate || ev.Before != nil || ev.Key != "zoë.ångström@example.com" {
			t.Errorf("event op %q before %v key %q, want an upsert of the join key", ev.Op, ev.Before, ev.Key)
		}
	}
	if a, b := eventID(recs[0]), eventID(recs[1]); a != b || a == "" {
		t.Errorf("webhook id %q, poll id %q: want one id", a, b)
	}
	var body struct{ EventID string }
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.EventID != eventID(recs[0]) {
		t.Errorf("webhook answer %s, want the event id %s", resp.Body, eventID(recs[0]))
	}
	if got := r.metrics.Counts[emf.CaptureBPublishedName("u")]; got != 2 {
		t.Errorf("%s = %d, want 2", emf.CaptureBPublishedName("u"), got)
	}
	if got := r.metrics.Values[emf.CaptureLag]; len(got) != 2 || got[0] != 30 {
		t.Errorf("%s = %v, want two samples, the first 30 s", emf.CaptureLag, got)
	}
	r.checkNoPII(t)
}

// TestWebhookRefuses: a delivery that is not signed by System B, or not
// now, is refused with 401 and publishes nothing; a signed body that breaks
// the contract gets 400 and publishes nothing.
func TestWebhookRefuses(t *testing.T) {
	rec := customer("ada@example.com", "Leeds", t0)
	tests := []struct {
		name   string
		req    func(t *testing.T) (string, map[string]string)
		status int
	}{
		{"bad signature", func(t *testing.T) (string, map[string]string) {
			req := signedDelivery(t, ChangeUpdated, rec, t0, "a-guessed-secret")
			return req.Body, req.Headers
		}, http.StatusUnauthorized},
		{"replayed after 5 minutes", func(t *testing.T) (string, map[string]string) {
			req := signedDelivery(t, ChangeUpdated, rec, t0.Add(-webhook.Tolerance-time.Second), testSecret)
			return req.Body, req.Headers
		}, http.StatusUnauthorized},
		{"tampered body", func(t *testing.T) (string, map[string]string) {
			req := signedDelivery(t, ChangeUpdated, rec, t0, testSecret)
			return strings.Replace(req.Body, "Leeds", "Luton", 1), req.Headers
		}, http.StatusUnauthorized},
		{"no signature", func(t *testing.T) (string, map[string]string) {
			req := signedDelivery(t, ChangeUpdated, rec, t0, testSecret)
			delete(req.Headers, "x-systemb-signature")
			return req.Body, req.Headers
		}, http.StatusUnauthorized},
		{"unknown change type", func(t *testing.T) (string, map[string]string) {
			req := signedDelivery(t, "merged", rec, t0, testSecret)
			return req.Body, req.Headers
		}, http.StatusBadRequest},
		{"customer without lastUpdated", func(t *testing.T) (string, map[string]string) {
			body := `{"type":"updated","customer":{"email":"ada@example.com"}}`
			return body, map[string]string{"x-systemb-signature": webhook.Sign([]byte(testSecret), t0, []byte(body))}
		}, http.StatusBadRequest},
		{"unknown member", func(t *testing.T) (string, map[string]string) {
			body := `{"type":"updated","customer":null,"extra":1}`
			return body, map[string]string{"x-systemb-signature": webhook.Sign([]byte(testSecret), t0, []byte(body))}
		}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			req := signedDelivery(t, ChangeUpdated, rec, t0, testSecret)
			req.Body, req.Headers = tt.req(t)
			resp, err := r.webhook().Handle(context.Background(), req)
			if err != nil || resp.StatusCode != tt.status || resp.Headers["Content-Type"] != "application/problem+json" {
				t.Fatalf("answer %d %s %v, want %d problem+json", resp.StatusCode, resp.Body, err, tt.status)
			}
			marker := r.marker(t)
			if got := r.consume(t, 1); eventID(got[0]) != marker.ID {
				t.Errorf("the first record is %s, not the marker: the refused delivery was published", got[0].Value)
			}
			if rejected := r.metrics.Counts[emf.CaptureWebhookRejected]; (rejected == 1) != (tt.status == http.StatusUnauthorized) {
				t.Errorf("%s = %d for a %d", emf.CaptureWebhookRejected, rejected, tt.status)
			}
			r.checkNoPII(t)
		})
	}
}

// TestWebhookDeleted: a deletion carries the last record as seen and is
// published as op "d", its after null.
func TestWebhookDeleted(t *testing.T) {
	r := newRig(t)
	last := customer("ada@example.com", "Leeds", t0.Add(-time.Second))
	resp, err := r.webhook().Handle(context.Background(), signedDelivery(t, ChangeDeleted, last, t0, testSecret))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d %s, %v", resp.StatusCode, resp.Body, err)
	}
	rec := r.consume(t, 1)[0]
	ev, err := changes.Decode(rec.Key, rec.Value, kafka.Headers(rec))
	if err != nil || ev.Op != changes.OpDelete || ev.After != nil || ev.Before == nil || !strings.HasPrefix(ev.Source.Version, "webhook:d-") {
		t.Fatalf("event %+v, %v; want a delete with before, version webhook:<delivery>", ev, err)
	}
}

// TestWebhookBrokerDown: an unacknowledged change answers 503 so that System
// B delivers it again.
func TestWebhookBrokerDown(t *testing.T) {
	r := newRig(t)
	h := r.webhook()
	h.Publisher = deadProducer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := h.Handle(ctx, signedDelivery(t, ChangeCreated, customer("ada@example.com", "Leeds", t0), t0, testSecret))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("answer %d %s %v, want 503", resp.StatusCode, resp.Body, err)
	}
	if r.metrics.Counts[emf.CaptureWebhookFailed] != 1 || r.metrics.Counts[emf.CaptureBPublishedName("u")] != 0 {
		t.Errorf("metrics %v, want one failed delivery and nothing published", r.metrics.Counts)
	}
}

// deadProducer publishes to an address where nothing listens.
func deadProducer(t *testing.T) *kafka.Producer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p, err := kafka.NewProducer(kafka.Config{Brokers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func writeState(t testing.TB, s report.Store, st State) {
	t.Helper()
	b, _ := json.Marshal(st)
	if _, err := s.PutIfAbsent(context.Background(), StateKey, strings.NewReader(string(b)), "application/json"); err != nil {
		t.Fatal(err)
	}
}

func readState(t *testing.T, s report.Store) State {
	t.Helper()
	b, _, err := s.Get(context.Background(), StateKey)
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPoll: with API v1.1 the poll asks for updatedSince = watermark minus
// the overlap; with v1 (400) it lists all and keeps the same customers. A
// bad item is skipped with a metric and a log line without PII, the
// watermark moves past it to the newest lastUpdated published.
func TestPoll(t *testing.T) {
	watermark := t0.Add(-10 * time.Minute)
	recs := []*merge.Record{
		customer("ada@example.com", "Leeds", watermark.Add(-time.Hour)),                  // unchanged
		customer("bob@example.com", "York", watermark.Add(-DefaultOverlap)),              // in the overlap: again, same id
		customer("cy@example.com", "Bath", watermark.Add(3*time.Minute)),                 // changed
		customer("dee@example.com", "Ely", watermark.Add(5*time.Minute)),                 // changed, newest
		customer("eve@example.com", "Hull", watermark.Add(4*time.Minute)),                // changed, served broken
		customer("fay@example.com", "Wells", watermark.Add(-DefaultOverlap-time.Second)), // just before the overlap
	}
	tests := []struct {
		name        string
		v1          bool
		wantQueries []string
		badAt       string // the bad item's position: fewer items come with updatedSince
	}{
		{"v1.1 updatedSince", false, []string{"2026-12-02T00:48:00Z"}, "page 1 item 4"},
		{"v1 falls back to the full list", true, []string{"2026-12-02T00:48:00Z", ""}, "page 1 item 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			b := &fakeB{v1: tt.v1, bad: "eve@example.com"}
			b.set(recs...)
			state := &report.FileStore{Dir: t.TempDir()}
			writeState(t, state, State{Watermark: watermark})
			sum, err := r.poller(b.serve(t), state).Poll(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if sum.Published != 3 || sum.BadRecords != 1 || sum.FullList != tt.v1 || !sum.Watermark.Equal(watermark.Add(5*time.Minute)) {
				t.Errorf("summary %+v, want 3 published, 1 bad, fullList %v, watermark +5m", sum, tt.v1)
			}
			if strings.Join(b.queries, "|") != strings.Join(tt.wantQueries, "|") {
				t.Errorf("updatedSince sent %q, want %q", b.queries, tt.wantQueries)
			}
			var keys []string
			for _, rec := range r.consume(t, 3) {
				keys = append(keys, string(rec.Key))
			}
			if got := strings.Join(sorted(keys), ","); got != "bob@example.com,cy@example.com,dee@example.com" {
				t.Errorf("published %s", got)
			}
			if st := readState(t, state); !st.Watermark.Equal(sum.Watermark) || st.Skipped != 1 || st.FullList != tt.v1 {
				t.Errorf("state %+v, want the summary's watermark", st)
			}
			if r.metrics.Counts[emf.CaptureBadRecordsSystemB] != 1 || !strings.Contains(r.logs.String(), `"position":"`+tt.badAt+`"`) {
				t.Errorf("bad record metric %d, logs %s", r.metrics.Counts[emf.CaptureBadRecordsSystemB], r.logs)
			}
			r.checkNoPII(t)
		})
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestPollFirstRun: without a state the poll starts at the current time
// minus the overlap and creates the state.
func TestPollFirstRun(t *testing.T) {
	r := newRig(t)
	b := &fakeB{}
	b.set(customer("ada@example.com", "Leeds", t0.Add(-time.Minute)), customer("bob@example.com", "York", t0.Add(-time.Hour)))
	state := &report.FileStore{Dir: t.TempDir()}
	sum, err := r.poller(b.serve(t), state).Poll(context.Background())
	if err != nil || sum.Published != 1 || !sum.Since.Equal(t0.Add(-DefaultOverlap)) {
		t.Fatalf("summary %+v, %v; want 1 published since now minus the overlap", sum, err)
	}
	if st := readState(t, state); !st.Watermark.Equal(t0) {
		t.Errorf("state watermark %v, want %v (no change newer than the start)", st.Watermark, t0)
	}
}

// TestPollBrokerDown: when the broker is unreachable the poll fails and the
// watermark stays; the retry publishes the same events with the same ids.
func TestPollBrokerDown(t *testing.T) {
	r := newRig(t)
	watermark := t0.Add(-10 * time.Minute)
	b := &fakeB{}
	b.set(customer("ada@example.com", "Leeds", watermark.Add(time.Minute)), customer("bob@example.com", "York", watermark.Add(2*time.Minute)))
	client := b.serve(t)
	state := &report.FileStore{Dir: t.TempDir()}
	writeState(t, state, State{Watermark: watermark})

	down := r.poller(client, state)
	down.Publisher = deadProducer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := down.Poll(ctx); !errors.Is(err, merge.ErrUnavailable) {
		t.Fatalf("poll with the broker down: %v, want kind unavailable", err)
	}
	if st := readState(t, state); !st.Watermark.Equal(watermark) {
		t.Fatalf("watermark moved to %v with nothing acknowledged", st.Watermark)
	}
	if _, err := r.poller(client, state).Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := r.consume(t, 2)
	for _, rec := range recs {
		ev, err := changes.Decode(rec.Key, rec.Value, kafka.Headers(rec))
		if err != nil {
			t.Fatal(err)
		}
		want := changes.ID(merge.SystemB, ev.Key, changes.OpUpdate, ev.Source.LastUpdated, ev.After)
		if eventID(rec) != want {
			t.Errorf("%s: id %s, want %s", rec.Key, eventID(rec), want)
		}
	}
	if st := readState(t, state); !st.Watermark.Equal(watermark.Add(2 * time.Minute)) {
		t.Errorf("watermark %v after the retry, want +2m", st.Watermark)
	}
}

// TestPollStateRace: a poll whose state changed under it (another run
// wrote it) fails instead of moving the watermark back.
func TestPollStateRace(t *testing.T) {
	r := newRig(t)
	b := &fakeB{}
	b.set(customer("ada@example.com", "Leeds", t0))
	state := &report.FileStore{Dir: t.TempDir()}
	writeState(t, state, State{Watermark: t0.Add(-time.Minute)})
	p := r.poller(b.serve(t), racingStore{state})
	if _, err := p.Poll(context.Background()); !errors.Is(err, report.ErrChanged) {
		t.Fatalf("err = %v, want report.ErrChanged", err)
	}
}

// racingStore rewrites the state between the poll's read and its write.
type racingStore struct{ *report.FileStore }

func (s racingStore) Replace(ctx context.Context, key string, body io.ReadSeeker, contentType, tag string) (string, error) {
	if _, err := s.FileStore.Replace(ctx, key, strings.NewReader(`{"watermark":"2030-01-01T00:00:00Z"}`), contentType, tag); err != nil {
		return "", err
	}
	return s.FileStore.Replace(ctx, key, body, contentType, tag)
}

// TestEventFixtures runs events/captureb-webhook-*.json (signed with the
// local loop's webhook secret on 2026-12-01 09:00 UTC) at the time they
// were signed and 5 minutes and a second later.
func TestEventFixtures(t *testing.T) {
	signedAt := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	want := map[string]int{
		"captureb-webhook-updated.json":       http.StatusOK,
		"captureb-webhook-deleted.json":       http.StatusOK,
		"captureb-webhook-bad-signature.json": http.StatusUnauthorized,
	}
	names := testkit.Events(t, "captureb-webhook-")
	if len(names) != len(want) {
		t.Fatalf("fixtures %v, want %d", names, len(want))
	}
	r := newRig(t)
	h := r.webhook()
	h.Secret = func(context.Context) (string, error) { return localWebhookSecret, nil }
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var req events.APIGatewayV2HTTPRequest
			testkit.Event(t, name, &req)
			for _, at := range []time.Time{signedAt, signedAt.Add(webhook.Tolerance + time.Second)} {
				r.now = at
				resp, err := h.Handle(context.Background(), req)
				status := want[name]
				if at.After(signedAt) {
					status = http.StatusUnauthorized // a replay
				}
				if err != nil || resp.StatusCode != status {
					t.Errorf("at %v: %d %s, %v; want %d", at, resp.StatusCode, resp.Body, err, status)
				}
			}
		})
	}
}

// localWebhookSecret is the local loop's (bsim.DefaultWebhookSecret; the
// simulator is internal to cmd/local).
const localWebhookSecret = "local-systemb-webhook-secret"

// TestPollRepeatsNothing: the overlap makes every poll read the last
// changes again; those already published (State.Recent) are not published
// again, a new change is, and so is a change of the same second with other
// values (another id).
func TestPollRepeatsNothing(t *testing.T) {
	r := newRig(t)
	b := &fakeB{}
	ada := customer("ada@example.com", "Leeds", t0.Add(-30*time.Second))
	bob := customer("bob@example.com", "York", t0.Add(-20*time.Second))
	b.set(ada, bob)
	client := b.serve(t)
	state := &report.FileStore{Dir: t.TempDir()}
	writeState(t, state, State{Watermark: t0.Add(-time.Minute)})
	p := r.poller(client, state)
	steps := []struct {
		name          string
		change        func()
		published     int
		repeats       int
		wantWatermark time.Time
	}{
		{"first", func() {}, 2, 0, bob.LastUpdated},
		{"nothing new", func() {}, 0, 2, bob.LastUpdated},
		{"a new change", func() {
			cy := customer("cy@example.com", "Bath", t0.Add(-10*time.Second))
			b.set(ada, bob, cy)
		}, 1, 2, t0.Add(-10 * time.Second)},
		{"same second, other values", func() {
			bob2 := customer("bob@example.com", "Ripon", bob.LastUpdated)
			b.set(ada, bob2, customer("cy@example.com", "Bath", t0.Add(-10*time.Second)))
		}, 1, 2, t0.Add(-10 * time.Second)},
	}
	for _, s := range steps {
		s.change()
		sum, err := p.Poll(context.Background())
		if err != nil || sum.Published != s.published || sum.Repeats != s.repeats || !sum.Watermark.Equal(s.wantWatermark) {
			t.Errorf("%s: %+v, %v; want %d published, %d repeats, watermark %v", s.name, sum, err, s.published, s.repeats, s.wantWatermark)
		}
	}
	if got := len(r.consume(t, 4)); got != 4 {
		t.Errorf("%d records, want 4", got)
	}
}

func TestRecentSince(t *testing.T) {
	ids := map[string]time.Time{"old": t0.Add(-time.Hour), "edge": t0, "new": t0.Add(time.Second)}
	got := recentSince(ids, t0)
	if _, ok := got["old"]; ok || len(got) != 2 {
		t.Errorf("recentSince = %v, want edge and new", got)
	}
	many := make(map[string]time.Time, MaxRecent+10)
	for i := range MaxRecent + 10 {
		many[strconv.Itoa(i)] = t0.Add(time.Duration(i) * time.Millisecond)
	}
	got = recentSince(many, t0)
	if _, kept := got["9"]; kept || len(got) != MaxRecent {
		t.Errorf("%d kept (the 10th oldest among them: %v), want the newest %d", len(got), kept, MaxRecent)
	}
}

// TestClip: a delivery id from the request is bounded, without control
// characters, valid UTF-8 (it goes into the event's source.version).
func TestClip(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"short", "d-1", "d-1"},
		{"control characters dropped", "d-1\r\nX: y", "d-1X: y"},
		{"long, cut on a rune", strings.Repeat("a", 63) + "é-and-more", strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clip(tt.in); got != tt.want {
				t.Errorf("clip(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
