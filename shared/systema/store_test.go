package systema

import (
	"context"
	"errors"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// sources returns, per kind, a Source plus a function that publishes a new
// version of the snapshot (a file to upload, or raw bytes).
type publisher struct {
	name    string
	src     Source
	publish func(t *testing.T, body []byte)
	fake    *fakeS3 // nil for file://
}

func publishers(t *testing.T) []publisher {
	t.Helper()
	versioned := newFakeS3(t, true)
	plain := newFakeS3(t, false)
	dir := t.TempDir()
	path := filepath.Join(dir, "customers.db")
	mtime := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	return []publisher{
		{name: "s3 versioned", src: versioned.source(), fake: versioned,
			publish: func(t *testing.T, b []byte) { versioned.putBytes(t, b) }},
		{name: "s3 unversioned", src: plain.source(), fake: plain,
			publish: func(t *testing.T, b []byte) { plain.putBytes(t, b) }},
		{name: "file", src: NewFileSource(path),
			publish: func(t *testing.T, b []byte) {
				t.Helper()
				// Replace atomically, as a batch would, with a new mtime
				// (the file version is size+mtime).
				tmp := path + ".new"
				if err := os.WriteFile(tmp, b, 0o644); err != nil {
					t.Fatal(err)
				}
				mtime = mtime.Add(time.Second)
				if err := os.Chtimes(tmp, mtime, mtime); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
			}},
	}
}

// snapBytes writes recs as a snapshot and returns the file's bytes.
func snapBytes(t *testing.T, recs []*merge.Record, o snapOpts) []byte {
	t.Helper()
	b, err := os.ReadFile(writeSnap(t, t.TempDir(), recs, o))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstName looks email up in snap and returns its first name.
func firstName(t *testing.T, snap *Snapshot, email string) string {
	t.Helper()
	r, err := snap.Lookup(context.Background(), email)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	return r.Get(merge.FieldFirstName)
}

// versionOf returns the records with alice's first name set to name.
func versionOf(name string) []*merge.Record {
	recs := sampleRecords()
	recs[0].Values[merge.FieldFirstName] = name
	return recs
}

func TestStoreServesSnapshot(t *testing.T) {
	for _, p := range publishers(t) {
		t.Run(p.name, func(t *testing.T) {
			recs := sampleRecords()
			p.publish(t, snapBytes(t, recs, snapOpts{}))
			h := newHarness(t, p.src)
			snap := h.acquire(t)
			defer snap.Release()
			if got := firstName(t, snap, "ÉMILE@exemple.fr"); got != "Émile" {
				t.Fatalf("first name = %q", got)
			}
			if got, want := sortedKeysInOrder(collect(t, snap)), sortedKeys(recs); !slices.Equal(got, want) {
				t.Fatalf("keys = %q, want %q", got, want)
			}
			v := snap.Version()
			if !strings.HasPrefix(v.URI, map[bool]string{true: "s3://" + testBucket + "/", false: "file:///"}[p.fake != nil]) ||
				v.ETag == "" || !v.ExportedAt.Equal(snapExportedAt) || v.Size <= 0 {
				t.Fatalf("version = %+v", v)
			}
			if p.fake != nil && strings.Contains(p.name, "unversioned") {
				if v.VersionID != "" {
					t.Errorf("VersionID = %q on an unversioned bucket", v.VersionID)
				}
				if got, _ := p.fake.getHeaders(); len(got) != 1 || got[0] != v.ETag {
					t.Errorf("GET If-Match headers = %q, want [%q]", got, v.ETag)
				}
			}
			if p.fake != nil && p.name == "s3 versioned" {
				if v.VersionID == "" {
					t.Error("no VersionID on a versioned bucket")
				}
				if _, got := p.fake.getHeaders(); len(got) != 1 || got[0] != v.VersionID {
					t.Errorf("GET versionId = %q, want [%q]", got, v.VersionID)
				}
			}
			if r := h.lastReport(t); !r.Loaded || r.Err != nil {
				t.Errorf("report = %+v", r)
			}
		})
	}
}

func TestStoreRefreshesAfterInterval(t *testing.T) {
	for _, p := range publishers(t) {
		t.Run(p.name, func(t *testing.T) {
			p.publish(t, snapBytes(t, versionOf("v1"), snapOpts{}))
			h := newHarness(t, p.src)
			s1 := h.acquire(t)
			v1 := s1.Version()
			s1.Release()

			p.publish(t, snapBytes(t, versionOf("v2"), snapOpts{}))
			var heads int64
			if p.fake != nil {
				heads = p.fake.heads.Load()
			}
			h.clock.Advance(59 * time.Second)
			s2 := h.acquire(t)
			if got := firstName(t, s2, "alice@example.com"); got != "v1" {
				t.Fatalf("before RefreshEvery: read %q, want v1", got)
			}
			if p.fake != nil && p.fake.heads.Load() != heads {
				t.Fatalf("the source was checked before RefreshEvery")
			}
			s2.Release()

			h.clock.Advance(time.Second)
			s3 := h.acquire(t)
			defer s3.Release()
			if got := firstName(t, s3, "alice@example.com"); got != "v2" {
				t.Fatalf("after RefreshEvery: read %q, want v2", got)
			}
			if s3.Version().Same(v1) {
				t.Fatalf("version did not change: %+v", s3.Version())
			}
			if r := h.lastReport(t); !r.Loaded || r.Err != nil || !r.Version.Same(s3.Version()) {
				t.Fatalf("report = %+v", r)
			}
			if got := h.files(t); len(got) != 1 {
				t.Fatalf("snapshot files = %q, want only the current one", got)
			}

			// Unchanged object: a check, no download.
			h.clock.Advance(time.Minute)
			s4 := h.acquire(t)
			s4.Release()
			if r := h.lastReport(t); r.Loaded || r.Err != nil {
				t.Fatalf("unchanged check reported %+v", r)
			}
		})
	}
}

func TestStorePinsVersion(t *testing.T) {
	for _, p := range publishers(t) {
		t.Run(p.name, func(t *testing.T) {
			p.publish(t, snapBytes(t, versionOf("old"), snapOpts{}))
			h := newHarness(t, p.src)
			held := h.acquire(t)
			oldFile := held.s.path

			// A reconciliation run is iterating the old version...
			next, stop := iterPull(held)
			defer stop()
			first, err := next()
			if err != nil {
				t.Fatal(err)
			}

			// ...when the nightly batch replaces the object.
			p.publish(t, snapBytes(t, append(versionOf("new"), mkRec("added@example.com", snapExportedAt)), snapOpts{}))
			h.clock.Advance(time.Minute)
			fresh := h.acquire(t)
			defer fresh.Release()
			if got := firstName(t, fresh, "alice@example.com"); got != "new" {
				t.Fatalf("new Acquire read %q, want new", got)
			}
			if got := firstName(t, held, "alice@example.com"); got != "old" {
				t.Fatalf("held snapshot read %q, want old", got)
			}
			if _, err := held.Lookup(context.Background(), "added@example.com"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("held snapshot sees a row of the new version: %v", err)
			}
			n := 1
			for {
				r, err := next()
				if err != nil {
					t.Fatal(err)
				}
				if r == nil {
					break
				}
				n++
			}
			if want := len(sampleRecords()); n != want || first == nil {
				t.Fatalf("the run read %d records of the old version, want %d", n, want)
			}
			if _, err := os.Stat(oldFile); err != nil {
				t.Fatalf("old file gone while held: %v", err)
			}
			stop()
			held.Release()
			if _, err := os.Stat(oldFile); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("old file not removed after the last release: %v", err)
			}
			if got := firstName(t, fresh, "alice@example.com"); got != "new" {
				t.Fatalf("after releasing the old one, fresh reads %q", got)
			}
		})
	}
}

// iterPull returns a pull cursor over snap.All: (nil, nil) at the end.
func iterPull(snap *Snapshot) (func() (*merge.Record, error), func()) {
	next, stop := iter.Pull2(snap.All(context.Background()))
	return func() (*merge.Record, error) {
		r, err, ok := next()
		if !ok {
			return nil, nil
		}
		return r, err
	}, stop
}

func TestStoreUnavailable(t *testing.T) {
	good := func(t *testing.T) []byte { return snapBytes(t, sampleRecords(), snapOpts{}) }
	withSQL := func(q ...string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return snapBytes(t, sampleRecords(), snapOpts{sql: q}) }
	}
	for _, tc := range []struct {
		name   string
		body   func(t *testing.T) []byte // nil: no object at all
		is     error
		reason string
	}{
		{"missing object", nil, ErrNoSnapshot, "not found"},
		{"empty file", func(*testing.T) []byte { return nil }, ErrInvalidSnapshot, "not an SQLite database"},
		{"not sqlite", func(*testing.T) []byte { return []byte(strings.Repeat("PK\x03\x04 zip, not a database ", 200)) }, ErrInvalidSnapshot, "not an SQLite database"},
		{"truncated", func(t *testing.T) []byte { b := good(t); return b[:len(b)/2] }, ErrInvalidSnapshot, "truncated"},
		{"truncated mid-page", func(t *testing.T) []byte { b := good(t); return b[:len(b)-100] }, ErrInvalidSnapshot, "truncated"},
		{"wrong schema_version", withSQL("UPDATE snapshot_meta SET value = '2' WHERE key = 'schema_version'"), ErrInvalidSnapshot, `schema_version is "2"`},
		{"no schema_version", withSQL("DELETE FROM snapshot_meta WHERE key = 'schema_version'"), ErrInvalidSnapshot, "no schema_version"},
		{"bad exported_at", withSQL("UPDATE snapshot_meta SET value = 'last night' WHERE key = 'exported_at'"), ErrInvalidSnapshot, "exported_at"},
		{"no meta table", withSQL("DROP TABLE snapshot_meta"), ErrInvalidSnapshot, "snapshot_meta"},
		{"wal mode", withSQL("PRAGMA journal_mode=WAL"), ErrInvalidSnapshot, "WAL"},
		{"missing column", withSQL("ALTER TABLE customers DROP COLUMN city"), ErrInvalidSnapshot, "lacks column(s) city"},
		{"no customers table", withSQL("DROP TABLE customers"), ErrInvalidSnapshot, "no customers table"},
		{"email not a nocase key", withSQL(
			"CREATE TABLE c2 AS SELECT * FROM customers", "DROP TABLE customers", "ALTER TABLE c2 RENAME TO customers"),
			ErrInvalidSnapshot, "not a unique COLLATE NOCASE key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range publishers(t) {
				t.Run(p.name, func(t *testing.T) {
					if tc.body != nil {
						p.publish(t, tc.body(t))
					}
					h := newHarness(t, p.src)
					for range 2 { // the second attempt gives the same answer
						snap, err := h.store.Acquire(context.Background())
						if snap != nil {
							t.Fatal("a snapshot was served")
						}
						if !errors.Is(err, ErrUnavailable) || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.reason) {
							t.Fatalf("error = %v; want ErrUnavailable, %v and %q", err, tc.is, tc.reason)
						}
					}
					if got := h.files(t); len(got) != 0 {
						t.Fatalf("files left behind: %q", got)
					}
					if r := h.lastReport(t); r.Err == nil || r.Kept {
						t.Fatalf("report = %+v", r)
					}
					if !strings.Contains(h.logs.String(), "snapshot unavailable") {
						t.Fatalf("nothing logged:\n%s", h.logs)
					}
				})
			}
		})
	}
}

