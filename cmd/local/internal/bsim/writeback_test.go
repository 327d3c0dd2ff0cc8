package bsim_test

// The write-back (shared/writeback) against the simulator over HTTP, with
// the real System B client, and its corrections on the real Kafka
// protocol (kafkatest's embedded broker) through the real producer.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
	"github.com/acme/unified-customer-service/shared/writeback"
)

const (
	wbToken = "wb-test-token"
	wbEmail = "Ada@Example.com"
)

var (
	wbTimeA   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // System A's lastUpdated
	wbTimeB   = time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC) // System B's, older
	wbSimNow  = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)  // System B's clock: what a PATCH stamps
	wbDecided = time.Date(2026, 3, 2, 9, 0, 5, 0, time.UTC)  // the worker's clock
)

// wbRecord builds a record of wbEmail with lastUpdated at and the given
// path=value pairs over a common base.
func wbRecord(t testing.TB, at time.Time, kv ...string) *merge.Record {
	t.Helper()
	var r merge.Record
	r.Values[merge.FieldEmail] = wbEmail
	r.Values[merge.FieldFirstName] = "Ada"
	r.Values[merge.FieldLastName] = "Lovelace"
	r.Values[merge.FieldCity] = "London"
	r.Values[merge.FieldMarketingOptIn] = "true"
	r.Values[merge.FieldLoyaltyTier] = "gold"
	for i := 0; i+1 < len(kv); i += 2 {
		id, ok := merge.FieldByPath(kv[i])
		if !ok {
			t.Fatalf("unknown path %q", kv[i])
		}
		r.Values[id] = kv[i+1]
	}
	r.LastUpdated = at
	return &r
}

// counts is an emf.Recorder that keeps the counts.
type counts struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *counts) Count(name string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[name] += n
}
func (c *counts) Observe(string, float64, emf.Unit) {}
func (c *counts) Set(string, any)                   {}
func (c *counts) Flush() error                      { return nil }
func (c *counts) get(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// wbEnv is a simulator holding System B's record, a System B client, a
// broker with the corrections topic, and a Writer over them.
type wbEnv struct {
	sim     *bsim.Sim
	url     string
	client  *systemb.Client
	brokers []string
	metrics *counts
	w       *writeback.Writer
}

func newWBEnv(t testing.TB, mode writeback.Mode, b *merge.Record) *wbEnv {
	t.Helper()
	sim := bsim.New(bsim.Config{Token: wbToken, Now: func() time.Time { return wbSimNow }})
	if err := sim.Load(bytes.NewReader(append(systemb.AppendCustomer(nil, b), '\n'))); err != nil {
		t.Fatalf("Load: %v", err)
	}
	srv, err := sim.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() { sim.Close(); _ = srv.Close() })
	client, err := systemb.New(systemb.Config{BaseURL: srv.URL(), Token: systemb.StaticToken(wbToken)})
	if err != nil {
		t.Fatalf("systemb.New: %v", err)
	}
	brokers := kafkatest.Broker(t, 1, writeback.TopicCorrections).ListenAddrs()
	prod, err := kafka.NewProducer(kafka.Config{Brokers: brokers})
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(prod.Close)
	e := &wbEnv{sim: sim, url: srv.URL(), client: client, brokers: brokers, metrics: new(counts)}
	e.w = &writeback.Writer{
		SystemB: client, Publisher: prod, Mode: mode, Metrics: e.metrics,
		Now: func() time.Time { return wbDecided },
	}
	return e
}

// decide reads System B as the worker does and merges it with a; ev is
// the change event of a.
func (e *wbEnv) decide(t *testing.T, a *merge.Record) (merge.Result, changes.Event) {
	t.Helper()
	b, err := e.client.Get(context.Background(), wbEmail)
	if err != nil {
		t.Fatalf("read System B: %v", err)
	}
	ev, err := changes.New(merge.SystemA, nil, a, "v1", wbTimeA, wbDecided)
	if err != nil {
		t.Fatalf("changes.New: %v", err)
	}
	return merge.Merge(a, b, merge.DefaultRules()), ev
}

// stored returns System B's record as the simulator holds it.
func (e *wbEnv) stored(t *testing.T) *merge.Record {
	t.Helper()
	doc, ok := e.sim.Customer(wbEmail)
	if !ok {
		t.Fatal("the customer left the simulator")
	}
	r, err := systemb.UnmarshalCustomer(doc)
	if err != nil {
		t.Fatalf("stored document: %v", err)
	}
	return r
}

