package capturea_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to break a row of a test snapshot

	"github.com/acme/unified-customer-service/shared/capturea"
	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/report"
	"github.com/acme/unified-customer-service/shared/systema"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

var (
	t0      = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	t1      = time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)
	export1 = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	export2 = time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	now     = time.Date(2026, 12, 2, 2, 5, 0, 0, time.UTC)
)

const (
	bucket = "ucs-snapshots"
	key    = "customers.db"
)

// customer builds a System A record.
func customer(t *testing.T, email, phone, city string, lastUpdated time.Time) *merge.Record {
	t.Helper()
	r := &merge.Record{LastUpdated: lastUpdated}
	r.Values[merge.FieldEmail] = email
	r.Values[merge.FieldFirstName] = "Test"
	r.Values[merge.FieldLastName] = "Customer"
	r.Values[merge.FieldPhone] = phone
	r.Values[merge.FieldCity] = city
	r.Values[merge.FieldCountry] = "GB"
	r.Values[merge.FieldMarketingOptIn] = "true"
	r.Values[merge.FieldLoyaltyTier] = "silver"
	return r
}

// versions is a versioned snapshot object: a Fetcher serving each version
// from a file, as S3's GetObject with a VersionId does.
type versions struct {
	dir   string
	files map[string]string // version id -> file
	seq   int
}

func newVersions(t *testing.T) *versions {
	t.Helper()
	return &versions{dir: t.TempDir(), files: map[string]string{}}
}

// put writes a snapshot of recs as a new version and returns the object
// the S3 event would name.
func (v *versions) put(t *testing.T, exportedAt time.Time, recs ...*merge.Record) capturea.Object {
	t.Helper()
	v.seq++
	id := fmt.Sprintf("v%03d", v.seq)
	path := filepath.Join(v.dir, id+".db")
	if err := systema.WriteSnapshot(context.Background(), path, exportedAt, slices.Values(recs)); err != nil {
		t.Fatalf("write snapshot: %v", err)
	}
	v.files[id] = path
	return v.object(t, id)
}

func (v *versions) object(t *testing.T, id string) capturea.Object {
	t.Helper()
	fi, err := os.Stat(v.files[id])
	if err != nil {
		t.Fatal(err)
	}
	return capturea.Object{Bucket: bucket, Key: key, VersionID: id, ETag: "etag-" + id, Size: fi.Size()}
}

// Stat implements capturea.Source: the latest version.
func (v *versions) Stat(ctx context.Context) (systema.Version, error) {
	if v.seq == 0 {
		return systema.Version{}, systema.ErrNoSnapshot
	}
	id := fmt.Sprintf("v%03d", v.seq)
	fi, err := os.Stat(v.files[id])
	if err != nil {
		return systema.Version{}, err
	}
	return systema.Version{URI: "s3://" + bucket + "/" + key, VersionID: id, ETag: `"etag-` + id + `"`, Size: fi.Size()}, nil
}

// Fetch implements capturea.Source.
func (v *versions) Fetch(ctx context.Context, ver systema.Version, dst *os.File) error {
	path, ok := v.files[ver.VersionID]
	if !ok {
		return fmt.Errorf("get %s: %w", ver, systema.ErrNoSnapshot)
	}
	if ver.ETag != `"etag-`+ver.VersionID+`"` {
		return fmt.Errorf("get %s: etag %s: %w", ver, ver.ETag, systema.ErrChanged)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(dst, f)
	return err
}

// breakRow gives the row of email an unparsable last_updated.
func breakRow(t *testing.T, path, email string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec("UPDATE customers SET last_updated = 'yesterday' WHERE email = ?", email)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("breakRow: %d rows updated", n)
	}
}

// metrics records counts.
type metrics struct{ counts map[string]int64 }

func (m *metrics) Count(name string, n int64)                 { m.counts[name] += n }
func (m *metrics) Observe(name string, v float64, u emf.Unit) {}

// rig is one capture function against a real broker.
type rig struct {
	brokers []string
	v       *versions
	state   *report.FileStore
	prod    *kafka.Producer
	metrics *metrics
}