func TestStoreKeepsLastGoodOnBadRefresh(t *testing.T) {
	for _, p := range publishers(t) {
		t.Run(p.name, func(t *testing.T) {
			p.publish(t, snapBytes(t, versionOf("good"), snapOpts{}))
			h := newHarness(t, p.src)
			s1 := h.acquire(t)
			goodVersion := s1.Version()
			s1.Release()

			b := snapBytes(t, versionOf("corrupt"), snapOpts{})
			p.publish(t, b[:len(b)-4096])
			h.clock.Advance(time.Minute)
			s2 := h.acquire(t)
			if got := firstName(t, s2, "alice@example.com"); got != "good" || !s2.Version().Same(goodVersion) {
				t.Fatalf("after a corrupt refresh: read %q from %+v", got, s2.Version())
			}
			s2.Release()
			r := h.lastReport(t)
			if !errors.Is(r.Err, ErrInvalidSnapshot) || !r.Kept || r.Loaded || !r.Serving.Same(goodVersion) {
				t.Fatalf("report = %+v", r)
			}
			if logs := h.logs.String(); !strings.Contains(logs, "serving the last good snapshot") || !strings.Contains(logs, "truncated") {
				t.Fatalf("logs do not say so:\n%s", logs)
			}

			// The same bad version is not downloaded again.
			var gets int64
			if p.fake != nil {
				gets = p.fake.gets.Load()
			}
			h.clock.Advance(time.Minute)
			h.acquire(t).Release()
			if r := h.lastReport(t); !errors.Is(r.Err, ErrInvalidSnapshot) || !r.Kept {
				t.Fatalf("second check report = %+v", r)
			}
			if p.fake != nil && p.fake.gets.Load() != gets {
				t.Fatalf("the known-bad version was downloaded again")
			}

			// A good version after it is picked up.
			p.publish(t, snapBytes(t, versionOf("fixed"), snapOpts{}))
			h.clock.Advance(time.Minute)
			s3 := h.acquire(t)
			defer s3.Release()
			if got := firstName(t, s3, "alice@example.com"); got != "fixed" {
				t.Fatalf("read %q, want fixed", got)
			}
			if got := h.files(t); len(got) != 1 {
				t.Fatalf("files = %q", got)
			}
		})
	}
}