// put replaces System B's record over HTTP, unconditionally: another
// writer of System B.
func (e *wbEnv) put(t testing.TB, r *merge.Record) {
	t.Helper()
	e.send(t, http.MethodPut, systemb.AppendCustomer(nil, r), http.StatusOK)
}

// delete removes the customer from System B over HTTP.
func (e *wbEnv) delete(t testing.TB) {
	t.Helper()
	e.send(t, http.MethodDelete, nil, http.StatusNoContent)
}

// send makes one request of the customer as another client of System B.
func (e *wbEnv) send(t testing.TB, method string, body []byte, want int) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+"/customers/"+wbEmail, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+wbToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d", method, resp.StatusCode, want)
	}
}

// interfering is the System B client with another writer that changes
// the customer right after each of the first n reads: between the
// write-back's read and its PATCH.
type interfering struct {
	writeback.SystemB
	t     *testing.T
	e     *wbEnv
	n     int
	write func(i int) *merge.Record
}

func (f *interfering) GetWithETag(ctx context.Context, email string) (*merge.Record, string, error) {
	r, etag, err := f.SystemB.GetWithETag(ctx, email)
	if f.n > 0 {
		f.n--
		f.e.put(f.t, f.write(f.n))
	}
	return r, etag, err
}

func TestWriteBackOffMakesNoWrites(t *testing.T) {
	a := wbRecord(t, wbTimeA, "firstName", "Ada", "loyaltyTier", "platinum")
	e := newWBEnv(t, writeback.ModeOff, wbRecord(t, wbTimeB, "firstName", "Adeline"))
	res, ev := e.decide(t, a)
	e.sim.ResetStats()
	if err := e.w.Apply(context.Background(), ev.Key, res, ev); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if st := e.sim.Stats(); st.Requests != 0 || e.sim.PatchCount(wbEmail) != 0 {
		t.Errorf("WRITE_BACK=off made requests to System B: %+v", st)
	}
	if n := kafkatest.Count(t, e.brokers, writeback.TopicCorrections); n != 0 {
		t.Errorf("WRITE_BACK=off published %d corrections", n)
	}
}

// TestWriteBackOnePatchPerChangedFieldSet: the fields System A won are
// written in one PATCH; applying the same decision again (a redelivery)
// makes none; and the merge of System B's new record finds no conflict,
// so the change event the PATCH causes writes nothing (no loop).
func TestWriteBackOnePatchPerChangedFieldSet(t *testing.T) {
	a := wbRecord(t, wbTimeA, "firstName", "Ada", "phone", "+44 20 7946 0000", "loyaltyTier", "platinum")
	e := newWBEnv(t, writeback.ModeSystemB, wbRecord(t, wbTimeB, "firstName", "Adeline", "address.city", "london"))
	var logs bytes.Buffer
	e.w.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	res, ev := e.decide(t, a)
	if got := writeback.PlanOf(&res).ToB; got != (systemb.FieldSet{merge.FieldFirstName: true, merge.FieldPhone: true, merge.FieldLoyaltyTier: true}) {
		t.Fatalf("plan ToB = %v", got)
	}
	if err := e.w.Apply(context.Background(), ev.Key, res, ev); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if n := e.sim.PatchCount(wbEmail); n != 1 {
		t.Fatalf("%d PATCHes, want 1", n)
	}
	got := e.stored(t)
	for _, id := range []merge.FieldID{merge.FieldFirstName, merge.FieldPhone, merge.FieldLoyaltyTier} {
		if got.Values[id] != a.Values[id] {
			t.Errorf("System B's %s = %q, want System A's %q", id.Path(), got.Values[id], a.Values[id])
		}
	}
	if got.Values[merge.FieldCity] != "london" || !got.LastUpdated.Equal(wbSimNow) {
		t.Errorf("System B's city %q lastUpdated %v: want its own city kept and its own lastUpdated stamped", got.Values[merge.FieldCity], got.LastUpdated)
	}
	if e.metrics.get(writeback.MetricPatches) != 1 || e.metrics.get(writeback.MetricConflicts412) != 0 {
		t.Errorf("metrics %v", e.metrics.n)
	}
	if l := logs.String(); !strings.Contains(l, ev.ID) || !strings.Contains(l, "loyaltyTier") || strings.Contains(strings.ToLower(l), "ada@") || strings.Contains(l, "Lovelace") {
		t.Errorf("the log should name the event and the fields, never customer data: %s", l)
	}

	t.Run("the same decision again makes no PATCH", func(t *testing.T) {
		if err := e.w.Apply(context.Background(), ev.Key, res, ev); err != nil {
			t.Fatalf("Apply again: %v", err)
		}
		if n := e.sim.PatchCount(wbEmail); n != 1 {
			t.Errorf("%d PATCHes after the re-apply, want still 1", n)
		}
	})
	t.Run("no loop: the change the PATCH caused merges without a conflict", func(t *testing.T) {
		b2 := e.stored(t)
		evB, err := changes.New(merge.SystemB, got, b2, "poll:1", time.Time{}, wbDecided)
		if err != nil {
			t.Fatal(err)
		}
		res2 := merge.Merge(a, b2, merge.DefaultRules())
		if !res2.InSync() {
			t.Errorf("after write-back the systems still disagree: %+v", res2.Conflicts)
		}
		if err := e.w.Apply(context.Background(), evB.Key, res2, evB); err != nil {
			t.Fatalf("Apply of System B's change: %v", err)
		}
		if n := e.sim.PatchCount(wbEmail); n != 1 {
			t.Errorf("%d PATCHes after System B's change event, want still 1", n)
		}
		if n := kafkatest.Count(t, e.brokers, writeback.TopicCorrections); n != 0 {
			t.Errorf("%d corrections published, want none", n)
		}
	})
}

