package systema

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/acme/unified-customer-service/shared/merge"
)

// rangeFixture is a snapshot of n generated customers on a fake S3.
type rangeFixture struct {
	s3   *fakeS3
	path string
	body []byte
	recs []*merge.Record
}

func newRangeFixture(t *testing.T, versioned bool, n int) *rangeFixture {
	t.Helper()
	f := &rangeFixture{s3: newFakeS3(t, versioned), recs: genRecords(n)}
	f.path = writeSnap(t, t.TempDir(), f.recs, snapOpts{})
	var err error
	if f.body, err = os.ReadFile(f.path); err != nil {
		t.Fatal(err)
	}
	f.s3.putBytes(t, f.body)
	return f
}

func (f *rangeFixture) src() *S3Source { return NewS3Source(f.s3.client, testBucket, testKey) }

// remote opens the current version in place with a cache of cachePages.
func (f *rangeFixture) remote(t *testing.T, cachePages int64) *remote {
	t.Helper()
	ctx := context.Background()
	v, err := f.src().Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := newRemote(ctx, ctx, f.src(), v, cachePages*4096, DefaultRangeTimeout)
	if err != nil {
		t.Fatalf("open remote: %v", err)
	}
	return r
}

// rangeStore is a Store in range mode on f.
func (f *rangeFixture) store(t *testing.T, cacheBytes int64) *harness {
	t.Helper()
	h := newHarness(t, f.src())
	h.store.cfg.Mode, h.store.cfg.CacheBytes = ModeRange, cacheBytes
	return h
}

func TestRangeReadsAreByteExact(t *testing.T) {
	f := newRangeFixture(t, true, 3000)
	r := f.remote(t, 16) // a small cache: reads evict each other
	ps := r.pageSize
	size := int64(len(f.body))
	cases := []struct {
		name    string
		off, n  int64
		wantEOF bool
	}{
		{"header", 0, 100, false},
		{"first page", 0, ps, false},
		{"last byte of a page", ps - 1, 1, false},
		{"first byte of a page", 20 * ps, 1, false},
		{"across a page boundary", 30*ps - 3, 7, false},
		{"across three pages", 40*ps - 1, 2*ps + 2, false},
		{"a whole later page", 50 * ps, ps, false},
		{"the last page", size - ps, ps, false},
		{"the last byte", size - 1, 1, false},
		{"past the end", size - 10, 20, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := remoteFS{name: rangeName, r: r}
			file, err := fs.Open(rangeName)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			if _, err := file.(io.Seeker).Seek(c.off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, c.n)
			n, err := io.ReadFull(file, got)
			want := f.body[c.off:min(c.off+c.n, size)]
			if c.wantEOF {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("read past the end: err %v, want io.ErrUnexpectedEOF", err)
				}
				got = got[:n]
			} else if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("bytes %d+%d differ from the object's", c.off, c.n)
			}
		})
	}
	t.Run("stat and other names", func(t *testing.T) {
		fs := remoteFS{name: rangeName, r: r}
		file, _ := fs.Open(rangeName)
		fi, err := file.Stat()
		if err != nil || fi.Size() != size {
			t.Fatalf("stat: size %d, %v; want %d", fi.Size(), err, size)
		}
		if _, err := fs.Open(rangeName + "-journal"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open journal: %v, want not exist", err)
		}
	})
}

