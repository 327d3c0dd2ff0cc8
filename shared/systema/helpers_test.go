package systema

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"modernc.org/sqlite"

	"github.com/acme/unified-customer-service/shared/merge"
)

const (
	testBucket = "snapshots"
	testKey    = "systema/customers.db"
)

var snapExportedAt = time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)

// rec builds a record; values are given in field order after the email.
func mkRec(email string, updated time.Time, values ...string) *merge.Record {
	r := &merge.Record{LastUpdated: updated}
	r.Values[merge.FieldEmail] = email
	for i, v := range values {
		r.Values[i+1] = v
	}
	return r
}

// sampleRecords is a small snapshot with mixed-case, '+' and non-ASCII
// emails (some with non-ASCII upper case, which NOCASE does not fold).
func sampleRecords() []*merge.Record {
	t := time.Date(2025, 2, 1, 10, 0, 0, 0, time.UTC)
	return []*merge.Record{
		mkRec("alice@example.com", t, "Alice", "Liddell", "+44 20 7946 0000", "1 High St", "London", "SW1A 1AA", "GB", "true", "gold"),
		mkRec("Bob.Builder@Example.COM", t.Add(time.Hour), "Bob", "Builder", "", "", "", "", "", "false", ""),
		mkRec("anna+news@example.com", t, "Anna", "", "", "", "", "", "", "", "silver"),
		mkRec("Émile@exemple.fr", t, "Émile", "Zola", "", "", "Paris", "75001", "FR", "true", ""),
		mkRec("zoë@example.nl", t, "Zoë", "", "", "", "", "", "NL", "", ""),
		mkRec("ÅSA@exempel.se", t, "Åsa", "", "", "", "", "", "SE", "false", ""),
		mkRec("Ärger@beispiel.de", t, "", "", "", "", "", "", "DE", "", ""),
		mkRec("zed@example.com", t, "Zed", "", "", "", "", "", "", "", "bronze"),
		mkRec("jörg@beispiel.de", t, "Jörg", "", "", "", "", "", "DE", "", ""),
		mkRec("ÉCOLE@exemple.fr", t, "", "", "", "", "", "", "FR", "", ""),
		mkRec("Ωmega@example.gr", t, "", "", "", "", "", "", "GR", "", ""),
	}
}

// snapOpts tweaks a written snapshot file after WriteSnapshot.
type snapOpts struct {
	rowid      bool
	sql        []string  // statements run on the written file
	exportedAt time.Time // default snapExportedAt
}

// layouts are the two customers table layouts readers accept.
var layouts = []struct {
	name  string
	rowid bool
}{{"without rowid", false}, {"rowid table", true}}