// TestWriteBackPreconditionFailed: another writer changes System B between
// the read and the PATCH; the 412 makes the write-back read again and
// decide again on the fresh read.
func TestWriteBackPreconditionFailed(t *testing.T) {
	a := wbRecord(t, wbTimeA, "firstName", "Ada", "loyaltyTier", "platinum")
	b := wbRecord(t, wbTimeB, "firstName", "Adeline")
	olderChange := wbRecord(t, wbTimeB.Add(time.Minute), "firstName", "Adeline", "address.city", "Leeds")
	newerChange := wbRecord(t, wbTimeA.Add(time.Minute), "firstName", "Addy", "address.city", "Leeds")
	tests := []struct {
		name        string
		writes      int // concurrent writes, one after each of the first reads
		change      *merge.Record
		maxAttempts int
		wantErr     error
		patches     int64 // applied
		refused     int64 // 412
		wantFirst   string
		wantTier    string
	}{
		{"a change older than A: retried, both fields written", 1, olderChange, 0, nil, 1, 1, "Ada", "platinum"},
		{"a change newer than A: newest keeps B's, systemA's tier written", 1, newerChange, 0, nil, 1, 1, "Addy", "platinum"},
		{"B keeps changing: bounded by 3 attempts", 10, olderChange, 0, writeback.ErrConflict, 0, 3, "Adeline", "gold"},
		{"bounded by MaxAttempts", 10, olderChange, 2, writeback.ErrConflict, 0, 2, "Adeline", "gold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWBEnv(t, writeback.ModeSystemB, b)
			res, ev := e.decide(t, a)
			e.w.SystemB = &interfering{SystemB: e.client, t: t, e: e, n: tt.writes, write: func(int) *merge.Record { return tt.change }}
			e.w.MaxAttempts = tt.maxAttempts
			e.sim.ResetStats()
			err := e.w.Apply(context.Background(), ev.Key, res, ev)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Apply = %v, want %v", err, tt.wantErr)
			}
			if err != nil && merge.ErrorKindOf(err) != merge.ErrUnavailable {
				t.Errorf("kind %v, want unavailable", merge.ErrorKindOf(err))
			}
			st := e.sim.Stats()
			if n := e.sim.PatchCount(wbEmail); n != tt.patches || st.PreconditionFailed != tt.refused || st.Patch != tt.patches+tt.refused {
				t.Errorf("PATCHes applied %d, refused %d, sent %d; want %d, %d, %d", n, st.PreconditionFailed, st.Patch, tt.patches, tt.refused, tt.patches+tt.refused)
			}
			if e.metrics.get(writeback.MetricPatches) != tt.patches || e.metrics.get(writeback.MetricConflicts412) != tt.refused {
				t.Errorf("metrics %v", e.metrics.n)
			}
			got := e.stored(t)
			if got.Get(merge.FieldFirstName) != tt.wantFirst || got.Get(merge.FieldLoyaltyTier) != tt.wantTier || got.Get(merge.FieldCity) != "Leeds" {
				t.Errorf("System B holds firstName %q tier %q city %q; want %q %q and the other writer's Leeds",
					got.Get(merge.FieldFirstName), got.Get(merge.FieldLoyaltyTier), got.Get(merge.FieldCity), tt.wantFirst, tt.wantTier)
			}
		})
	}
}