func TestRangeCacheEvicts(t *testing.T) {
	f := newRangeFixture(t, true, 3000)
	r := f.remote(t, 16)
	if r.pages < 60 {
		t.Fatalf("fixture too small: %d pages", r.pages)
	}
	// 40 pages far apart: each a miss of one page (no readahead).
	for k := int64(0); k < 40; k++ {
		if _, err := r.page(20+k, 1, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.cache.len(); n != 16 {
		t.Fatalf("cache holds %d pages, want its bound 16", n)
	}
	before := r.Stats()
	if _, err := r.page(59, 1, 0, nil); err != nil { // most recent: a hit
		t.Fatal(err)
	}
	if _, err := r.page(20, 1, 0, nil); err != nil { // evicted: read again
		t.Fatal(err)
	}
	after := r.Stats()
	if hits, reqs := after.CacheHits-before.CacheHits, after.Requests-before.Requests; hits != 1 || reqs != 1 {
		t.Fatalf("after eviction: %d hits and %d requests, want 1 and 1", hits, reqs)
	}
}

func TestRangeReadaheadGrowsOnSequentialReads(t *testing.T) {
	f := newRangeFixture(t, true, 20000)
	r := f.remote(t, 256) // window cap: 64 pages
	file := &rangeFile{r: r}
	start := len(f.s3.getRanges())
	ps := r.pageSize
	buf := make([]byte, ps)
	for i := int64(16); i < 16+200 && i < r.pages; i++ {
		if _, err := file.Seek(i*ps, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(file, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, f.body[i*ps:(i+1)*ps]) {
			t.Fatalf("page %d differs", i)
		}
	}
	var sizes []int64
	for _, h := range f.s3.getRanges()[start:] {
		a, b, ok := strings.Cut(strings.TrimPrefix(h, "bytes="), "-")
		lo, _ := strconv.ParseInt(a, 10, 64)
		hi, _ := strconv.ParseInt(b, 10, 64)
		if !ok {
			t.Fatalf("range header %q", h)
		}
		sizes = append(sizes, (hi-lo+1)/ps)
	}
	want := []int64{1, 2, 4, 8, 16, 32, 64, 64}
	if len(sizes) < len(want) || fmt.Sprint(sizes[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("request sizes in pages %v, want them to start %v", sizes, want)
	}
}

func TestRangeStoreMatchesDownload(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			recs := append(sampleRecords(), genRecords(2000)...)
			fs3 := newFakeS3(t, true)
			fs3.put(t, writeSnap(t, t.TempDir(), recs, snapOpts{rowid: l.rowid}))
			src := NewS3Source(fs3.client, testBucket, testKey)
			down := newHarness(t, src)
			rng := newHarness(t, src)
			rng.store.cfg.Mode, rng.store.cfg.CacheBytes = ModeRange, 64<<10
			a, b := down.acquire(t), rng.acquire(t)
			defer a.Release()
			defer b.Release()
			if _, ok := b.RangeStats(); !ok {
				t.Fatal("range store served a downloaded snapshot")
			}
			if files := rng.files(t); len(files) != 0 {
				t.Fatalf("range mode wrote files: %v", files)
			}
			ea, eb := emails(collect(t, a)), emails(collect(t, b))
			if fmt.Sprint(ea) != fmt.Sprint(eb) {
				t.Fatal("All differs between download and range mode")
			}
			for _, e := range []string{"alice@example.com", "BOB.BUILDER@example.com", "émile@exemple.fr", "åsa@exempel.se", "nobody@example.com", ea[1234]} {
				ra, erra := a.Lookup(context.Background(), e)
				rb, errb := b.Lookup(context.Background(), e)
				if fmt.Sprint(ra, erra) != fmt.Sprint(rb, errb) {
					t.Fatalf("Lookup(%s): download %v %v, range %v %v", e, ra, erra, rb, errb)
				}
			}
		})
	}
}

func TestRangeVersionChangedUnderReader(t *testing.T) {
	t.Run("unversioned bucket: refused, then the new version", func(t *testing.T) {
		f := newRangeFixture(t, false, 3000)
		h := f.store(t, 64<<10)
		snap := h.acquire(t)
		next := genRecords(3001)
		f.s3.put(t, writeSnap(t, t.TempDir(), next, snapOpts{}))
		var err error
		for _, r := range f.recs { // a cache of 16 pages cannot hold them all
			if _, err = snap.Lookup(context.Background(), r.Email()); err != nil {
				break
			}
		}
		if !errors.Is(err, ErrChanged) || merge.ErrorKindOf(err) != merge.ErrUnavailable {
			t.Fatalf("lookup on a replaced object: %v (kind %v), want ErrChanged, unavailable", err, merge.ErrorKindOf(err))
		}
		if _, err := snap.Lookup(context.Background(), f.recs[0].Email()); err == nil {
			// a cached page may still answer; a read must not
			if st, _ := snap.RangeStats(); st.Requests == 0 {
				t.Fatal("no range requests")
			}
		}
		snap.Release()
		// The broken version is replaced at the next Acquire, without
		// waiting for RefreshEvery.
		snap = h.acquire(t)
		defer snap.Release()
		if _, err := snap.Lookup(context.Background(), next[3000].Email()); err != nil {
			t.Fatalf("lookup on the new version: %v", err)
		}
	})
	t.Run("versioned bucket: the pinned version is read", func(t *testing.T) {
		f := newRangeFixture(t, true, 3000)
		h := f.store(t, 64<<10)
		snap := h.acquire(t)
		defer snap.Release()
		f.s3.put(t, writeSnap(t, t.TempDir(), genRecords(10), snapOpts{}))
		if got := collect(t, snap); len(got) != len(f.recs) {
			t.Fatalf("All on the pinned version: %d records, want %d", len(got), len(f.recs))
		}
		_, ids := f.s3.getHeaders()
		for _, id := range ids {
			if id != snap.Version().VersionID {
				t.Fatalf("a GET asked for version %q, want the pinned %q", id, snap.Version().VersionID)
			}
		}
	})
}

func TestRangeOpenRefusesBadObjects(t *testing.T) {
	f := newRangeFixture(t, true, 3000)
	ps := int64(4096)
	cases := []struct {
		name string
		body []byte
		meta map[string]string
		want string
	}{
		{"truncated at a page boundary", f.body[:int64(len(f.body))/ps/2*ps], nil, "truncated"},
		{"truncated mid-page", f.body[:len(f.body)-100], nil, "truncated"},
		{"shorter than a header", f.body[:50], nil, "shorter than its header"},
		{"not SQLite", bytes.Repeat([]byte("x"), 8192), nil, "not an SQLite database"},
		{"manifest says another size", f.body, Manifest{PageSize: ps, PageCount: 3, Size: 3 * ps, SHA256: strings.Repeat("0", 64)}.Metadata(), "manifest"},
		{"manifest says another page size", f.body, Manifest{PageSize: 2 * ps, PageCount: int64(len(f.body)) / ps / 2, Size: int64(len(f.body)), SHA256: strings.Repeat("0", 64)}.Metadata(), "pages"},
		{"manifest incomplete", f.body, map[string]string{MetaPageSize: "4096"}, "missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &rangeFixture{s3: newFakeS3(t, true)} // a fresh bucket: no metadata of an earlier version
			_, err := f.s3.client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(testBucket), Key: aws.String(testKey), Body: bytes.NewReader(c.body), Metadata: c.meta,
			})
			if err != nil {
				t.Fatal(err)
			}
			h := f.store(t, 64<<10)
			_, err = h.store.Acquire(context.Background())
			if merge.ErrorKindOf(err) != merge.ErrUnavailable || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("acquire: %v; want unavailable saying %q", err, c.want)
			}
		})
	}
}