func TestStoreMissingObjectAfterGood(t *testing.T) {
	dir := t.TempDir()
	path := writeSnap(t, dir, versionOf("good"), snapOpts{})
	h := newHarness(t, NewFileSource(path))
	h.acquire(t).Release()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	snap := h.acquire(t)
	defer snap.Release()
	if got := firstName(t, snap, "alice@example.com"); got != "good" {
		t.Fatalf("read %q", got)
	}
	if r := h.lastReport(t); !errors.Is(r.Err, ErrNoSnapshot) || !r.Kept {
		t.Fatalf("report = %+v", r)
	}
}

func TestS3SlowDownIsRetried(t *testing.T) {
	f := newFakeS3(t, true)
	f.put(t, writeSnap(t, t.TempDir(), sampleRecords(), snapOpts{}))

	t.Run("two throttles then success", func(t *testing.T) {
		f.gets.Store(0)
		f.throttleGet.Store(2)
		h := newHarness(t, f.source())
		snap := h.acquire(t)
		defer snap.Release()
		if got := firstName(t, snap, "alice@example.com"); got != "Alice" {
			t.Fatalf("read %q", got)
		}
		if got := f.gets.Load(); got != 3 {
			t.Fatalf("GET requests = %d, want 3 (2 throttled + 1)", got)
		}
	})
	t.Run("throttled beyond the retries", func(t *testing.T) {
		f.gets.Store(0)
		f.throttleGet.Store(100)
		defer f.throttleGet.Store(0)
		h := newHarness(t, f.source())
		_, err := h.store.Acquire(context.Background())
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "SlowDown") {
			t.Fatalf("error = %v, want ErrUnavailable naming SlowDown", err)
		}
		if got := f.gets.Load(); got < 2 || got > 10 {
			t.Fatalf("GET requests = %d, want a bounded number of SDK retries", got)
		}
	})
}