// TestWriteBackWithoutPatch: a System B API v1 (no PATCH) fails the
// write-back clearly, once, without a loop.
func TestWriteBackWithoutPatch(t *testing.T) {
	a := wbRecord(t, wbTimeA, "loyaltyTier", "platinum")
	e := newWBEnv(t, writeback.ModeSystemB, wbRecord(t, wbTimeB))
	res, ev := e.decide(t, a)
	if err := e.sim.SetFaults(bsim.Faults{NoPatch: true}); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetStats()
	err := e.w.Apply(context.Background(), ev.Key, res, ev)
	if !errors.Is(err, systemb.ErrNotSupported) || merge.ErrorKindOf(err) != merge.ErrInvalid {
		t.Fatalf("Apply = %v, want systemb.ErrNotSupported of kind invalid", err)
	}
	if st := e.sim.Stats(); st.Patch != 1 || st.Get != 1 {
		t.Errorf("requests %+v, want one read and one PATCH", st)
	}
	if e.metrics.get(writeback.MetricFailures) != 1 {
		t.Errorf("metrics %v, want one failure", e.metrics.n)
	}
}

// TestWriteBackCorrections: the fields System B won go to System A's
// corrections topic, under an id derived from the source event, the same
// on a redelivery; nothing is written to System B.
func TestWriteBackCorrections(t *testing.T) {
	a := wbRecord(t, wbTimeB, "firstName", "Ada")
	e := newWBEnv(t, writeback.ModeSystemB, wbRecord(t, wbTimeA, "firstName", "Adeline", "marketingOptIn", "false", "loyaltyTier", "gold"))
	res, ev := e.decide(t, a)
	for range 2 { // the event, then its redelivery
		if err := e.w.Apply(context.Background(), ev.Key, res, ev); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	if n := e.sim.PatchCount(wbEmail); n != 0 {
		t.Errorf("%d PATCHes, want none: System B won", n)
	}
	recs := kafkatest.Consume(t, e.brokers, writeback.TopicCorrections, 2)
	if len(recs) != 2 {
		t.Fatalf("%d corrections, want 2", len(recs))
	}
	wantID := writeback.CorrectionID(ev.ID)
	for i, r := range recs {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if string(r.Key) != "ada@example.com" || h["event-id"] != wantID || h["schema-version"] != "1" || h["source-event-id"] != ev.ID {
			t.Errorf("record %d: key %q headers %v; want the join key and event-id %s", i, r.Key, h, wantID)
		}
		var c writeback.Correction
		if err := json.Unmarshal(r.Value, &c); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if c.Email != "ada@example.com" || len(c.Fields) != 2 || c.Fields["firstName"] != "Adeline" || c.Fields["marketingOptIn"] != false ||
			c.Rules["firstName"] != merge.RuleNewest || !c.SystemBLastUpdated.Equal(wbTimeA) || c.SourceEventID != ev.ID || !c.DecidedAt.Equal(wbDecided) {
			t.Errorf("record %d: %+v", i, c)
		}
	}
	if n := e.metrics.get(writeback.MetricCorrections); n != 2 {
		t.Errorf("%s = %d, want 2", writeback.MetricCorrections, n)
	}
}

// BenchmarkWriteBackApply measures one Apply over loopback HTTP against
// the simulator: "patch" alternates System A's loyaltyTier (rule systemA)
// so every Apply reads and PATCHes once; "noop" re-applies a decision
// System B already holds after the first (one read, no PATCH).
func BenchmarkWriteBackApply(b *testing.B) {
	for _, bc := range []struct {
		name  string
		tiers []string
	}{{"patch", []string{"platinum", "silver"}}, {"noop", []string{"platinum"}}} {
		b.Run(bc.name, func(b *testing.B) {
			bStale := wbRecord(b, wbTimeB)
			e := newWBEnv(b, writeback.ModeSystemB, bStale)
			decisions := make([]merge.Result, len(bc.tiers))
			for i, tier := range bc.tiers {
				decisions[i] = merge.Merge(wbRecord(b, wbTimeA, "loyaltyTier", tier), bStale, merge.DefaultRules())
			}
			ev := changes.Event{ID: "bench", Key: "ada@example.com"}
			ctx := context.Background()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if err := e.w.Apply(ctx, ev.Key, decisions[n%len(decisions)], ev); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(e.sim.PatchCount(wbEmail))/float64(n), "patches/op")
		})
	}
}

// wrapped is the System B client with hooks: after a read (before the
// write-back sees it) and on the record a PATCH answered.
type wrapped struct {
	writeback.SystemB
	afterRead func(r *merge.Record, etag string) (*merge.Record, string)
	stored    func(r *merge.Record) *merge.Record
}

func (w *wrapped) GetWithETag(ctx context.Context, email string) (*merge.Record, string, error) {
	r, etag, err := w.SystemB.GetWithETag(ctx, email)
	if err == nil && w.afterRead != nil {
		r, etag = w.afterRead(r, etag)
	}
	return r, etag, err
}

