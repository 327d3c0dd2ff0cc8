package systema

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite/vfs"
)

// RangeReader is a Source whose versions can also be read in place, by byte
// range (range mode): the Store then opens a snapshot on the object itself
// instead of downloading it. S3Source is one.
type RangeReader interface {
	Source
	// ReadRange returns bytes [off, off+n) of version v, exactly: a read of
	// another version fails wrapping ErrChanged, never mixes bytes.
	ReadRange(ctx context.Context, v Version, off, n int64) (io.ReadCloser, error)
}

// DefaultCacheBytes bounds a range-mode snapshot's page cache unless
// Config.CacheBytes says otherwise (SNAPSHOT_CACHE_MB's default).
const DefaultCacheBytes = 32 << 20

// DefaultRangeTimeout bounds one range read (the SDK's retries included)
// unless Config.RangeTimeout says otherwise. SQLite's read callback has no
// context of its own: a read also ends once the contexts of the Lookup or
// All calls in progress on the snapshot are all done (remote.enter).
const DefaultRangeTimeout = 10 * time.Second

// headBytes is what a range-mode open reads first: the largest SQLite page
// (so the header and page 1 come in one request whatever the page size),
// and with the default 4 KiB page size the schema and snapshot_meta pages
// that the validation reads next.
const headBytes = 64 << 10

// maxWindowFraction bounds readahead to this fraction of the cache: a
// window never evicts the pages it just brought, and the windows in flight
// (a scan's read and its prefetch) leave half the slots to cached pages.
const maxWindowFraction = 4

// readHeads is how many sequential streams one open file follows at once
// (a scan's leaf pages, the interior pages it goes back to, ...).
const readHeads = 4

// RangeStats counts a range-mode snapshot's reads, for metrics and
// benchmarks.
type RangeStats struct {
	Requests    int64 // range reads sent to the source (successful or not)
	Bytes       int64 // bytes received
	CacheHits   int64 // pages served from the page cache
	CacheMisses int64 // pages that had to be read
}

// remote is one pinned object version read by ranges. Every connection of
// the snapshot opens its own rangeFile on it; they share the page cache and
// the counters.
type remote struct {
	src      RangeReader
	v        Version
	pageSize int64
	pages    int64 // size / pageSize
	maxWin   int64 // readahead cap, in pages
	timeout  time.Duration
	base     context.Context // cancelled when the Store closes

	cache *pageCache
	stats struct{ requests, bytes, hits, misses atomic.Int64 }

	mu         sync.Mutex
	lastErr    error                      // the last read failure (SQLite sees only "I/O error")
	changed    error                      // set once the version changed under us: every read fails
	readers    map[uint64]context.Context // the contexts of the reads in progress (Lookup, All)
	nextID     uint64
	prefetches map[*prefetch]struct{} // background window reads in progress
}

// enter registers ctx as the context of a read through the snapshot
// (SQLite's read callback has none) until the returned func is called.
// A range read is abandoned once every registered context is done, so a
// hanging S3 costs a lookup its own deadline, not RangeTimeout.
func (r *remote) enter(ctx context.Context) (leave func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.readers == nil {
		r.readers = map[uint64]context.Context{}
	}
	id := r.nextID
	r.nextID++
	r.readers[id] = ctx
	return func() {
		r.mu.Lock()
		delete(r.readers, id)
		r.mu.Unlock()
	}
}

// readCtx returns the context of one range read started by SQLite: bounded
// by base and the timeout, and cancelled once every registered reader's
// context is done (with none registered, base and the timeout alone).
func (r *remote) readCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.base, r.timeout)
	r.mu.Lock()
	readers := make([]context.Context, 0, len(r.readers))
	for _, c := range r.readers {
		readers = append(readers, c)
	}
	r.mu.Unlock()
	if len(readers) == 0 {
		return ctx, cancel
	}
	go func() {
		for _, c := range readers {
			select {
			case <-c.Done():
			case <-ctx.Done():
				return
			}
		}
		cancel()
	}()
	return ctx, cancel
}