func TestRangeServerErrors(t *testing.T) {
	slowDown := func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message><RequestId>1</RequestId></Error>`)
	}
	cases := []struct {
		name        string
		failures    int // GETs answered with the fault; -1: all
		answer      func(w http.ResponseWriter, r *http.Request, size int64)
		wantErr     bool
		wantChanged bool
		wantGets    int // GETs of the read, retries included
	}{
		{"503 SlowDown twice, then served", 2, slowDown, false, false, 3},
		{"503 SlowDown throughout: fails after the SDK's attempts", -1, slowDown, true, false, 3},
		{"500 throughout", -1, func(w http.ResponseWriter, _ *http.Request, _ int64) { w.WriteHeader(http.StatusInternalServerError) }, true, false, 3},
		{"416: the object is shorter than its version", -1, func(w http.ResponseWriter, _ *http.Request, _ int64) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message><RequestId>1</RequestId></Error>`)
		}, true, true, 1},
		{"412: another ETag", -1, func(w http.ResponseWriter, _ *http.Request, _ int64) { w.WriteHeader(http.StatusPreconditionFailed) }, true, true, 1},
		{"another total size", -1, func(w http.ResponseWriter, r *http.Request, size int64) {
			w.Header().Set("Content-Range", strings.Replace(r.Header.Get("Range"), "=", " ", 1)+"/"+strconv.FormatInt(size+4096, 10))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(make([]byte, 4096)) //nolint:errcheck // the fault
		}, true, true, 1},
		{"a body cut short", -1, func(w http.ResponseWriter, r *http.Request, size int64) {
			w.Header().Set("Content-Length", "4096")
			w.Header().Set("Content-Range", strings.Replace(r.Header.Get("Range"), "=", " ", 1)+"/"+strconv.FormatInt(size, 10))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(make([]byte, 10)) //nolint:errcheck // the fault: the connection ends after 10 bytes
		}, true, false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newRangeFixture(t, true, 3000)
			r := f.remote(t, 64)
			left := c.failures
			f.s3.setIntercept(func(w http.ResponseWriter, req *http.Request) bool {
				if left == 0 {
					return false
				}
				left--
				c.answer(w, req, int64(len(f.body)))
				return true
			})
			before := f.s3.gets.Load()
			_, err := r.page(r.pages/2, 1, 0, nil)
			gets := f.s3.gets.Load() - before
			if (err != nil) != c.wantErr || errors.Is(err, ErrChanged) != c.wantChanged {
				t.Fatalf("read: %v; want error %v, ErrChanged %v", err, c.wantErr, c.wantChanged)
			}
			if gets != int64(c.wantGets) {
				t.Fatalf("%d GETs, want %d", gets, c.wantGets)
			}
			if _, changed := r.failure(); changed != c.wantChanged {
				t.Fatalf("remote marked changed: %v, want %v", changed, c.wantChanged)
			}
		})
	}
}

