package faults

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to break snapshots

	"github.com/acme/unified-customer-service/shared/app"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systema"
	"github.com/acme/unified-customer-service/shared/telemetry/emf"
)

// refreshWait is a little more than SNAPSHOT_REFRESH_SECONDS=1: after it, the
// next invocation looks for a newer snapshot.
const refreshWait = 1100 * time.Millisecond

// alteredSnapshot returns the data set's snapshot changed by SQL statements.
func alteredSnapshot(t *testing.T, stmts ...string) []byte {
	t.Helper()
	return alterSnapshot(t, data.snapshot, stmts...)
}

// alterSnapshot returns snapshot changed by SQL statements.
func alterSnapshot(t *testing.T, snapshot []byte, stmts ...string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "altered.db")
	if err := os.WriteFile(path, snapshot, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newSnapshot writes a snapshot of records exported at exportedAt, as
// System A's batch does.
func newSnapshot(t *testing.T, exportedAt time.Time, records []*merge.Record) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "new.db")
	if err := systema.WriteSnapshot(context.Background(), path, exportedAt, slices.Values(records)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// badSnapshots are the snapshot faults of row 7, with what the logs must
// say about each.
func badSnapshots(t *testing.T) []struct {
	name   string
	body   []byte // nil: no object at all
	reason string
} {
	return []struct {
		name   string
		body   []byte
		reason string
	}{
		{"missing", nil, "snapshot not found"},
		{"truncated", data.snapshot[:len(data.snapshot)/2+100], "truncated"},
		{"not SQLite", bytes.Repeat([]byte("customers,export\n"), 4096), "not an SQLite database"},
		{"wrong schema_version", alteredSnapshot(t, `UPDATE snapshot_meta SET value = '2' WHERE key = 'schema_version'`), "schema_version"},
		{"WAL-mode file", alteredSnapshot(t, `PRAGMA journal_mode=WAL`), "WAL"},
	}
}

// Row 7: a missing, truncated, foreign, wrong-version or WAL-mode snapshot
// makes System A unavailable: lookups answer partially from System B (503
// naming the outage for a customer only System A holds: unknown, not
// absent), sync answers 503 naming System A, and nothing is served from the
// bad file.
func TestRow07BadSnapshot(t *testing.T) {
	t.Parallel()
	for _, tc := range badSnapshots(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := withSnapshot(tc.body)
			if tc.body == nil {
				opt = withoutSnapshot()
			}
			r := newRig(t, opt)
			c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
			wantFromBOnly(t, c)
			c.wantLog("ERROR", "systema: snapshot unavailable", tc.reason)

			c = r.invoke(lookupFn, lookupEvent(t, onlyAEmail))
			p := c.wantProblem(http.StatusServiceUnavailable)
			if !strings.Contains(p.Detail, "System A could not be asked") || !slices.Equal(p.Degraded, []string{"systemA"}) {
				t.Errorf("503 %+v does not say System A could not be asked", p)
			}

			c = r.invoke(lookupFn, lookupEvent(t, onlyBEmail))
			wantFromBOnly(t, c)

			s := r.invoke(syncFn, syncEvent(t, conflictEmail))
			wantSyncDown(t, s, "systemA")
		})
	}
}

// Row 9: a refresh finds a corrupt new snapshot: the last good one keeps
// serving, the failure is logged (naming both versions) and counted; a
// later good snapshot is picked up.
func TestRow09CorruptRefresh(t *testing.T) {
	t.Parallel()
	r := newRig(t, withEnv("SNAPSHOT_REFRESH_SECONDS", "1"))
	good := r.versions[0]
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	first := wantBothSystems(t, c)
	c.wantLog("INFO", "systema: snapshot loaded", good)
	r.invoke(syncFn, syncEvent(t, conflictEmail)).ok() // each warm process holds the good one

	bad := r.putSnapshot(alteredSnapshot(t, `UPDATE snapshot_meta SET value = '2' WHERE key = 'schema_version'`))
	time.Sleep(refreshWait)
	c = r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	b := wantBothSystems(t, c)
	if b.Freshness.SystemA == nil || !b.Freshness.SystemA.Equal(*first.Freshness.SystemA) || b.LastUpdated.SystemA == nil {
		t.Errorf("freshness.systemA %v, want the last good snapshot's %v", b.Freshness.SystemA, first.Freshness.SystemA)
	}
	s := r.invoke(syncFn, syncEvent(t, conflictEmail))
	if st := s.status(nil); st != http.StatusOK {
		t.Errorf("sync: status %d, want 200 from the last good snapshot", st)
	}
	for _, c := range []*call{c, s} {
		if n := c.count(emf.SnapshotRefreshFailures); n != 1 {
			t.Errorf("%s: systema.snapshot_refresh_failures.total = %v, want 1", c.fn, n)
		}
		c.wantLog("WARN", "snapshot refresh failed; serving the last good snapshot", bad, good, "schema_version")
	}

	c = wantNewerSnapshotTaken(t, r)
	if n := c.count(emf.SnapshotRefreshFailures); n != 0 {
		t.Errorf("systema.snapshot_refresh_failures.total = %v after a good refresh", n)
	}
}