func TestStoreConcurrentAcquireDownloadsOnce(t *testing.T) {
	f := newFakeS3(t, true)
	f.put(t, writeSnap(t, t.TempDir(), sampleRecords(), snapOpts{}))
	h := newHarness(t, f.source())
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			snap, err := h.store.Acquire(context.Background())
			if err != nil {
				errs <- err
				return
			}
			defer snap.Release()
			if _, err := snap.Lookup(context.Background(), "zoë@example.nl"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := f.gets.Load(); got != 1 {
		t.Fatalf("GET requests = %d, want 1", got)
	}
}

func TestStoreClose(t *testing.T) {
	h := newHarness(t, NewFileSource(writeSnap(t, t.TempDir(), sampleRecords(), snapOpts{})))
	snap := h.acquire(t)
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Acquire(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close: %v", err)
	}
	if got := firstName(t, snap, "alice@example.com"); got != "Alice" {
		t.Fatalf("a held snapshot stops working at Close: %q", got)
	}
	if len(h.files(t)) != 1 {
		t.Fatal("file removed while held")
	}
	snap.Release()
	if got := h.files(t); len(got) != 0 {
		t.Fatalf("files after Close and Release: %q", got)
	}
}

func TestNewStoreConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("no Source accepted")
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"RefreshEvery", Config{RefreshEvery: -time.Second}},
		{"RefreshReserve", Config{RefreshReserve: -time.Second}},
		{"RefreshTimeout", Config{RefreshTimeout: -time.Second}},
	} {
		t.Run("negative "+tc.name, func(t *testing.T) {
			tc.cfg.Source = NewFileSource("/x.db")
			if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("err = %v, want one naming %s", err, tc.name)
			}
		})
	}
	st, err := New(Config{Source: NewFileSource("/x.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.cfg.RefreshEvery != DefaultRefreshEvery || st.cfg.RefreshReserve != DefaultRefreshReserve ||
		st.cfg.RefreshTimeout != DefaultRefreshTimeout || st.cfg.Dir != os.TempDir() || st.cfg.Now == nil || st.cfg.After == nil {
		t.Fatalf("defaults not filled: %+v", st.cfg)
	}
}

func TestStoreAcquireCancelled(t *testing.T) {
	dir := t.TempDir()
	path := writeSnap(t, dir, versionOf("v1"), snapOpts{})
	h := newHarness(t, NewFileSource(path))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.store.Acquire(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled first Acquire: %v", err)
	}
	h.acquire(t).Release()

	// A cancelled caller does not use up the due check.
	b := snapBytes(t, versionOf("v2"), snapOpts{})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	snap, err := h.store.Acquire(ctx)
	if err != nil {
		t.Fatalf("cancelled Acquire with a good snapshot: %v", err)
	}
	if snap.Version().ETag == "" || snap.s.version.ExportedAt.IsZero() {
		t.Fatalf("version = %+v", snap.Version())
	}
	snap.Release()
	snap = h.acquire(t)
	defer snap.Release()
	if got := firstName(t, snap, "alice@example.com"); got != "v2" {
		t.Fatalf("read %q, want v2", got)
	}
}

func TestStoreSweepsStaleFiles(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "systema-stale.db")
	held := filepath.Join(dir, "systema-held.db")
	other := filepath.Join(dir, "unrelated.db")
	for _, p := range []string{stale, held, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hf, err := os.Open(held) // a live Store elsewhere holds this one
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if err := lockShared(hf); err != nil {
		t.Skip("no flock here:", err)
	}
	st, err := New(Config{Source: NewFileSource(writeSnap(t, t.TempDir(), sampleRecords(), snapOpts{})), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	snap, err := st.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	for p, want := range map[string]bool{stale: false, held: true, other: true, snap.s.path: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