func newRig(t *testing.T) *rig {
	t.Helper()
	brokers := kafkatest.Broker(t, 3, changes.TopicSystemA).ListenAddrs()
	p, err := kafka.NewProducer(kafka.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return &rig{brokers: brokers, v: newVersions(t), state: &report.FileStore{Dir: t.TempDir()}, prod: p, metrics: &metrics{counts: map[string]int64{}}}
}

func (r *rig) capturer(pub changes.Publisher, first capturea.FirstRun) *capturea.Capturer {
	return &capturea.Capturer{
		Snapshot:  systema.URI{Scheme: "s3", Bucket: bucket, Key: key},
		Source:    r.v,
		State:     r.state,
		Publisher: pub,
		Metrics:   r.metrics,
		FirstRun:  first,
		BatchSize: 2,
		Now:       func() time.Time { return now },
	}
}

// total returns how many records the topic holds.
func (r *rig) total(t *testing.T) int64 {
	t.Helper()
	return kafkatest.Count(t, r.brokers, changes.TopicSystemA)
}

// baselined captures the change set's old snapshot as the baseline and
// uploads its new one, not captured yet.
func (r *rig) baselined(t *testing.T, cs changeSet) (v1, v2 capturea.Object) {
	t.Helper()
	v1 = r.v.put(t, export1, cs.old...)
	if _, err := r.capturer(r.prod, capturea.FirstRunBaseline).Capture(context.Background(), v1); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	return v1, r.v.put(t, export2, cs.cur...)
}

// want is one expected event.
type want struct {
	op            changes.Op
	key           string
	before, after *merge.Record
}

func (w want) id() string {
	changed := w.after
	if changed == nil {
		changed = w.before
	}
	return changes.ID(merge.SystemA, w.key, w.op, changed.LastUpdated, w.after)
}

// changeSet is the snapshot pair of the change-set tests: an insert, an
// update, a delete, a cosmetic-only change, a lastUpdated-only change and
// a non-ASCII email.
type changeSet struct {
	old, cur []*merge.Record
	want     []want // in key order
}

func newChangeSet(t *testing.T) changeSet {
	t.Helper()
	same := customer(t, "same@example.com", "+44 20 7946 0001", "Leeds", t0)
	updOld := customer(t, "Update@Example.com", "+44 20 7946 0002", "York", t0)
	updNew := customer(t, "Update@Example.com", "+44 20 7946 0099", "York", t1)
	del := customer(t, "delete@example.com", "+44 20 7946 0003", "Bath", t0)
	cosOld := customer(t, "cosmetic@example.com", "+44 20 7946 0004", "Ely", t0)
	cosNew := customer(t, "cosmetic@example.com", "+44-20-7946-0004", "  Ely ", t0) // the same after normalisation, same lastUpdated
	touOld := customer(t, "touched@example.com", "+44 20 7946 0005", "Hull", t0)
	touNew := customer(t, "touched@example.com", "+44 20 7946 0005", "Hull", t1) // only lastUpdated moved
	ins := customer(t, "insert@example.com", "+44 20 7946 0006", "Wells", t1)
	zoe := customer(t, "Zoë.Ångström@Exämple.se", "+46 8 765 43 21", "Malmö", t1)
	return changeSet{
		old: []*merge.Record{same, updOld, del, cosOld, touOld},
		cur: []*merge.Record{same, updNew, cosNew, touNew, ins, zoe},
		want: []want{
			{changes.OpDelete, "delete@example.com", del, nil},
			{changes.OpCreate, "insert@example.com", nil, ins},
			{changes.OpUpdate, "touched@example.com", touOld, touNew},
			{changes.OpUpdate, "update@example.com", updOld, updNew},
			{changes.OpCreate, "zoë.ångström@exämple.se", nil, zoe},
		},
	}
}

// checkTopic reads every record of the topic and checks that each decodes,
// that ids are the expected ones (each at least once, no other), and, when
// ordered, that every partition holds its keys in join order. It returns
// how many times each id was read.
func checkTopic(t *testing.T, r *rig, wants []want, version string, ordered bool) map[string]int {
	t.Helper()
	n := r.total(t)
	recs := kafkatest.Consume(t, r.brokers, changes.TopicSystemA, int(n))
	byID := map[string]want{}
	for _, w := range wants {
		byID[w.id()] = w
	}
	seen := map[string]int{}
	last := map[int32]string{}
	for _, rec := range recs {
		ev, err := changes.Decode(rec.Key, rec.Value, kafka.Headers(rec))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		w, ok := byID[ev.ID]
		if !ok {
			t.Errorf("unexpected event %s %s (%s)", ev.Op, ev.Key, ev.ID)
			continue
		}
		seen[ev.ID]++
		if ev.Op != w.op || ev.Key != w.key || ev.Source.Version != version || ev.Source.ExportedAt == nil || !ev.Source.ExportedAt.Equal(export2) {
			t.Errorf("event %s: op %s key %s version %s, want %s %s %s exported %v", ev.ID, ev.Op, ev.Key, ev.Source.Version, w.op, w.key, version, export2)
		}
		if prev, ok := last[rec.Partition]; ordered && ok && ev.Key < prev {
			t.Errorf("partition %d: %s after %s: not in key order", rec.Partition, ev.Key, prev)
		}
		last[rec.Partition] = ev.Key
	}
	for id, w := range byID {
		if seen[id] == 0 {
			t.Errorf("missing event %s %s", w.op, w.key)
		}
	}
	return seen
}

// records sums the counts of checkTopic.
func records(seen map[string]int) int {
	n := 0
	for _, c := range seen {
		n += c
	}
	return n
}

// TestCaptureChangeSet: the change set publishes exactly its events, in
// key order per partition; the cosmetic-only change and the unchanged
// customer publish nothing; the state advances; the same version again
// publishes nothing.
func TestCaptureChangeSet(t *testing.T) {
	r := newRig(t)
	cs := newChangeSet(t)
	c := r.capturer(r.prod, capturea.FirstRunBaseline)
	ctx := context.Background()

	v1 := r.v.put(t, export1, cs.old...)
	res, err := c.Capture(ctx, v1)
	if err != nil {
		t.Fatalf("first capture: %v", err)
	}
	if res.Status != capturea.StatusBaseline || r.total(t) != 0 {
		t.Fatalf("first capture in baseline mode: status %s, %d events; want baseline, none", res.Status, r.total(t))
	}

	v2 := r.v.put(t, export2, cs.cur...)
	res, err = c.Capture(ctx, v2)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	wantCounts := capturea.Counts{Creates: 2, Updates: 2, Deletes: 1, Unchanged: 2}
	if res.Status != capturea.StatusCaptured || res.Counts != wantCounts || res.Previous != v1.VersionID || res.Version != v2.VersionID {
		t.Errorf("result = %+v, want captured %s against %s, counts %+v", res, v2.VersionID, v1.VersionID, wantCounts)
	}
	if n := records(checkTopic(t, r, cs.want, v2.VersionID, true)); n != len(cs.want) {
		t.Errorf("%d records, want exactly %d", n, len(cs.want))
	}
	for _, name := range []string{emf.CaptureAPublishedCreates, emf.CaptureAPublishedUpdates, emf.CaptureAPublishedDeletes} {
		if got, w := r.metrics.counts[name], map[string]int64{emf.CaptureAPublishedCreates: 2, emf.CaptureAPublishedUpdates: 2, emf.CaptureAPublishedDeletes: 1}[name]; got != w {
			t.Errorf("%s = %d, want %d", name, got, w)
		}
	}

	t.Run("replay publishes nothing", func(t *testing.T) {
		res, err := c.Capture(ctx, v2)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != capturea.StatusDuplicate || r.total(t) != int64(len(cs.want)) {
			t.Errorf("replay: status %s, %d records; want duplicate, still %d", res.Status, r.total(t), len(cs.want))
		}
	})
	t.Run("an older snapshot is refused", func(t *testing.T) {
		old := r.v.put(t, export1.Add(-time.Hour), cs.old...)
		res, err := c.Capture(ctx, old)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != capturea.StatusRefusedOlder || r.total(t) != int64(len(cs.want)) || r.metrics.counts[emf.CaptureRejectedOlder] != 1 {
			t.Errorf("older: status %s, %d records, counted %d; want refusedOlder, still %d, 1",
				res.Status, r.total(t), r.metrics.counts[emf.CaptureRejectedOlder], len(cs.want))
		}
		// The state still names v2: v2 again is a duplicate.
		if res, err := c.Capture(ctx, v2); err != nil || res.Status != capturea.StatusDuplicate {
			t.Errorf("v2 after the refusal: %s, %v; want duplicate", res.Status, err)
		}
	})
}

// TestCaptureFirstRunSnapshot: with no state, the snapshot mode publishes
// every customer as a create.
func TestCaptureFirstRunSnapshot(t *testing.T) {
	r := newRig(t)
	cs := newChangeSet(t)
	v := r.v.put(t, export2, cs.cur...)
	res, err := r.capturer(r.prod, capturea.FirstRunSnapshot).Capture(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	var wants []want
	for _, rec := range cs.cur {
		wants = append(wants, want{changes.OpCreate, rec.Key(), nil, rec})
	}
	if res.Status != capturea.StatusCaptured || res.Counts.Creates != len(cs.cur) {
		t.Errorf("result %+v, want captured with %d creates", res, len(cs.cur))
	}
	if n := records(checkTopic(t, r, wants, v.VersionID, true)); n != len(wants) {
		t.Errorf("%d records, want %d", n, len(wants))
	}
}

// failAfter publishes through the real producer until n events went out,
// then fails: a capture killed mid-publish.
type failAfter struct {
	p *kafka.Producer
	n int
}

var errCrash = errors.New("test: crashed mid-publish")

func (f *failAfter) Publish(ctx context.Context, evs ...changes.Event) error {
	if len(evs) > f.n {
		evs = evs[:f.n]
	}
	f.n -= len(evs)
	if err := f.p.Publish(ctx, evs...); err != nil {
		return err
	}
	if f.n == 0 {
		return errCrash
	}
	return nil
}

// TestCaptureCrashThenRetry: a capture that fails after some events leaves
// the state where it was; the retry publishes every event, the ones
// already out again under the same ids, none skipped, none new.
func TestCaptureCrashThenRetry(t *testing.T) {
	for _, after := range []int{1, 2, 3, 4} {
		t.Run(fmt.Sprintf("after %d events", after), func(t *testing.T) {
			r := newRig(t)
			cs := newChangeSet(t)
			ctx := context.Background()
			v1, v2 := r.baselined(t, cs)
			_, err := r.capturer(&failAfter{p: r.prod, n: after}, capturea.FirstRunBaseline).Capture(ctx, v2)
			if !errors.Is(err, errCrash) {
				t.Fatalf("crashed capture: %v, want the crash", err)
			}
			if r.metrics.counts[emf.CaptureFailures] != 1 {
				t.Errorf("%s = %d, want 1", emf.CaptureFailures, r.metrics.counts[emf.CaptureFailures])
			}
			body, _, err := r.state.Get(ctx, capturea.DefaultStateKey)
			if err != nil || !strings.Contains(string(body), v1.VersionID) {
				t.Fatalf("state after the crash: %s, %v; want still %s", body, err, v1.VersionID)
			}
			res, err := r.capturer(r.prod, capturea.FirstRunBaseline).Capture(ctx, v2)
			if err != nil || res.Status != capturea.StatusCaptured {
				t.Fatalf("retry: %s, %v", res.Status, err)
			}
			// Published twice: exactly the first events in key order, those
			// the crashed capture had out.
			seen := checkTopic(t, r, cs.want, v2.VersionID, false)
			for i, w := range cs.want {
				if want := 1 + min(1, max(0, after-i)); seen[w.id()] != want {
					t.Errorf("%s %s published %d times, want %d", w.op, w.key, seen[w.id()], want)
				}
			}
		})
	}
}

// TestCaptureBrokerDown: a broker that cannot be reached fails the
// capture (the invocation errs, Lambda retries) and leaves the state.
func TestCaptureBrokerDown(t *testing.T) {
	r := newRig(t)
	cs := newChangeSet(t)
	ctx := context.Background()
	v1, v2 := r.baselined(t, cs)
	down, err := kafka.NewProducer(kafka.Config{Brokers: []string{kafkatest.FreeAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second) // the invocation's deadline
	defer cancel()
	_, err = r.capturer(down, capturea.FirstRunBaseline).Capture(dctx, v2)
	if !errors.Is(err, merge.ErrUnavailable) {
		t.Fatalf("capture with the broker down: %v, want kind unavailable", err)
	}
	body, _, _ := r.state.Get(ctx, capturea.DefaultStateKey)
	if !strings.Contains(string(body), v1.VersionID) {
		t.Errorf("state after the failure: %s, want still %s", body, v1.VersionID)
	}
	// The retry, with the broker back, publishes the change set.
	if _, err := r.capturer(r.prod, capturea.FirstRunBaseline).Capture(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if n := records(checkTopic(t, r, cs.want, v2.VersionID, true)); n != len(cs.want) {
		t.Errorf("%d records, want %d", n, len(cs.want))
	}
}

// TestCaptureBadRows: a malformed row of the new snapshot is skipped and
// counted, every other change is published; a customer whose row became
// malformed is not deleted (its delete is withheld).
func TestCaptureBadRows(t *testing.T) {
	tests := []struct {
		name, broken string // the email whose row v2 breaks
		withheld     int
	}{
		{"a new customer's row", "insert@example.com", 0},
		{"an existing customer's row", "same@example.com", 1},
		{"an updated customer's row", "Update@Example.com", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			cs := newChangeSet(t)
			ctx := context.Background()
			_, v2 := r.baselined(t, cs)
			breakRow(t, r.v.files[v2.VersionID], tt.broken)
			v2 = r.v.object(t, v2.VersionID)
			res, err := r.capturer(r.prod, capturea.FirstRunBaseline).Capture(ctx, v2)
			if err != nil {
				t.Fatal(err)
			}
			var wants []want
			for _, w := range cs.want {
				if w.key != merge.Key(tt.broken) {
					wants = append(wants, w)
				}
			}
			if res.Counts.BadRecords != 1 || res.Counts.Withheld != tt.withheld || r.metrics.counts[emf.CaptureBadRecordsSystemA] != 1 {
				t.Errorf("bad records %d, withheld %d, metric %d; want 1, %d, 1",
					res.Counts.BadRecords, res.Counts.Withheld, r.metrics.counts[emf.CaptureBadRecordsSystemA], tt.withheld)
			}
			if n := records(checkTopic(t, r, wants, v2.VersionID, true)); n != len(wants) {
				t.Errorf("%d records, want %d", n, len(wants))
			}
		})
	}
}

// TestCaptureRefusesBadObjects: an event for another object, or one
// without a version id, fails with ErrBadObject and touches nothing.
func TestCaptureRefusesBadObjects(t *testing.T) {
	r := newRig(t)
	v := r.v.put(t, export1, customer(t, "a@example.com", "", "", t0))
	tests := []struct {
		name string
		edit func(*capturea.Object)
	}{
		{"another bucket", func(o *capturea.Object) { o.Bucket = "other" }},
		{"another key", func(o *capturea.Object) { o.Key = "old/customers.db" }},
		{"null version", func(o *capturea.Object) { o.VersionID = "null" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := v
			tt.edit(&obj)
			_, err := r.capturer(r.prod, capturea.FirstRunSnapshot).Capture(context.Background(), obj)
			if !errors.Is(err, capturea.ErrBadObject) || !errors.Is(err, merge.ErrInvalid) {
				t.Errorf("err = %v, want ErrBadObject", err)
			}
		})
	}
	if _, _, err := r.state.Get(context.Background(), capturea.DefaultStateKey); !errors.Is(err, report.ErrNotExist) {
		t.Errorf("state written: %v", err)
	}
}

// racingStore is a state store where, just before the capture's write,
// another capture writes the state for version (a concurrent delivery).
type racingStore struct {
	report.Store
	other   *capturea.Capturer
	version capturea.Object
	raced   bool
}

func (s *racingStore) race(ctx context.Context) error {
	if s.raced {
		return nil
	}
	s.raced = true
	_, err := s.other.Capture(ctx, s.version)
	return err
}

func (s *racingStore) PutIfAbsent(ctx context.Context, key string, body io.ReadSeeker, ct string) (string, error) {
	if err := s.race(ctx); err != nil {
		return "", err
	}
	return s.Store.PutIfAbsent(ctx, key, body, ct)
}

func (s *racingStore) Replace(ctx context.Context, key string, body io.ReadSeeker, ct, tag string) (string, error) {
	if err := s.race(ctx); err != nil {
		return "", err
	}
	return s.Store.Replace(ctx, key, body, ct, tag)
}

// TestCaptureConcurrentDeliveries: two captures overlap. Of the same
// version, the loser answers duplicate (its events have the winner's ids);
// of another version, the loser fails and leaves the winner's state.
func TestCaptureConcurrentDeliveries(t *testing.T) {
	tests := []struct {
		name       string
		rivalNewer bool // the rival captures a newer version than v2
		wantStatus capturea.Status
		wantErr    error
	}{
		{"the same version", false, capturea.StatusDuplicate, nil},
		{"another version", true, capturea.StatusCaptured, capturea.ErrStateChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			cs := newChangeSet(t)
			_, v2 := r.baselined(t, cs)
			rivalObj := v2
			if tt.rivalNewer {
				rivalObj = r.v.put(t, export2.Add(time.Hour), cs.cur...)
			}
			c := r.capturer(r.prod, capturea.FirstRunBaseline)
			c.State = &racingStore{Store: r.state, other: r.capturer(r.prod, capturea.FirstRunBaseline), version: rivalObj}
			res, err := c.Capture(context.Background(), v2)
			if res.Status != tt.wantStatus || !errors.Is(err, tt.wantErr) {
				t.Errorf("capture = %s, %v; want %s, %v", res.Status, err, tt.wantStatus, tt.wantErr)
			}
			body, _, err := r.state.Get(context.Background(), capturea.DefaultStateKey)
			if err != nil || !strings.Contains(string(body), rivalObj.VersionID) {
				t.Errorf("state %s, %v; want the rival's %s", body, err, rivalObj.VersionID)
			}
		})
	}
}

// TestCaptureRefusesAnotherObjectsState: a state written for another
// snapshot object (SNAPSHOT_URI changed) is not diffed against.
func TestCaptureRefusesAnotherObjectsState(t *testing.T) {
	r := newRig(t)
	cs := newChangeSet(t)
	_, v2 := r.baselined(t, cs)
	c := r.capturer(r.prod, capturea.FirstRunBaseline)
	c.Snapshot.Key = "moved/customers.db"
	v2.Key = c.Snapshot.Key
	if _, err := c.Capture(context.Background(), v2); !errors.Is(err, capturea.ErrBadObject) {
		t.Errorf("err = %v, want ErrBadObject", err)
	}
	if n := r.total(t); n != 0 {
		t.Errorf("%d events published", n)
	}
}

// TestCaptureCurrentVersion: an event without a version id captures the
// object's current version.
func TestCaptureCurrentVersion(t *testing.T) {
	r := newRig(t)
	cs := newChangeSet(t)
	r.v.put(t, export1, cs.old...)
	v2 := r.v.put(t, export2, cs.cur...)
	res, err := r.capturer(r.prod, capturea.FirstRunBaseline).Capture(context.Background(), capturea.Object{Bucket: bucket, Key: key})
	if err != nil || res.Status != capturea.StatusBaseline || res.Version != v2.VersionID {
		t.Errorf("capture = %+v, %v; want the baseline at %s", res, err, v2.VersionID)
	}
}

func TestParseFirstRun(t *testing.T) {
	tests := []struct {
		in   string
		want capturea.FirstRun
		ok   bool
	}{
		{"", capturea.FirstRunSnapshot, true},
		{"snapshot", capturea.FirstRunSnapshot, true},
		{" baseline ", capturea.FirstRunBaseline, true},
		{"all", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := capturea.ParseFirstRun(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("ParseFirstRun(%q) = %q, %v", tt.in, got, err)
			}
		})
	}
}