func TestRangeCorruptPageFailsOneLookup(t *testing.T) {
	f := newRangeFixture(t, true, 3000)
	body := bytes.Clone(f.body)
	mid := int64(len(body)) / 4096 / 2 * 4096
	copy(body[mid:mid+4096], bytes.Repeat([]byte{0xA5}, 4096))
	f.s3.putBytes(t, body)
	h := f.store(t, 64<<10)
	snap := h.acquire(t)
	defer snap.Release()
	var ok, failed int
	for _, r := range f.recs {
		_, err := snap.Lookup(context.Background(), r.Email())
		switch {
		case err == nil:
			ok++
		case merge.ErrorKindOf(err) == merge.ErrUnavailable && !errors.Is(err, ErrChanged):
			failed++
		default:
			t.Fatalf("lookup: %v (kind %v), want unavailable", err, merge.ErrorKindOf(err))
		}
	}
	if failed == 0 || ok == 0 {
		t.Fatalf("%d lookups answered, %d failed; want some of each (only the corrupt page's customers fail)", ok, failed)
	}
}

func TestRangeReadStopsWithTheReader(t *testing.T) {
	f := newRangeFixture(t, true, 3000)
	h := f.store(t, 64<<10)
	snap := h.acquire(t)
	defer snap.Release()
	started := make(chan struct{}, 1)
	f.s3.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case started <- struct{}{}:
		default:
		}
		<-r.Context().Done() // S3 hangs until the client gives up
		return true
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel() // the request's deadline, say
	}()
	var err error
	for _, r := range f.recs { // until one lookup needs a page not cached
		if _, err = snap.Lookup(ctx, r.Email()); err != nil {
			break
		}
	}
	if merge.ErrorKindOf(err) != merge.ErrUnavailable || !errors.Is(err, context.Canceled) {
		t.Fatalf("lookup on a hanging S3 after its context ended: %v, want unavailable wrapping context.Canceled", err)
	}
	if errors.Is(err, ErrChanged) {
		t.Fatalf("a cancelled read marked the version changed: %v", err)
	}
}

func TestRangePrefetchesTheNextWindowAtFullSpeed(t *testing.T) {
	f := newRangeFixture(t, true, 20000)
	r := f.remote(t, 256) // window cap: 64 pages
	file := &rangeFile{r: r}
	ps := r.pageSize
	const first, n = 16, 400
	if r.pages < first+n {
		t.Fatalf("fixture too small: %d pages", r.pages)
	}
	before := r.Stats()
	buf := make([]byte, ps)
	for i := int64(first); i < first+n; i++ {
		if _, err := file.Seek(i*ps, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(file, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, f.body[i*ps:(i+1)*ps]) {
			t.Fatalf("page %d differs", i)
		}
	}
	st := r.Stats()
	misses, reqs := st.CacheMisses-before.CacheMisses, st.Requests-before.Requests
	// The ramp (1, 2, ..., 64 pages) is read on demand; after it every
	// window was read ahead, in the background, before the reader got there.
	if misses != 7 || reqs < 9 {
		t.Fatalf("%d pages read on demand in %d requests; want the ramp's 7, then prefetched windows", misses, reqs)
	}
}

func TestRangeSpuriousChangeReopensTheSameVersion(t *testing.T) {
	f := newRangeFixture(t, true, 3000)
	h := f.store(t, 64<<10)
	snap := h.acquire(t)
	v := snap.Version()
	var done atomic.Bool
	f.s3.setIntercept(func(w http.ResponseWriter, _ *http.Request) bool {
		if done.Swap(true) {
			return false
		}
		w.WriteHeader(http.StatusPreconditionFailed) // a proxy in the way, say: the object did not change
		return true
	})
	var err error
	for _, r := range f.recs {
		if _, err = snap.Lookup(context.Background(), r.Email()); err != nil {
			break
		}
	}
	snap.Release()
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("lookup after a 412: %v, want ErrChanged", err)
	}
	// The next Acquire opens the same version again, without waiting for
	// RefreshEvery, and it serves.
	snap = h.acquire(t)
	defer snap.Release()
	if got := snap.Version(); !got.Same(v) {
		t.Fatalf("serving %s, want the same version %s", got, v)
	}
	for _, r := range f.recs[:200] {
		if _, err := snap.Lookup(context.Background(), r.Email()); err != nil {
			t.Fatalf("lookup on the reopened snapshot: %v", err)
		}
	}
	if rep := h.lastReport(t); !rep.Loaded {
		t.Fatalf("refresh report %+v, want the version loaded again", rep)
	}
}