// wantNewerSnapshotTaken uploads a snapshot exported a day after the data
// set's and asserts that the next lookup, after a refresh interval, is
// served from it and logs its load; it returns that lookup.
func wantNewerSnapshotTaken(t *testing.T, r *rig) *call {
	t.Helper()
	exported := data.truth.ExportedAt.Add(24 * time.Hour)
	next := r.putSnapshot(newSnapshot(t, exported, data.a))
	time.Sleep(refreshWait)
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	b := wantBothSystems(t, c)
	if b.Freshness.SystemA == nil || !b.Freshness.SystemA.Equal(exported) {
		t.Errorf("freshness.systemA %v, want the new snapshot's %v", b.Freshness.SystemA, exported)
	}
	c.wantLog("INFO", "systema: snapshot loaded", next)
	return c
}

// s3Proxy stands in front of the S3 server and misbehaves on the snapshot
// object: it answers 503 SlowDown (throttling) to the first throttle
// requests, or to every one while always is set.
type s3Proxy struct {
	mu        sync.Mutex
	throttle  int  // snapshot requests still to throttle
	always    bool // throttle every snapshot request
	requests  map[string]int
	throttled int
	hold      chan struct{} // non-nil: snapshot GETs wait until it is closed
	held      int           // snapshot GETs that waited
	scan      scanThrottle  // throttling of the GETs after the first (a range-mode scan's)
	gets      int           // snapshot GETs seen
}

// scanThrottle says which snapshot GETs after the first (the range-mode
// open's head) the proxy throttles.
type scanThrottle int

const (
	scanServed    scanThrottle = iota // none
	scanIntervals                     // two of every five: the SDK's third attempt always passes
	scanSustained                     // every one
)