// newRemote reads the head of version v and returns its remote. The head
// gives the page size; the rest is read on demand.
func newRemote(ctx, base context.Context, src RangeReader, v Version, cacheBytes int64, timeout time.Duration) (*remote, []byte, error) {
	if v.Size < 100 {
		return nil, nil, fmt.Errorf("%w: not an SQLite database (%d bytes, shorter than its header)", ErrInvalidSnapshot, v.Size)
	}
	r := &remote{src: src, v: v, timeout: timeout, base: base}
	head := make([]byte, min(headBytes, v.Size))
	if err := r.read(ctx, 0, [][]byte{head}); err != nil {
		return nil, nil, err
	}
	ps, err := headerPageSize(head)
	if err != nil {
		return nil, nil, err
	}
	r.pageSize, r.pages = ps, v.Size/ps
	capPages := max(cacheBytes/ps, 16)
	r.cache = newPageCache(int(capPages), ps)
	r.maxWin = max(capPages/maxWindowFraction, 1)
	n := min(int64(len(head))/ps, capPages/2)
	slots := r.cache.reserve(int(n))
	for k, slot := range slots {
		copy(r.cache.buf(slot), head[int64(k)*ps:])
		r.cache.commit(int64(k), slot)
	}
	return r, head, nil
}

// Stats returns the counters so far.
func (r *remote) Stats() RangeStats {
	return RangeStats{
		Requests: r.stats.requests.Load(), Bytes: r.stats.bytes.Load(),
		CacheHits: r.stats.hits.Load(), CacheMisses: r.stats.misses.Load(),
	}
}

// failure returns the last read error and whether the version changed
// (then every later read fails too).
func (r *remote) failure() (last error, changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr, r.changed != nil
}

// read fills bufs, consecutive, from offset off with one range read.
func (r *remote) read(ctx context.Context, off int64, bufs [][]byte) error {
	r.mu.Lock()
	changed := r.changed
	r.mu.Unlock()
	if changed != nil {
		return changed
	}
	var n int64
	for _, b := range bufs {
		n += int64(len(b))
	}
	r.stats.requests.Add(1)
	err := r.readRange(ctx, off, n, bufs)
	if err != nil {
		r.mu.Lock()
		r.lastErr = err
		if errors.Is(err, ErrChanged) && r.changed == nil {
			r.changed = err
		}
		r.mu.Unlock()
	}
	return err
}