// writeSnap writes recs as a snapshot file in dir and returns its path.
func writeSnap(t testing.TB, dir string, recs []*merge.Record, o snapOpts) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "src-*.db")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	path := f.Name()
	exportedAt := o.exportedAt
	if exportedAt.IsZero() {
		exportedAt = snapExportedAt
	}
	err = WriteSnapshotWithOptions(context.Background(), path, exportedAt, slices.Values(recs), WriteSnapshotOptions{Rowid: o.rowid})
	if err != nil {
		t.Fatalf("write snapshot: %v", err)
	}
	if len(o.sql) > 0 {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range o.sql {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	return path
}

// fakeS3 is an in-process S3 (gofakes3 over real HTTP on 127.0.0.1) with a
// client from aws-sdk-go-v2, request counters and injectable throttling.
type fakeS3 struct {
	srv    *httptest.Server
	client *s3.Client

	heads, gets atomic.Int64
	throttleGet atomic.Int64 // answer this many GETs with 503 SlowDown
	bytes       atomic.Int64 // body bytes of GET answers
	mu          sync.Mutex
	ifMatch     []string // If-Match headers of GETs
	versionIDs  []string // versionId query of GETs
	ranges      []string // Range headers of GETs ("" for none)
	// intercept, if set, sees each GET of the object first and answers it
	// itself when it returns true.
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

func newFakeS3(t testing.TB, versioned bool) *fakeS3 {
	t.Helper()
	faker := gofakes3.New(s3mem.New())
	f := &fakeS3{}
	inner := faker.Server()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/"+testKey) {
			switch r.Method {
			case http.MethodHead:
				f.heads.Add(1)
			case http.MethodGet:
				f.gets.Add(1)
				f.mu.Lock()
				f.ifMatch = append(f.ifMatch, r.Header.Get("If-Match"))
				f.versionIDs = append(f.versionIDs, r.URL.Query().Get("versionId"))
				f.ranges = append(f.ranges, r.Header.Get("Range"))
				intercept := f.intercept
				f.mu.Unlock()
				if intercept != nil && intercept(w, r) {
					return
				}
				w = countingWriter{w, &f.bytes}
				if f.throttleGet.Add(-1) >= 0 {
					w.Header().Set("Content-Type", "application/xml")
					w.WriteHeader(http.StatusServiceUnavailable)
					fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>1</RequestId></Error>`)
					return
				}
			}
		}
		if !versioned {
			// gofakes3 reports a version id even for a bucket without
			// versioning; real S3 does not.
			inner.ServeHTTP(noVersionHeader{w}, r)
			w.Header().Del("x-amz-version-id") // when nothing was written
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	f.client = s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.srv.URL),
		UsePathStyle: true,
		// gofakes3 sends no checksums; the SDK would print a line per GET.
		DisableLogOutputChecksumValidationSkipped: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", ""),
		// The SDK's standard retryer with a tiny backoff, so throttling
		// tests retry for real without sleeping.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.NewExponentialJitterBackoff(time.Millisecond)
		}),
	})
	ctx := context.Background()
	if _, err := f.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(testBucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if versioned {
		_, err := f.client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(testBucket),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		})
		if err != nil {
			t.Fatalf("enable versioning: %v", err)
		}
	}
	return f
}

// put uploads the file at path as the snapshot object and returns its
// version id ("" when not versioned).
func (f *fakeS3) put(t testing.TB, path string) string {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f.putBytes(t, body)
}

func (f *fakeS3) putBytes(t testing.TB, body []byte) string {
	t.Helper()
	out, err := f.client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(testBucket), Key: aws.String(testKey), Body: bytes.NewReader(body),
	})
	if err != nil {
		t.Fatalf("put object: %v", err)
	}
	return aws.ToString(out.VersionId)
}

// getHeaders returns the If-Match headers and versionId queries of GETs.
func (f *fakeS3) getHeaders() (ifMatch, versionIDs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ifMatch), slices.Clone(f.versionIDs)
}

func (f *fakeS3) source() Source { return NewS3Source(f.client, testBucket, testKey) }

// getRanges returns the Range headers of GETs so far.
func (f *fakeS3) getRanges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ranges)
}

// setIntercept sets (nil: clears) the GET interceptor.
func (f *fakeS3) setIntercept(fn func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.intercept = fn
	f.mu.Unlock()
}

// countingWriter counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// noVersionHeader drops x-amz-version-id from a response.
type noVersionHeader struct{ http.ResponseWriter }

func (w noVersionHeader) WriteHeader(code int) {
	w.Header().Del("x-amz-version-id")
	w.ResponseWriter.WriteHeader(code)
}

func (w noVersionHeader) Write(p []byte) (int, error) {
	w.Header().Del("x-amz-version-id")
	return w.ResponseWriter.Write(p)
}

// fakeClock is an injectable clock with timers: After's channels fire when
// Advance reaches them.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	timers []fakeTimer
	armed  chan time.Duration // receives every After's duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC), armed: make(chan time.Duration, 64)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// After returns a channel that receives the time once Advance has moved the
// clock d on, and tells armed.
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, fakeTimer{at: c.t.Add(d), ch: ch})
	select {
	case c.armed <- d:
	default: // nobody watches this many
	}
	c.fireLocked()
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.fireLocked()
}

func (c *fakeClock) fireLocked() {
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.t) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- c.t
	}
	c.timers = kept
}

// deadlineCtx is a context whose deadline is on a fakeClock: it reports the
// deadline but is never done by itself (the Store's wait is bounded by its
// own timer, from Config.After).
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// withDeadlineIn returns a context whose deadline is d after the clock's now.
func (c *fakeClock) withDeadlineIn(d time.Duration) context.Context {
	return deadlineCtx{Context: context.Background(), deadline: c.Now().Add(d)}
}

// gatedSource passes through to a Source, except that while closed its
// Fetch blocks until Open (or its ctx ends): a slow download.
type gatedSource struct {
	Source
	mu       sync.Mutex
	gate     chan struct{} // nil: open
	fetching chan struct{} // receives one value per Fetch that blocks
}

func newGatedSource(src Source) *gatedSource {
	return &gatedSource{Source: src, fetching: make(chan struct{}, 16)}
}

// Close makes the next Fetches block.
func (g *gatedSource) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
	}
}

// Open lets blocked and later Fetches through.
func (g *gatedSource) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedSource) Fetch(ctx context.Context, v Version, dst *os.File) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.fetching <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return fmt.Errorf("gated fetch: %w", ctx.Err())
		}
	}
	return g.Source.Fetch(ctx, v, dst)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a Store under test with its clock, logs and refresh reports.
type harness struct {
	store *Store
	clock *fakeClock
	logs  *syncBuffer
	dir   string

	mu      sync.Mutex
	reports []RefreshResult
}

func newHarness(t testing.TB, src Source) *harness {
	t.Helper()
	h := &harness{clock: newClock(), logs: &syncBuffer{}, dir: t.TempDir()}
	st, err := New(Config{
		Source:       src,
		Dir:          h.dir,
		RefreshEvery: time.Minute,
		Now:          h.clock.Now,
		After:        h.clock.After,
		Logger:       slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnRefresh: func(r RefreshResult) {
			h.mu.Lock()
			h.reports = append(h.reports, r)
			h.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	t.Cleanup(func() {
		st.Close()
		if logs := h.logs.String(); strings.Contains(logs, "@") {
			t.Errorf("logs contain an email address:\n%s", logs)
		}
	})
	return h
}

func (h *harness) lastReport(t testing.TB) RefreshResult {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reports) == 0 {
		t.Fatal("no refresh reported")
	}
	return h.reports[len(h.reports)-1]
}

// refreshEnded waits until the Store's refresh in progress, if any, has
// ended (its report waits for the next Acquire).
func (h *harness) refreshEnded(t testing.TB) {
	t.Helper()
	h.store.mu.Lock()
	r := h.store.refresh
	h.store.mu.Unlock()
	if r == nil {
		t.Fatal("no refresh in progress")
	}
	<-r.done
}

// files lists the snapshot files in the Store's directory.
func (h *harness) files(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(h.dir, "systema-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// acquire acquires or fails the test.
func (h *harness) acquire(t testing.TB) *Snapshot {
	t.Helper()
	snap, err := h.store.Acquire(context.Background())
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return snap
}

// collect drains All.
func collect(t testing.TB, snap *Snapshot) []*merge.Record {
	t.Helper()
	var out []*merge.Record
	for r, err := range snap.All(context.Background()) {
		if err != nil {
			t.Fatalf("iterate: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// emails returns the emails of recs.
func emails(recs []*merge.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Email()
	}
	return out
}

// sqlOpenMemory opens an in-memory database on drv.
func sqlOpenMemory(drv driverOpener) *sql.DB {
	return sql.OpenDB(connector{drv: drv, dsn: ":memory:"})
}

// driverOpener is what connector needs of a driver.
type driverOpener = *sqlite.Driver

// genRecords returns n deterministic records whose emails mix ASCII case,
// '+' tags and non-ASCII letters in either case (no two share a key).
func genRecords(n int) []*merge.Record {
	prefixes := []string{"user", "Émile", "émile", "ÅSA", "zoë", "Zoë", "ÖZIL", "Ärger", "ärger", "anna+tag", "ANNA", "Ωmega", "jörg", "JÖRG.x"}
	domains := []string{"example.com", "Example.COM", "exemple.fr", "beispiel.de"}
	t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]*merge.Record, n)
	for i := range out {
		email := fmt.Sprintf("%s%06d@%s", prefixes[i%len(prefixes)], i, domains[i%len(domains)])
		out[i] = mkRec(email, t.Add(time.Duration(i)*time.Second), fmt.Sprintf("First%d", i), "Last", "+1 555 0100", "1 Main St", "Springfield", "12345", "US", []string{"true", "false", ""}[i%3], "gold")
	}
	return out
}
