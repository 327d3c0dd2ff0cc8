package faults

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/acme/unified-customer-service/cmd/local/internal/schedule"
	"github.com/acme/unified-customer-service/shared/capturea"
	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/kafka"
	"github.com/acme/unified-customer-service/shared/kafka/kafkatest"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

// captureStateKey is the capture's state object in the report bucket.
const captureStateKey = reportPrefix + "/" + capturea.DefaultStateKey

// startBroker starts an embedded Kafka broker (kfake, the real protocol)
// on addr with the change topics.
func startBroker(t *testing.T, addr string) *kfake.Cluster {
	t.Helper()
	return kafkatest.BrokerAt(t, addr, 3, changes.TopicSystemA, changes.TopicSystemB)
}

// captureRig starts a broker and a rig whose functions publish to it, and
// runs the capture of the rig's first snapshot version in mode first
// (CAPTURE_A_FIRST_RUN).
func captureRig(t *testing.T, first capturea.FirstRun, opts ...rigOption) (*rig, *kfake.Cluster, capturea.Result) {
	t.Helper()
	broker := startBroker(t, kafkatest.FreeAddr(t))
	addr := broker.ListenAddrs()[0]
	r := newRig(t, append(opts, withEnv("KAFKA_BOOTSTRAP_SERVERS", addr), withEnv("CAPTURE_A_FIRST_RUN", string(first)))...)
	return r, broker, captureResult(t, r.invoke(captureAFn, r.firstCreated()))
}

// snapshotCreated uploads b as a new snapshot version and returns the
// EventBridge "Object Created" event S3 sends for it.
func (r *rig) snapshotCreated(b []byte) []byte {
	r.t.Helper()
	vid := r.putSnapshot(b)
	sum := md5.Sum(b)
	ev, err := schedule.ObjectCreated(schedule.Object{
		Bucket: snapshotBucket, Key: snapshotKey, VersionID: vid, ETag: hex.EncodeToString(sum[:]), Size: int64(len(b)),
		Time: time.Now(),
	}, schedule.Options{Region: "us-east-1", AccountID: "123456789012"})
	if err != nil {
		r.t.Fatal(err)
	}
	return ev
}

// firstCreated is the "Object Created" event of the rig's first snapshot
// version (uploaded by newRig).
func (r *rig) firstCreated() []byte {
	r.t.Helper()
	sum := md5.Sum(data.snapshot)
	ev, err := schedule.ObjectCreated(schedule.Object{
		Bucket: snapshotBucket, Key: snapshotKey, VersionID: r.versions[0], ETag: hex.EncodeToString(sum[:]),
		Size: int64(len(data.snapshot)), Time: time.Now(),
	}, schedule.Options{Region: "us-east-1", AccountID: "123456789012"})
	if err != nil {
		r.t.Fatal(err)
	}
	return ev
}

// captureResult decodes a capture invocation's result.
func captureResult(t *testing.T, c *call) capturea.Result {
	t.Helper()
	c.ok()
	var res capturea.Result
	if err := json.Unmarshal(c.res.Payload, &res); err != nil {
		t.Fatalf("the result is not a capture result: %v: %s", err, c.res.Payload)
	}
	return res
}

// captureState reads the capture's state object.
func captureState(t *testing.T, r *rig) capturea.State {
	t.Helper()
	var st capturea.State
	if err := json.Unmarshal(r.getObject(reportBucket, captureStateKey), &st); err != nil {
		t.Fatalf("state: %v", err)
	}
	return st
}

// changedSnapshot is the data set's snapshot exported a day later with
// two changes: one customer's phone (and lastUpdated) changed, another
// deleted, and the extra statements run. It returns the snapshot and the
// two customers' join keys.
func changedSnapshot(t *testing.T, extra ...string) (snap []byte, updated, deleted string) {
	t.Helper()
	u, d := data.a[len(data.a)/3], data.a[2*len(data.a)/3]
	q := func(r *merge.Record) string { return strings.ReplaceAll(r.Email(), "'", "''") }
	snap = alteredSnapshot(t,
		"UPDATE snapshot_meta SET value = '"+data.truth.ExportedAt.Add(24*time.Hour).Format(time.RFC3339)+"' WHERE key = 'exported_at'",
		"UPDATE customers SET phone = '+44 20 7946 0999', last_updated = '"+data.truth.ExportedAt.Add(time.Hour).Format(time.RFC3339)+"' WHERE email = '"+q(u)+"'",
		"DELETE FROM customers WHERE email = '"+q(d)+"'",
	)
	if len(extra) > 0 {
		snap = alterSnapshot(t, snap, extra...)
	}
	return snap, u.Key(), d.Key()
}

// wantTopic reads every record of customer.changes.system-a, decodes each
// (the contract's checks), and returns the ops by key.
func wantTopic(t *testing.T, brokers []string) map[string][]changes.Op {
	t.Helper()
	n := kafkatest.Count(t, brokers, changes.TopicSystemA)
	ops := map[string][]changes.Op{}
	for _, rec := range kafkatest.Consume(t, brokers, changes.TopicSystemA, int(n)) {
		ev, err := changes.Decode(rec.Key, rec.Value, kafka.Headers(rec))
		if err != nil {
			t.Fatalf("a record does not decode: %v", err)
		}
		ops[ev.Key] = append(ops[ev.Key], ev.Op)
	}
	return ops
}