func (r *remote) readRange(ctx context.Context, off, n int64, bufs [][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	body, err := r.src.ReadRange(ctx, r.v, off, n)
	if err != nil {
		return err
	}
	defer body.Close()
	for _, b := range bufs {
		got, err := io.ReadFull(body, b)
		r.stats.bytes.Add(int64(got))
		if err != nil {
			return fmt.Errorf("systema: read %s bytes %d-%d: %w", r.v, off, off+n-1, err)
		}
	}
	return nil
}

// page copies page i's bytes from off on into dst and returns how many:
// from the cache, or read with readahead window win (pages, from i on) into
// cache slots. A page that a background read (prefetch) is bringing is
// waited for.
func (r *remote) page(i, win, off int64, dst []byte) (int, error) {
	if n, ok := r.cache.read(i, off, dst); ok {
		r.stats.hits.Add(1)
		return n, nil
	}
	if fl := r.inflight(i); fl != nil {
		<-fl.done
		if n, ok := r.cache.read(i, off, dst); ok {
			r.stats.hits.Add(1)
			return n, nil
		}
	}
	r.stats.misses.Add(1)
	win = min(win, r.pages-i)
	slots := r.cache.reserve(int(win))
	if len(slots) == 0 {
		// Every slot is being filled by other reads: read this page
		// alone, uncached.
		buf := make([]byte, r.pageSize)
		ctx, cancel := r.readCtx()
		defer cancel()
		if err := r.read(ctx, i*r.pageSize, [][]byte{buf}); err != nil {
			return 0, err
		}
		return copy(dst, buf[off:]), nil
	}
	bufs := make([][]byte, len(slots))
	for k, slot := range slots {
		bufs[k] = r.cache.buf(slot)
	}
	ctx, cancel := r.readCtx()
	defer cancel()
	if err := r.read(ctx, i*r.pageSize, bufs); err != nil {
		r.cache.release(slots)
		return 0, err
	}
	n := copy(dst, bufs[0][off:]) // still reserved: nobody else writes it
	for k, slot := range slots {
		r.cache.commit(i+int64(k), slot)
	}
	return n, nil
}

// prefetch is a window read in the background.
type prefetch struct {
	first, n int64
	done     chan struct{}
}

// inflight returns the prefetch bringing page i, or nil.
func (r *remote) inflight(i int64) *prefetch {
	r.mu.Lock()
	defer r.mu.Unlock()
	for fl := range r.prefetches {
		if fl.first <= i && i < fl.first+fl.n {
			return fl
		}
	}
	return nil
}

// prefetch starts reading pages [first, first+n) into the cache in the
// background, unless they are being read already: a sequential scan's next
// window arrives while SQLite works on the current one. Its failure is
// not reported (the reader then reads the pages itself and meets it),
// except a changed version, which ends the snapshot's reads.
func (r *remote) prefetch(first, n int64) {
	if r.inflight(first) != nil {
		return
	}
	fl := &prefetch{first: first, n: n, done: make(chan struct{})}
	r.mu.Lock()
	if r.prefetches == nil {
		r.prefetches = map[*prefetch]struct{}{}
	}
	r.prefetches[fl] = struct{}{}
	r.mu.Unlock()
	ctx, cancel := r.readCtx()
	go func() {
		defer close(fl.done)
		defer cancel()
		slots := r.cache.reserve(int(n))
		if len(slots) == 0 {
			return
		}
		bufs := make([][]byte, len(slots))
		for k, slot := range slots {
			bufs[k] = r.cache.buf(slot)
		}
		r.stats.requests.Add(1)
		err := r.readRange(ctx, first*r.pageSize, int64(len(slots))*r.pageSize, bufs)
		if err == nil {
			for k, slot := range slots {
				r.cache.commit(first+int64(k), slot)
			}
		} else {
			r.cache.release(slots)
		}
		r.mu.Lock()
		delete(r.prefetches, fl)
		if errors.Is(err, ErrChanged) && r.changed == nil {
			r.lastErr, r.changed = err, err
		}
		r.mu.Unlock()
	}()
}

// pageCache is a bounded LRU of pages in fixed slots of memory, safe for
// concurrent use: a page's slot is reused when it is evicted, so a scan that
// streams gigabytes through it allocates nothing per page, and the cache's
// memory is its bound. Slots are allocated in chunks as the cache fills
// (a few lookups cost a chunk, not the bound). A read reserves free slots
// (evicting the least recently used pages once every chunk is allocated),
// fills them, then commits each to its page; bytes are copied out under the
// lock, so an eviction never changes a page under a reader.
type pageCache struct {
	mu       sync.Mutex
	pageSize int64
	capacity int                     // slots, at most
	chunks   [][]byte                // slot k is in chunks[k/chunkSlots]
	free     []int32                 // slots holding no page and reserved by nobody
	ll       *list.List              // LRU of *cachedPage; front: most recent
	items    map[int64]*list.Element // page index -> its element
}

// chunkSlots is how many slots the cache allocates at a time.
const chunkSlots = 256

type cachedPage struct {
	i    int64
	slot int32
}

func newPageCache(capacity int, pageSize int64) *pageCache {
	return &pageCache{pageSize: pageSize, capacity: capacity, ll: list.New(), items: map[int64]*list.Element{}}
}

// grow allocates the next chunk of slots, if the bound allows. c.mu must be
// held.
func (c *pageCache) grow() bool {
	first := len(c.chunks) * chunkSlots
	n := min(chunkSlots, c.capacity-first)
	if n <= 0 {
		return false
	}
	c.chunks = append(c.chunks, make([]byte, int64(n)*c.pageSize))
	for k := n - 1; k >= 0; k-- {
		c.free = append(c.free, int32(first+k))
	}
	return true
}

// buf returns a slot's bytes; only its reserver may write them.
func (c *pageCache) buf(slot int32) []byte {
	c.mu.Lock()
	chunk := c.chunks[slot/chunkSlots]
	c.mu.Unlock()
	off := int64(slot%chunkSlots) * c.pageSize
	return chunk[off : off+c.pageSize : off+c.pageSize]
}

// slotBytes is buf for a caller holding c.mu.
func (c *pageCache) slotBytes(slot int32) []byte {
	off := int64(slot%chunkSlots) * c.pageSize
	return c.chunks[slot/chunkSlots][off : off+c.pageSize : off+c.pageSize]
}

// read copies page i's bytes from off on into dst, marking it recently
// used; false when the page is not cached.
func (c *pageCache) read(i, off int64, dst []byte) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[i]
	if !ok {
		return 0, false
	}
	c.ll.MoveToFront(e)
	return copy(dst, c.slotBytes(e.Value.(*cachedPage).slot)[off:]), true
}