func TestPageCacheSlots(t *testing.T) {
	const ps = 8
	fill := func(c *pageCache, i int64) {
		t.Helper()
		slots := c.reserve(1)
		if len(slots) != 1 {
			t.Fatalf("reserve for page %d: %d slots", i, len(slots))
		}
		copy(c.buf(slots[0]), bytes.Repeat([]byte{byte(i)}, ps))
		c.commit(i, slots[0])
	}
	got := func(c *pageCache, i int64) (byte, bool) {
		b := make([]byte, ps)
		n, ok := c.read(i, 0, b)
		if ok && (n != ps || !bytes.Equal(b, bytes.Repeat([]byte{b[0]}, ps))) {
			t.Fatalf("page %d: %d bytes %v", i, n, b)
		}
		return b[0], ok
	}
	t.Run("least recently used evicted, slot reused", func(t *testing.T) {
		c := newPageCache(3, ps)
		for i := int64(1); i <= 3; i++ {
			fill(c, i)
		}
		got(c, 1) // 1 is now the most recent; 2 the least
		fill(c, 4)
		if _, ok := got(c, 2); ok {
			t.Fatal("page 2 still cached; want it evicted")
		}
		for _, i := range []int64{1, 3, 4} {
			if v, ok := got(c, i); !ok || v != byte(i) {
				t.Fatalf("page %d: %d, %v", i, v, ok)
			}
		}
		if len(c.chunks) != 1 || len(c.chunks[0]) != 3*ps {
			t.Fatalf("slots of %d chunks, want one of 3 pages", len(c.chunks))
		}
	})
	t.Run("reserved slots are nobody's to evict", func(t *testing.T) {
		c := newPageCache(3, ps)
		held := c.reserve(2)
		fill(c, 1)
		if more := c.reserve(2); len(more) != 1 {
			t.Fatalf("reserve with 2 of 3 slots held: %d slots, want the 1 evicted", len(more))
		} else {
			c.release(more)
		}
		c.release(held)
		if n := len(c.reserve(3)); n != 3 {
			t.Fatalf("after release: %d slots, want 3", n)
		}
	})
	t.Run("a page committed twice keeps one slot", func(t *testing.T) {
		c := newPageCache(2, ps)
		a, b := c.reserve(1), c.reserve(1)
		c.commit(7, a[0])
		c.commit(7, b[0])
		if c.len() != 1 || len(c.free) != 1 {
			t.Fatalf("%d pages, %d free slots; want 1 and 1", c.len(), len(c.free))
		}
	})
	t.Run("slots allocated a chunk at a time", func(t *testing.T) {
		c := newPageCache(chunkSlots*2+10, ps)
		if len(c.chunks) != 0 {
			t.Fatal("slots allocated before any read")
		}
		fill(c, 1)
		if len(c.chunks) != 1 {
			t.Fatalf("%d chunks after one page, want 1", len(c.chunks))
		}
		// Past the bound: every slot, the cached page evicted.
		if n := len(c.reserve(chunkSlots * 3)); n != chunkSlots*2+10 || len(c.chunks) != 3 || c.len() != 0 {
			t.Fatalf("reserve past the bound: %d slots in %d chunks, %d pages left; want %d in 3, none", n, len(c.chunks), c.len(), chunkSlots*2+10)
		}
	})
	t.Run("read from an offset", func(t *testing.T) {
		c := newPageCache(1, ps)
		s := c.reserve(1)
		copy(c.buf(s[0]), "abcdefgh")
		c.commit(0, s[0])
		dst := make([]byte, 10)
		if n, ok := c.read(0, 5, dst); !ok || string(dst[:n]) != "fgh" {
			t.Fatalf("read from 5: %q, %v", dst[:n], ok)
		}
	})
}