// front returns the rig option that puts the proxy in front of S3.
func (p *s3Proxy) front(t *testing.T) rigOption {
	return withS3Front(func(s3URL string) string {
		u, err := url.Parse(s3URL)
		if err != nil {
			t.Fatal(err)
		}
		rp := httputil.NewSingleHostReverseProxy(u)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/"+snapshotBucket+"/"+snapshotKey && p.hit(r.Method) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusServiceUnavailable)
				if r.Method != http.MethodHead {
					w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>faults</RequestId></Error>`)) //nolint:errcheck // test server
				}
				return
			}
			if r.URL.Path == "/"+snapshotBucket+"/"+snapshotKey && r.Method == http.MethodGet {
				if gate := p.holdGate(); gate != nil {
					select { // a slow download: nothing is sent until the gate opens
					case <-gate:
					case <-r.Context().Done():
						return
					}
				}
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	})
}

// hit counts a snapshot request and says whether to throttle it.
func (p *s3Proxy) hit(method string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.requests == nil {
		p.requests = map[string]int{}
	}
	p.requests[method]++
	if method == http.MethodGet {
		p.gets++
		if p.gets > 1 && (p.scan == scanSustained || (p.scan == scanIntervals && (p.gets-2)%5 < 2)) {
			p.throttled++
			return true
		}
	}
	if p.always || p.throttle > 0 {
		p.throttle--
		p.throttled++
		return true
	}
	return false
}

// counts returns the snapshot requests by method and the throttled ones,
// and zeroes them.
func (p *s3Proxy) counts() (map[string]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, n := p.requests, p.throttled
	p.requests, p.throttled = nil, 0
	return r, n
}

// holdGets makes snapshot GETs wait until releaseGets.
func (p *s3Proxy) holdGets() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = make(chan struct{})
}

// releaseGets lets the held GETs and the later ones through and returns how
// many were held.
func (p *s3Proxy) releaseGets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hold != nil {
		close(p.hold)
		p.hold = nil
	}
	return p.held
}

// holdGate returns the gate a snapshot GET waits on (nil: none), counting it.
func (p *s3Proxy) holdGate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hold != nil {
		p.held++
	}
	return p.hold
}

func (p *s3Proxy) set(throttle int, always bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.throttle, p.always = throttle, always
}

// sdkMaxAttempts is the AWS SDK's default attempts per request.
const sdkMaxAttempts = 3

// Row 10: S3 throttling (503 SlowDown) on the snapshot fetch is retried by
// the SDK (the snapshot is then served); sustained, System A is
// unavailable and the lookup answers partially in time; during a warm
// refresh, the last good snapshot keeps serving.
func TestRow10S3SlowDown(t *testing.T) {
	t.Parallel()
	t.Run("retried by the SDK", func(t *testing.T) {
		t.Parallel()
		p := &s3Proxy{throttle: sdkMaxAttempts - 1}
		r := newRig(t, p.front(t))
		c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		wantBothSystems(t, c)
		c.wantLog("INFO", "systema: snapshot loaded", r.versions[0])
		req, throttled := p.counts()
		// Range mode (the template's default for s3://): the GETs are the
		// open's and the lookup's page reads, a few.
		if throttled != sdkMaxAttempts-1 || req[http.MethodHead] != sdkMaxAttempts || req[http.MethodGet] < 1 || req[http.MethodGet] > 5 {
			t.Errorf("snapshot requests %v, %d throttled; want %d HEADs (%d throttled) then 1 to 5 range GETs", req, throttled, sdkMaxAttempts, sdkMaxAttempts-1)
		}
	})
	t.Run("sustained: partial", func(t *testing.T) {
		t.Parallel()
		p := &s3Proxy{always: true}
		r := newRig(t, p.front(t))
		c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		wantFromBOnly(t, c)
		c.answeredBefore(lookupTimeout(t))
		c.wantLog("ERROR", "systema: snapshot unavailable", "exceeded maximum number of attempts, 3", "StatusCode: 503")
		if req, throttled := p.counts(); req[http.MethodHead] != sdkMaxAttempts || req[http.MethodGet] != 0 || throttled != sdkMaxAttempts {
			t.Errorf("snapshot requests %v (%d throttled), want %d throttled HEADs", req, throttled, sdkMaxAttempts)
		}
	})
	t.Run("during a refresh: the last good one serves", func(t *testing.T) {
		t.Parallel()
		p := &s3Proxy{}
		r := newRig(t, p.front(t), withEnv("SNAPSHOT_REFRESH_SECONDS", "1"))
		wantBothSystems(t, r.invoke(lookupFn, lookupEvent(t, conflictEmail)))
		p.set(0, true)
		p.counts()
		time.Sleep(refreshWait)
		c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		wantBothSystems(t, c)
		if n := c.count(emf.SnapshotRefreshFailures); n != 1 {
			t.Errorf("systema.snapshot_refresh_failures.total = %v, want 1", n)
		}
		c.wantLog("WARN", "snapshot refresh failed; serving the last good snapshot", "StatusCode: 503", r.versions[0])
		if req, _ := p.counts(); req[http.MethodHead] != sdkMaxAttempts {
			t.Errorf("snapshot requests %v, want %d HEADs", req, sdkMaxAttempts)
		}
	})
}

// Range mode, S3 throttling (503 SlowDown) during a reconciliation's scan
// of the snapshot, which reads it in place by ranged GETs: throttled GETs
// are retried by the SDK and the run completes with every customer;
// throttling that outlasts the SDK's attempts fails the run cleanly (a
// function error for Lambda to retry, the cause in the log, no night's
// summary), never a run on a partial snapshot.
func TestRowRangeS3SlowDownDuringScan(t *testing.T) {
	t.Parallel()
	t.Run("retried by the SDK: complete", func(t *testing.T) {
		t.Parallel()
		p := &s3Proxy{scan: scanIntervals}
		r := newRig(t, p.front(t), withEnv("SNAPSHOT_MODE", "range"))
		c := r.invoke(reconcileFn, scheduledEvent(t, "faults-range-throttled", scheduledAt))
		s := summaryOf(t, c)
		if !s.Complete || s.Counts != truthCounts() || s.Snapshot.VersionID != r.versions[0] {
			t.Errorf("run: complete %v counts %+v snapshot %q; want complete, %+v, %q", s.Complete, s.Counts, s.Snapshot.VersionID, truthCounts(), r.versions[0])
		}
		if req, throttled := p.counts(); throttled == 0 || req[http.MethodGet] < 3 {
			t.Errorf("snapshot requests %v, %d throttled; want range GETs, some throttled", req, throttled)
		}
	})
	t.Run("sustained: the run fails cleanly", func(t *testing.T) {
		t.Parallel()
		p := &s3Proxy{scan: scanSustained}
		r := newRig(t, p.front(t), withEnv("SNAPSHOT_MODE", "range"))
		c := r.invoke(reconcileFn, scheduledEvent(t, "faults-range-sustained", scheduledAt))
		if c.res.FunctionError == "" {
			t.Fatalf("the run did not fail: %s", c.res.Payload)
		}
		if !strings.Contains(strings.Join(c.lines, "\n"), "StatusCode: 503") {
			t.Errorf("no log line names the throttling (StatusCode: 503):\n%s", strings.Join(c.lines, "\n"))
		}
		if got := r.objectVersions(reportBucket, reportDir("faults-range-sustained")); got["summary.json"] != 0 {
			t.Errorf("the failed run wrote the night's summary.json: %v", got)
		}
		c.wantLog("INFO", "systema: snapshot loaded", r.versions[0]) // the open passed: the scan met the throttling
		if _, throttled := p.counts(); throttled < sdkMaxAttempts {
			t.Errorf("%d GETs throttled, want at least the SDK's %d attempts", throttled, sdkMaxAttempts)
		}
	})
}

// Range mode, S3 hangs during a lookup that needs a page not yet read: the
// lookup gives System A its budget (app.SystemABudget), then answers
// partially from System B well inside the function's Timeout; the next
// lookup, S3 back, reads System A again.
func TestRowRangeS3HangsDuringLookup(t *testing.T) {
	t.Parallel()
	p := &s3Proxy{}
	r := newRig(t, p.front(t), withEnv("SNAPSHOT_MODE", "range"))
	wantBothSystems(t, r.invoke(lookupFn, lookupEvent(t, inSyncEmail)))
	p.counts()
	p.holdGets()
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	held := p.releaseGets()
	if held == 0 {
		t.Fatal("the lookup read no page from S3: pick a customer on another page")
	}
	wantFromBOnly(t, c)
	c.answeredBefore(lookupTimeout(t))
	if d := c.reportedDuration(); d < app.SystemABudget {
		t.Errorf("REPORT Duration %v: the lookup gave up on System A before its %v budget", d, app.SystemABudget)
	}
	wantBothSystems(t, r.invoke(lookupFn, lookupEvent(t, conflictEmail)))
}

// TestRowSystemABadRow: a snapshot with a malformed row is served: a good
// customer's lookup is a full 200; the malformed row is reported as a bad
// record (position and column, never the value) and is nobody else's
// problem. What the lookup of that customer answers is the lookup handler's
// mapping of merge.ErrBadData, and that reconciliation counts the row is
// the reconciler's: neither is asserted here (see the rows of those parts);
// System A's side, that the scan yields the row as a *merge.BadRecordError
// and goes on, is shared/systema's TestBadRowsAreDataAndTheScanGoesOn.
func TestRowSystemABadRow(t *testing.T) {
	t.Parallel()
	bad := data.a[len(data.a)/2]
	if bad.Key() == merge.Key(conflictEmail) {
		bad = data.a[len(data.a)/2+1]
	}
	quoted := strings.ReplaceAll(bad.Email(), "'", "''")
	r := newRig(t, withSnapshot(alteredSnapshot(t,
		"UPDATE customers SET last_updated = 'the day before yesterday' WHERE email = '"+quoted+"'")))

	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	b := wantBothSystems(t, c)
	if b.Freshness.SystemA == nil || !b.Freshness.SystemA.Equal(data.truth.ExportedAt) {
		t.Errorf("freshness.systemA %v, want the snapshot's %v", b.Freshness.SystemA, data.truth.ExportedAt)
	}
	c.wantLog("INFO", "systema: snapshot loaded", r.versions[0])

	c = r.invoke(lookupFn, lookupEvent(t, bad.Email()))
	c.ok()
	said := false
	for _, l := range c.lines {
		if strings.Contains(l, "bad record at row ") && strings.Contains(l, "last_updated is not RFC 3339") {
			said = true
		}
		if strings.Contains(l, "the day before yesterday") {
			t.Errorf("a log line quotes the malformed value: %s", l)
		}
	}
	if !said {
		t.Errorf("no log line names the bad record's position and column:\n%s", strings.Join(c.lines, "\n"))
	}

	wantBadRecordCounted(t, r, "faults-bad-row", merge.SystemA)
}

// TestRowSystemAOlderSnapshotAfterNewer: a snapshot exported before the one
// served is uploaded after it: the newer one keeps serving, the refusal is
// counted and logged (both versions, no personal data), and a later newer
// snapshot is taken.
func TestRowSystemAOlderSnapshotAfterNewer(t *testing.T) {
	t.Parallel()
	r := newRig(t, withEnv("SNAPSHOT_REFRESH_SECONDS", "1"))
	good := r.versions[0]
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	first := wantBothSystems(t, c)

	older := r.putSnapshot(newSnapshot(t, data.truth.ExportedAt.Add(-24*time.Hour), data.a))
	time.Sleep(refreshWait)
	c = r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	b := wantBothSystems(t, c)
	if b.Freshness.SystemA == nil || !b.Freshness.SystemA.Equal(*first.Freshness.SystemA) {
		t.Errorf("freshness.systemA %v, want the newer snapshot's %v", b.Freshness.SystemA, first.Freshness.SystemA)
	}
	if n := c.count(emf.SnapshotRejectedOlder); n != 1 {
		t.Errorf("%s = %v, want 1", emf.SnapshotRejectedOlder, n)
	}
	if n := c.count(emf.SnapshotRefreshFailures); n != 0 {
		t.Errorf("%s = %v, want 0 (a refusal is not a failure)", emf.SnapshotRefreshFailures, n)
	}
	c.wantLog("WARN", "refused a snapshot exported before the one served", older, good)

	wantNewerSnapshotTaken(t, r)
}

// TestRowSystemASlowRefresh: a refresh whose download hangs does not spend
// the request's deadline: the lookup with 3 s left answers from the current
// snapshot in time (it waits for the refresh until SNAPSHOT_REFRESH_RESERVE_MS
// before its deadline); once the download completes, the refresh, which went
// on meanwhile, is served to the next requests.
func TestRowSystemASlowRefresh(t *testing.T) {
	t.Parallel()
	const timeout = 3 * time.Second
	p := &s3Proxy{}
	r := newRig(t, p.front(t), withEnv("SNAPSHOT_REFRESH_SECONDS", "1"), withTimeout(lookupFn, timeout))
	c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	first := wantBothSystems(t, c)

	p.holdGets()
	exported := data.truth.ExportedAt.Add(24 * time.Hour)
	next := r.putSnapshot(newSnapshot(t, exported, data.a))
	time.Sleep(refreshWait)
	c = r.invoke(lookupFn, lookupEvent(t, conflictEmail))
	c.answeredBefore(timeout)
	b := wantBothSystems(t, c)
	if b.Freshness.SystemA == nil || !b.Freshness.SystemA.Equal(*first.Freshness.SystemA) {
		t.Errorf("freshness.systemA %v, want the current snapshot's %v", b.Freshness.SystemA, first.Freshness.SystemA)
	}
	c.wantLog("WARN", "snapshot refresh still running; serving the current snapshot", r.versions[0])
	if held := p.releaseGets(); held != 1 {
		t.Fatalf("%d snapshot GETs held, want the refresh's one", held)
	}

	// The refresh completes in the background; the requests after it are
	// served the new snapshot, one of them reporting the load.
	loaded := false
	waitFor(t, "the new snapshot served", func() bool {
		c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		b := wantBothSystems(t, c)
		if hasLog(c, "INFO", "systema: snapshot loaded", next) {
			loaded = true
		}
		return b.Freshness.SystemA != nil && b.Freshness.SystemA.Equal(exported)
	})
	if !loaded {
		c := r.invoke(lookupFn, lookupEvent(t, conflictEmail))
		loaded = hasLog(c, "INFO", "systema: snapshot loaded", next)
	}
	if !loaded {
		t.Errorf("no request reported the load of %s", next)
	}
}

// hasLog reports whether c logged a record at level whose message contains
// msg and whose JSON contains attr (findLog without failing the test).
func hasLog(c *call, level, msg, attr string) bool {
	for _, l := range c.logged(level, msg) {
		if raw, _ := json.Marshal(l); strings.Contains(string(raw), attr) {
			return true
		}
	}
	return false
}