// has reports whether page i is cached.
func (c *pageCache) has(i int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[i]
	return ok
}

// reserve returns up to n slots for the caller to fill, evicting the least
// recently used pages as needed; fewer when the other slots are reserved.
func (c *pageCache) reserve(n int) []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.free) < n {
		if !c.grow() {
			break
		}
	}
	for len(c.free) < n && c.ll.Len() > 0 {
		old := c.ll.Back()
		c.ll.Remove(old)
		p := old.Value.(*cachedPage)
		delete(c.items, p.i)
		c.free = append(c.free, p.slot)
	}
	n = min(n, len(c.free))
	slots := make([]int32, n)
	copy(slots, c.free[len(c.free)-n:])
	c.free = c.free[:len(c.free)-n]
	return slots
}

// commit makes the reserved slot hold page i. If page i is cached already
// (another read brought it: the same version's bytes), the slot is freed.
func (c *pageCache) commit(i int64, slot int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[i]; ok {
		c.ll.MoveToFront(e)
		c.free = append(c.free, slot)
		return
	}
	c.items[i] = c.ll.PushFront(&cachedPage{i: i, slot: slot})
}

// release frees reserved slots that were not filled (a failed read).
func (c *pageCache) release(slots []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.free = append(c.free, slots...)
}

func (c *pageCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// remoteFS is the fs.FS the SQLite VFS opens: one file, name, on r.
type remoteFS struct {
	name string
	r    *remote
}

// Open opens the snapshot; every other name (a journal, say) does not exist.
func (f remoteFS) Open(name string) (fs.File, error) {
	if name != f.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &rangeFile{r: f.r}, nil
}

// rangeFile is one connection's handle on the remote object: its own
// position and read heads. SQLite uses a connection from one goroutine at a
// time, so it needs no lock.
type rangeFile struct {
	r     *remote
	pos   int64
	heads [readHeads]readHead
	next  int // the head to replace next
}

// readHead follows one sequential stream: end is the page after its last
// read, win the window its next read uses.
type readHead struct {
	end, win int64
}

// window returns the readahead window for a miss at page i and moves the
// heads: a miss at (or just after) the end of a head's last read continues
// that stream and doubles its window, as sql.js-httpvfs does; any other
// miss starts a new stream of one page.
func (f *rangeFile) window(i int64) int64 {
	const slack = 4 // interior pages between leaves
	for k := range f.heads {
		h := &f.heads[k]
		if h.win > 0 && i >= h.end && i <= h.end+slack {
			h.win = min(h.win*2, f.r.maxWin)
			h.end = i + h.win
			return h.win
		}
	}
	h := &f.heads[f.next]
	f.next = (f.next + 1) % readHeads
	*h = readHead{end: i + 1, win: 1}
	return 1
}

// ahead starts the next window of a stream at full speed (its window at
// the cap) in the background once the reader is in the last half of the
// stream's current one.
func (f *rangeFile) ahead(i int64) {
	for k := range f.heads {
		h := &f.heads[k]
		if h.win == f.r.maxWin && i < h.end && h.end-i <= h.win/2 && h.end < f.r.pages {
			n := min(h.win, f.r.pages-h.end)
			f.r.prefetch(h.end, n)
			h.end += n
		}
	}
}

// Read reads from the current position, page by page.
func (f *rangeFile) Read(p []byte) (int, error) {
	size := f.r.v.Size
	if f.pos >= size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && f.pos < size {
		i := f.pos / f.r.pageSize
		var win int64 = 1
		if !f.r.cache.has(i) && f.r.inflight(i) == nil {
			win = f.window(i)
		}
		c, err := f.r.page(i, win, f.pos-i*f.r.pageSize, p[n:])
		if err != nil {
			return n, err
		}
		f.ahead(i)
		n += c
		f.pos += int64(c)
	}
	return n, nil
}

// Seek sets the position.
func (f *rangeFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += f.pos
	case io.SeekEnd:
		off += f.r.v.Size
	default:
		return f.pos, fmt.Errorf("systema: seek: bad whence %d", whence)
	}
	if off < 0 {
		return f.pos, fmt.Errorf("systema: seek: negative offset %d", off)
	}
	f.pos = off
	return off, nil
}