// Row 20: the Kafka broker cannot be reached when a new snapshot lands:
// the capture fails (the invocation errs, so Lambda retries it and then
// dead-letters it), counts capture.failures.total, and does not advance its
// state; the retry, with the broker back, publishes the changes.
func TestRow20CaptureBrokerUnreachable(t *testing.T) {
	t.Parallel()
	r, broker, first := captureRig(t, capturea.FirstRunBaseline, withTimeout(captureAFn, 10*time.Second))
	if first.Status != capturea.StatusBaseline {
		t.Fatalf("first capture: %+v, want the baseline", first)
	}
	addr := broker.ListenAddrs()[0]
	broker.Close()

	snap, updated, deleted := changedSnapshot(t)
	ev := r.snapshotCreated(snap)
	c := r.invoke(captureAFn, ev)
	if c.res.FunctionError == "" {
		t.Fatalf("the capture succeeded with the broker down: %s", c.res.Payload)
	}
	if n := c.count(emf.CaptureFailures); n != 1 {
		t.Errorf("%s = %v, want 1", emf.CaptureFailures, n)
	}
	c.wantLog("ERROR", "capture: failed; the state stays at the version captured last, and a retry publishes again under the same ids", r.versions[1])
	if st := captureState(t, r); st.VersionID != r.versions[0] {
		t.Errorf("state advanced to %s with the broker down, want still %s", st.VersionID, r.versions[0])
	}

	startBroker(t, addr) // back, empty
	res := captureResult(t, r.invoke(captureAFn, ev))
	if res.Status != capturea.StatusCaptured || res.Counts.Updates != 1 || res.Counts.Deletes != 1 || res.Counts.Creates != 0 {
		t.Errorf("retry: %+v, want one update and one delete captured", res)
	}
	ops := wantTopic(t, []string{addr})
	if len(ops) != 2 || len(ops[updated]) != 1 || ops[updated][0] != changes.OpUpdate || len(ops[deleted]) != 1 || ops[deleted][0] != changes.OpDelete {
		t.Errorf("topic holds %d customers' events, want exactly one update and one delete", len(ops))
	}
	if st := captureState(t, r); st.VersionID != r.versions[1] {
		t.Errorf("state %s after the retry, want %s", st.VersionID, r.versions[1])
	}
}

// Row 21: the same snapshot event delivered again (an EventBridge or
// Lambda retry, a redrive) publishes nothing; a snapshot exported before
// the captured one is refused, counted and publishes nothing.
func TestRow21CaptureReplayAndOlderSnapshot(t *testing.T) {
	t.Parallel()
	r, broker, res := captureRig(t, capturea.FirstRunSnapshot)
	addr := broker.ListenAddrs()[0]
	ev := r.firstCreated()
	if res.Status != capturea.StatusCaptured || res.Counts.Creates != len(data.a) {
		t.Fatalf("first capture: %+v, want every one of the %d customers created", res, len(data.a))
	}
	published := kafkatest.Count(t, []string{addr}, changes.TopicSystemA)
	if published != int64(len(data.a)) {
		t.Fatalf("%d records, want %d", published, len(data.a))
	}

	c := r.invoke(captureAFn, ev)
	if res := captureResult(t, c); res.Status != capturea.StatusDuplicate {
		t.Errorf("replay: %+v, want duplicate", res)
	}
	older := alteredSnapshot(t, "UPDATE snapshot_meta SET value = '"+data.truth.ExportedAt.Add(-24*time.Hour).Format(time.RFC3339)+"' WHERE key = 'exported_at'")
	c = r.invoke(captureAFn, r.snapshotCreated(older))
	if res := captureResult(t, c); res.Status != capturea.StatusRefusedOlder {
		t.Errorf("older snapshot: %+v, want refusedOlder", res)
	}
	if n := c.count(emf.CaptureRejectedOlder); n != 1 {
		t.Errorf("%s = %v, want 1", emf.CaptureRejectedOlder, n)
	}
	c.wantLog("WARN", "capture: refused a snapshot exported before the one captured last; nothing published", r.versions[1], r.versions[0])
	if n := kafkatest.Count(t, []string{addr}, changes.TopicSystemA); n != published {
		t.Errorf("%d records after the replay and the older snapshot, want still %d", n, published)
	}
	if st := captureState(t, r); st.VersionID != r.versions[0] {
		t.Errorf("state %s, want still %s", st.VersionID, r.versions[0])
	}
}

// Row 22: a customer's row is malformed in the new snapshot: it is
// skipped and counted (capture.bad_records.system_a.total), its customer
// is not deleted (the row is still there), every other change is
// published, and no log line quotes the row.
func TestRow22CaptureBadRow(t *testing.T) {
	t.Parallel()
	r, broker, _ := captureRig(t, capturea.FirstRunBaseline)
	addr := broker.ListenAddrs()[0]

	bad := data.a[len(data.a)/2]
	snap, updated, deleted := changedSnapshot(t,
		"UPDATE customers SET last_updated = 'the day before yesterday' WHERE email = '"+strings.ReplaceAll(bad.Email(), "'", "''")+"'")
	c := r.invoke(captureAFn, r.snapshotCreated(snap))
	res := captureResult(t, c)
	if res.Counts.BadRecords != 1 || res.Counts.Withheld != 1 || c.count(emf.CaptureBadRecordsSystemA) != 1 {
		t.Errorf("bad records %d, withheld deletes %d, metric %v; want 1, 1, 1", res.Counts.BadRecords, res.Counts.Withheld, c.count(emf.CaptureBadRecordsSystemA))
	}
	ops := wantTopic(t, []string{addr})
	if len(ops) != 2 || len(ops[updated]) != 1 || len(ops[deleted]) != 1 {
		t.Errorf("topic: %d customers' events, want exactly the update and the delete", len(ops))
	}
	for _, l := range c.lines {
		if strings.Contains(l, "the day before yesterday") {
			t.Errorf("a log line quotes the malformed value: %s", l)
		}
	}
}