func (w *wrapped) Patch(ctx context.Context, email, etag string, values *merge.Record, set systemb.FieldSet) (*merge.Record, string, error) {
	r, newTag, err := w.SystemB.Patch(ctx, email, etag, values, set)
	if err == nil && w.stored != nil {
		r = w.stored(r)
	}
	return r, newTag, err
}

// TestWriteBackEdges: a customer deleted between the read and the PATCH,
// a System B that sends no ETag, one that is down, one that stores other
// values than written.
func TestWriteBackEdges(t *testing.T) {
	a := wbRecord(t, wbTimeA, "loyaltyTier", "platinum")
	tests := []struct {
		name     string
		wrap     func(e *wbEnv, t *testing.T) *wrapped
		wantKind merge.ErrorKind // "": success
		sent     int64           // PATCH requests
	}{
		{"deleted between the read and the PATCH: nothing to write", func(e *wbEnv, t *testing.T) *wrapped {
			return &wrapped{SystemB: e.client, afterRead: func(r *merge.Record, etag string) (*merge.Record, string) {
				e.delete(t)
				return r, etag
			}}
		}, "", 1},
		{"no ETag: no unconditional write", func(e *wbEnv, _ *testing.T) *wrapped {
			return &wrapped{SystemB: e.client, afterRead: func(r *merge.Record, _ string) (*merge.Record, string) { return r, "" }}
		}, merge.ErrInvalid, 0},
		{"System B down: unavailable, the event is retried later", func(e *wbEnv, t *testing.T) *wrapped {
			if err := e.sim.SetFaults(bsim.Faults{Down: true}); err != nil {
				t.Fatal(err)
			}
			return &wrapped{SystemB: e.client}
		}, merge.ErrUnavailable, 0},
		{"System B stores another value: fails rather than loops", func(e *wbEnv, _ *testing.T) *wrapped {
			return &wrapped{SystemB: e.client, stored: func(r *merge.Record) *merge.Record {
				r.Values[merge.FieldLoyaltyTier] = "platinum-plus"
				return r
			}}
		}, merge.ErrBadData, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWBEnv(t, writeback.ModeSystemB, wbRecord(t, wbTimeB))
			res, ev := e.decide(t, a)
			e.w.SystemB = tt.wrap(e, t)
			e.sim.ResetStats()
			err := e.w.Apply(context.Background(), ev.Key, res, ev)
			if got := merge.ErrorKindOf(err); (err == nil) != (tt.wantKind == "") || (err != nil && got != tt.wantKind) {
				t.Fatalf("Apply = %v (kind %v), want kind %q", err, got, tt.wantKind)
			}
			if st := e.sim.Stats(); st.Patch != tt.sent {
				t.Errorf("%d PATCH requests, want %d", st.Patch, tt.sent)
			}
			if wantFailures := map[bool]int64{true: 0, false: 1}[tt.wantKind == ""]; e.metrics.get(writeback.MetricFailures) != wantFailures {
				t.Errorf("metrics %v, want %d failure", e.metrics.n, wantFailures)
			}
		})
	}
}

// TestWriteBackPatchRouteMissing: a v1 System B whose router has no PATCH
// route answers 404 to it while its GET finds the customer: the write-back
// reads again, tries at most MaxAttempts times and fails with kind
// invalid, never endlessly.
func TestWriteBackPatchRouteMissing(t *testing.T) {
	a := wbRecord(t, wbTimeA, "loyaltyTier", "platinum")
	e := newWBEnv(t, writeback.ModeSystemB, wbRecord(t, wbTimeB))
	res, ev := e.decide(t, a)
	var patches int
	v1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			patches++
			http.NotFound(w, r)
			return
		}
		e.sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(v1.Close)
	client, err := systemb.New(systemb.Config{BaseURL: v1.URL, Token: systemb.StaticToken(wbToken)})
	if err != nil {
		t.Fatal(err)
	}
	e.w.SystemB = client
	err = e.w.Apply(context.Background(), ev.Key, res, ev)
	if merge.ErrorKindOf(err) != merge.ErrInvalid || !errors.Is(err, systemb.ErrNotFound) {
		t.Fatalf("Apply = %v, want kind invalid naming the 404", err)
	}
	if patches != writeback.DefaultMaxAttempts {
		t.Errorf("%d PATCHes, want %d", patches, writeback.DefaultMaxAttempts)
	}
	if e.metrics.get(writeback.MetricFailures) != 1 {
		t.Errorf("metrics %v, want one failure", e.metrics.n)
	}
}