// Stat reports the pinned version's size.
func (f *rangeFile) Stat() (fs.FileInfo, error) { return rangeInfo{f.r}, nil }

// Close does nothing: the remote outlives its files.
func (f *rangeFile) Close() error { return nil }

// rangeInfo is a rangeFile's fs.FileInfo.
type rangeInfo struct{ r *remote }

func (i rangeInfo) Name() string       { return "snapshot.db" }
func (i rangeInfo) Size() int64        { return i.r.v.Size }
func (i rangeInfo) Mode() fs.FileMode  { return 0o444 }
func (i rangeInfo) ModTime() time.Time { return i.r.v.LastModified }
func (i rangeInfo) IsDir() bool        { return false }
func (i rangeInfo) Sys() any           { return nil }

// Mode says how a Store reads snapshots (SNAPSHOT_MODE).
type Mode string

// The modes.
const (
	// ModeDownload downloads each version to a file in Config.Dir, checks
	// its manifest checksum and quick_check, and reads it there.
	ModeDownload Mode = "download"
	// ModeRange reads each version in place with range requests through a
	// bounded page cache (the Source must be a RangeReader).
	ModeRange Mode = "range"
)

// ParseMode parses a SNAPSHOT_MODE value: "range", "download", or "auto"
// (also ""): the default for scheme, "range" for s3 and "download"
// otherwise. Range mode needs an s3 URI.
func ParseMode(s, scheme string) (Mode, error) {
	switch Mode(s) {
	case "", "auto":
		if scheme == "s3" {
			return ModeRange, nil
		}
		return ModeDownload, nil
	case ModeDownload:
		return ModeDownload, nil
	case ModeRange:
		if scheme != "s3" {
			return "", fmt.Errorf("systema: SNAPSHOT_MODE range reads an s3:// snapshot in place; SNAPSHOT_URI is %s:// (use download)", scheme)
		}
		return ModeRange, nil
	default:
		return "", fmt.Errorf("systema: SNAPSHOT_MODE: want auto, range or download, got %q", s)
	}
}

// rangeName is the file name the range VFS serves.
const rangeName = "snapshot.db"

// openRange opens version v of src in place: it reads the head (header,
// page 1 and the pages after it), checks the header and the manifest
// against the object, registers a VFS over the remote and opens the
// database immutable and read-only through it, with the schema checks of
// every open (no quick_check: it would read every page). base bounds the
// remote's later reads (the Store's life).
func openRange(ctx, base context.Context, src RangeReader, v Version, cacheBytes int64, timeout time.Duration) (_ *snapshot, err error) {
	r, head, err := newRemote(ctx, base, src, v, cacheBytes, timeout)
	if err != nil {
		return nil, err
	}
	if err := checkHeaderBytes(head, v.Size); err != nil {
		return nil, err
	}
	if err := v.Manifest.check(head, v.Size); err != nil {
		return nil, err
	}
	name, fsys, err := vfs.New(remoteFS{name: rangeName, r: r})
	if err != nil {
		return nil, fmt.Errorf("systema: register the range VFS: %w", err)
	}
	u := url.URL{Scheme: "file", Opaque: rangeName, RawQuery: "vfs=" + name + "&mode=ro&immutable=1&_pragma=query_only(1)"}
	s, err := openDB(ctx, u.String(), v, openOptions{})
	if err != nil {
		fsys.Close() //nolint:errcheck // openDB closed its database
		if last, _ := r.failure(); last != nil {
			err = fmt.Errorf("%w (range read: %w)", err, last)
		}
		return nil, err
	}
	s.remote, s.vfs = r, fsys
	return s, nil
}
