package systema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// ErrUnavailable is returned (wrapped) when System A cannot be read: no good
// snapshot was ever loaded (the wrapped error says why: missing object, not
// SQLite, wrong schema_version, ...) or a query on it failed. Its kind is
// merge.ErrUnavailable.
var ErrUnavailable = newError("systema: unavailable", merge.ErrUnavailable)

// ErrOlderSnapshot is a refresh's error (RefreshResult.Err) when the new
// version was exported before the one served (its snapshot_meta exported_at
// is older): System A's export must not go back in time, so the Store keeps
// serving the newer one and does not download the older version again. A
// version exported at the same time is taken: a re-export (System A ran its
// batch again for the same point in time, say to correct rows) keeps the
// freshness, and refusing it would strand the correction. Its kind is
// merge.ErrBadData.
var ErrOlderSnapshot = newError("systema: snapshot exported before the one served", merge.ErrBadData)

// ErrClosed is returned (wrapped) by Acquire after Close.
var ErrClosed = errors.New("systema: store closed")

// DefaultRefreshEvery is how often a Store looks for a newer snapshot unless
// Config.RefreshEvery says otherwise (SNAPSHOT_REFRESH_SECONDS's default).
const DefaultRefreshEvery = 60 * time.Second

// DefaultRefreshReserve is the time a request keeps for itself when it waits
// for a refresh, unless Config.RefreshReserve says otherwise
// (SNAPSHOT_REFRESH_RESERVE_MS's default): a lookup on a loaded snapshot
// takes well under a millisecond, the rest is the answer's way back.
const DefaultRefreshReserve = time.Second

// DefaultRefreshTimeout bounds one refresh (stat, download, validation)
// unless Config.RefreshTimeout says otherwise
// (SNAPSHOT_REFRESH_TIMEOUT_SECONDS's default).
const DefaultRefreshTimeout = 60 * time.Second

// RefreshResult reports one check for a newer snapshot, for metrics.
type RefreshResult struct {
	Version Version       // the version found (zero if Stat failed)
	Serving Version       // the version served after the check (zero if none)
	Loaded  bool          // Version was downloaded, validated and swapped in
	Err     error         // why the check failed (ErrOlderSnapshot: refused); nil on success
	Kept    bool          // Err != nil and the last good snapshot keeps serving
	Took    time.Duration // the check's duration (by Config.Now)
}

// Config configures a Store. Source is required; New fills the defaults.
type Config struct {
	Source       Source        // where snapshots come from (required)
	Dir          string        // where snapshot files are kept; default os.TempDir()
	RefreshEvery time.Duration // minimum interval between checks; default DefaultRefreshEvery
	// RefreshReserve is the time before its deadline that a request stops
	// waiting for a refresh and is served the current snapshot (or, with
	// none yet, ErrUnavailable); default DefaultRefreshReserve.
	RefreshReserve time.Duration
	// RefreshTimeout bounds one refresh, which runs on its own context
	// (not the request's); default DefaultRefreshTimeout.
	RefreshTimeout time.Duration
	Now            func() time.Time                     // default time.Now
	After          func(time.Duration) <-chan time.Time // default time.After; waits for a refresh
	Logger         *slog.Logger                         // default: discards
	// OnRefresh, if set, is called once for a check, by the first Acquire
	// that sees it ended (metrics hook, so the count lands in that request's
	// metrics; a check no Acquire sees end, cut short by Close, is not
	// reported). It must not call back into the Store.
	OnRefresh func(RefreshResult)
	// SkipIntegrityCheck skips PRAGMA quick_check on each new snapshot
	// (download mode; range mode never runs it, as it reads every page).
	// The check reads every page (about 15 ms per 100,000 customers once
	// downloaded) and catches corrupt pages before anything is served;
	// header, schema and column checks always run.
	SkipIntegrityCheck bool
	// Mode is how snapshots are read: ModeDownload (the default) or
	// ModeRange (the Source must be a RangeReader).
	Mode Mode
	// CacheBytes bounds a range-mode snapshot's page cache; default
	// DefaultCacheBytes.
	CacheBytes int64
	// RangeTimeout bounds one range read, retries included; default
	// DefaultRangeTimeout.
	RangeTimeout time.Duration
}

// Store serves the current validated snapshot of System A and keeps it up
// to date: at most every RefreshEvery, an Acquire starts a refresh that looks
// for a newer object (another ETag or VersionId), downloads it to a file
// beside the current one, validates it and swaps it in. Readers pin a version
// with Acquire and unpin it with Release; a replaced version is closed and
// its file removed once nobody holds it. A failed refresh keeps the last good
// snapshot, and so does a version exported before the one served (snapshots
// never go back in time; see ErrOlderSnapshot). A Store is safe for
// concurrent use.
//
// One refresh runs at a time, in a goroutine of the Store, on its own
// context bounded by RefreshTimeout and cancelled by Close, so a request's
// deadline is never spent on it: the request that starts it waits at most
// until RefreshReserve before its deadline, then is served the current
// version while the refresh goes on for the requests after it. In AWS
// Lambda the environment is frozen between invocations, so such a refresh
// progresses while later invocations run (its timeout counts the frozen
// time too).
type Store struct {
	cfg Config
	log *slog.Logger

	base context.Context    // the refreshes' parent context
	stop context.CancelFunc // cancels base (Close)
	wg   sync.WaitGroup     // the refresh goroutine

	mu        sync.Mutex
	cur       *snapshot // current good snapshot; the Store holds one ref
	refresh   *refresh  // the check running, or ended and not yet reported; nil if none
	lastCheck time.Time // when the last check started
	checked   bool      // a check has run
	bad       Version   // the last version refused (invalid, or older than the one served)
	badErr    error     // why it was refused (remembered: no re-download)
	lastErr   error     // the last failure, for Acquire with no snapshot
	closed    bool
}

// refresh is one check, run in its own goroutine.
type refresh struct {
	done chan struct{} // closed once the check has ended and res is set
	res  RefreshResult
}

// New returns a Store for cfg. It does no I/O: the first Acquire loads the
// snapshot (call it at init to fail or warm up early).
func New(cfg Config) (*Store, error) {
	if cfg.Source == nil {
		return nil, errors.New("systema: new store: no Source")
	}
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeDownload
	case ModeDownload:
	case ModeRange:
		if _, ok := cfg.Source.(RangeReader); !ok {
			return nil, fmt.Errorf("systema: new store: range mode needs a Source that reads ranges, not %T", cfg.Source)
		}
	default:
		return nil, fmt.Errorf("systema: new store: unknown mode %q", cfg.Mode)
	}
	if cfg.CacheBytes < 0 {
		return nil, fmt.Errorf("systema: new store: CacheBytes %d is negative", cfg.CacheBytes)
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"RefreshEvery", &cfg.RefreshEvery, DefaultRefreshEvery},
		{"RefreshReserve", &cfg.RefreshReserve, DefaultRefreshReserve},
		{"RefreshTimeout", &cfg.RefreshTimeout, DefaultRefreshTimeout},
		{"RangeTimeout", &cfg.RangeTimeout, DefaultRangeTimeout},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("systema: new store: %s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After // an unreferenced timer is collected (Go 1.23+)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, stop := context.WithCancel(context.Background())
	return &Store{cfg: cfg, log: log, base: base, stop: stop}, nil
}

// Acquire returns the current snapshot, pinned until its Release: one
// request, or one whole reconciliation run, reads one version.
//
// If the last check is RefreshEvery old, Acquire starts a refresh (unless
// ctx is already done) and waits for it until RefreshReserve before ctx's
// deadline (without a deadline, until it ends): if it ends in time, the
// caller gets the new version, else the current one while the refresh goes
// on; a later Acquire serves what it loaded. Other callers meanwhile are
// served the current version at once. With no snapshot yet every caller
// waits, within the same bound, and gets an error wrapping ErrUnavailable
// if none is loaded by then. A check that fails counts as a check, so at
// most one refresh per RefreshEvery pays for a slow or failing source;
// without any good snapshot every Acquire checks again (a known-bad version
// is not downloaded twice). With no good snapshot at all Acquire returns an
// error wrapping ErrUnavailable and the reason.
func (s *Store) Acquire(ctx context.Context) (*Snapshot, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("systema: acquire: %w", ErrClosed)
	}
	ended := s.takeEndedLocked()
	started := false
	if s.refresh == nil && s.due() && ctx.Err() == nil {
		s.startLocked(ctx)
		started = true
	}
	r, cur := s.refresh, s.cur
	s.mu.Unlock()
	if ended != nil {
		s.report(ctx, ended.res)
	}

	switch {
	case r == nil && cur == nil && ctx.Err() != nil:
		// Not a check: try again on the next Acquire.
		return nil, fmt.Errorf("systema: acquire: %w: %w", ErrUnavailable, ctx.Err())
	case r != nil && (started || cur == nil):
		if !s.wait(ctx, r) {
			if cur == nil {
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("systema: acquire: %w: the first snapshot is still loading: %w", ErrUnavailable, err)
				}
				return nil, fmt.Errorf("systema: acquire: %w: the first snapshot is still loading", ErrUnavailable)
			}
			s.log.WarnContext(ctx, "systema: snapshot refresh still running; serving the current snapshot",
				"serving", cur.version.String(), "exported_at", cur.version.ExportedAt)
		}
	}

	s.mu.Lock()
	ended = s.takeEndedLocked()
	snap, err := s.pinLocked()
	s.mu.Unlock()
	if ended != nil {
		s.report(ctx, ended.res)
	}
	return snap, err
}

// wait waits for r to end until RefreshReserve before ctx's deadline (or
// until ctx is done) and reports whether it ended.
func (s *Store) wait(ctx context.Context, r *refresh) bool {
	var timeout <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		budget := deadline.Sub(s.cfg.Now()) - s.cfg.RefreshReserve
		if budget <= 0 {
			select {
			case <-r.done:
				return true
			default:
				return false
			}
		}
		timeout = s.cfg.After(budget)
	}
	select {
	case <-r.done:
		return true
	case <-timeout:
	case <-ctx.Done():
	}
	select { // both may be ready: an ended refresh wins
	case <-r.done:
		return true
	default:
		return false
	}
}

// pinLocked pins the current snapshot. s.mu must be held.
func (s *Store) pinLocked() (*Snapshot, error) {
	if s.closed {
		return nil, fmt.Errorf("systema: acquire: %w", ErrClosed)
	}
	if s.cur == nil {
		why := s.lastErr
		if why == nil {
			why = errors.New("no snapshot loaded yet")
		}
		return nil, fmt.Errorf("systema: acquire: %w: %w", ErrUnavailable, why)
	}
	s.cur.refs++
	return &Snapshot{s: s.cur, release: s.release}, nil
}

// due reports whether a check should run. s.mu must be held.
func (s *Store) due() bool {
	return s.cur == nil || !s.checked || s.cfg.Now().Sub(s.lastCheck) >= s.cfg.RefreshEvery || s.cur.broken()
}

// takeEndedLocked returns the refresh if it has ended, for its report,
// and forgets it; nil otherwise. s.mu must be held.
func (s *Store) takeEndedLocked() *refresh {
	r := s.refresh
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
		s.refresh = nil
		return r
	default:
		return nil
	}
}

// startLocked starts a check in its own goroutine, on a context of its own
// (RefreshTimeout, cancelled by Close). The first check of the Store first
// sweeps stale files, in the caller (ctx: its request id is on the log
// line) and before any file of this Store exists. s.mu must be held.
func (s *Store) startLocked(ctx context.Context) {
	if !s.checked {
		s.sweepStale(ctx)
	}
	start := s.cfg.Now()
	s.lastCheck, s.checked = start, true
	var serving *Version
	reopen := false // the served version can no longer be read: open it again
	if s.cur != nil {
		v := s.cur.version
		serving, reopen = &v, s.cur.broken()
	}
	r := &refresh{done: make(chan struct{})}
	s.refresh = r
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(r.done)
		ctx, cancel := context.WithTimeout(s.base, s.cfg.RefreshTimeout)
		defer cancel()
		r.res = s.check(ctx, serving, reopen, start)
	}()
}

// check looks for a version newer than serving (nil: none served yet) and
// swaps it in; with reopen, the current version too.
func (s *Store) check(ctx context.Context, serving *Version, reopen bool, start time.Time) RefreshResult {
	res := RefreshResult{}
	if serving != nil {
		res.Serving = *serving
	}
	next, v, err := s.load(ctx, serving, reopen)
	res.Version = v
	s.mu.Lock()
	switch {
	case err != nil:
		s.lastErr = err
		res.Err, res.Kept = err, s.cur != nil
	case next != nil && s.closed:
		next.close() //nolint:errcheck // nobody saw it
	case next != nil:
		old := s.cur
		next.refs = 1
		s.cur, s.lastErr = next, nil
		res.Serving, res.Loaded = next.version, true
		if old != nil {
			s.releaseLocked(old)
		}
	}
	s.mu.Unlock()
	res.Took = s.cfg.Now().Sub(start)
	return res
}

// load stats the source and, for a version other than serving (and other
// than the last refused one), fetches and validates it. It returns nil, v,
// nil when serving is still current, unless reopen (a range-mode snapshot
// whose reads failed with ErrChanged: the same version is opened afresh,
// so a spurious change costs one open, not the snapshot). A version exported before serving is
// refused (ErrOlderSnapshot); one exported at the same time is taken (a
// re-export: System A ran its batch again for the same point in time, say
// to correct rows; its freshness is the same, so nothing goes back in time).
func (s *Store) load(ctx context.Context, serving *Version, reopen bool) (*snapshot, Version, error) {
	for attempt := 0; ; attempt++ {
		v, err := s.cfg.Source.Stat(ctx)
		if err != nil {
			return nil, Version{}, err
		}
		if serving != nil && serving.Same(v) && !reopen {
			return nil, v, nil
		}
		s.mu.Lock()
		bad, badErr := s.bad, s.badErr
		s.mu.Unlock()
		if badErr != nil && bad.Same(v) {
			return nil, v, badErr
		}
		next, err := s.fetch(ctx, v)
		if errors.Is(err, ErrChanged) && attempt == 0 {
			continue // replaced between Stat and Fetch: look again, once
		}
		if err == nil && serving != nil && next.version.ExportedAt.Before(serving.ExportedAt) {
			v = next.version
			next.close() //nolint:errcheck // nobody saw it
			next = nil
			err = fmt.Errorf("systema: snapshot %s exported at %s, before the one served (%s, exported at %s): %w",
				v, v.ExportedAt.Format(time.RFC3339), serving, serving.ExportedAt.Format(time.RFC3339), ErrOlderSnapshot)
		}
		if errors.Is(err, ErrInvalidSnapshot) || errors.Is(err, ErrOlderSnapshot) {
			s.mu.Lock()
			s.bad, s.badErr = v, err
			s.mu.Unlock()
		}
		return next, v, err
	}
}

// fetch opens v: in range mode in place, else downloaded to a new file in
// Dir; either way validated.
func (s *Store) fetch(ctx context.Context, v Version) (_ *snapshot, err error) {
	if s.cfg.Mode == ModeRange {
		snap, err := openRange(ctx, s.base, s.cfg.Source.(RangeReader), v, s.cfg.CacheBytes, s.cfg.RangeTimeout)
		if err != nil {
			return nil, fmt.Errorf("systema: snapshot %s: %w", v, err)
		}
		return snap, nil
	}
	f, err := os.CreateTemp(s.cfg.Dir, filePattern)
	if err != nil {
		return nil, fmt.Errorf("systema: snapshot file: %w", err)
	}
	path := f.Name()
	defer func() {
		if err != nil {
			os.Remove(path)
			f.Close()
		}
	}()
	// The shared lock, held while the file is in use, keeps sweepStale in
	// another process (or a restarted one) off it.
	if err := lockShared(f); err != nil {
		s.log.WarnContext(ctx, "systema: cannot lock the snapshot file", "error", err.Error())
	}
	if err = s.cfg.Source.Fetch(ctx, v, f); err != nil {
		return nil, err
	}
	if err = v.Manifest.checkSum(f); err != nil {
		return nil, fmt.Errorf("systema: snapshot %s: %w", v, err)
	}
	snap, err := openSnapshot(ctx, path, v, openOptions{integrityCheck: !s.cfg.SkipIntegrityCheck})
	if err != nil {
		return nil, fmt.Errorf("systema: snapshot %s: %w", v, err)
	}
	snap.lock = f
	return snap, nil
}

// filePattern names the Store's snapshot files in Dir.
const filePattern = "systema-*.db"

// sweepStale removes snapshot files left in Dir by a process that died
// (a Lambda runtime killed at its timeout keeps /tmp): those nobody holds a
// lock on. Files of live Stores, in this process or another, are locked.
func (s *Store) sweepStale(ctx context.Context) {
	paths, err := filepath.Glob(filepath.Join(s.cfg.Dir, filePattern))
	if err != nil {
		return
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if tryLockExclusive(f) {
			if err := os.Remove(p); err == nil {
				s.log.InfoContext(ctx, "systema: removed a stale snapshot file", "file", filepath.Base(p))
			}
		}
		f.Close()
	}
}

// report logs a check (with the context of the Acquire that saw it end, so
// that request's id is on the line) and calls the hook. Logs carry versions,
// export times and errors, never customer data.
func (s *Store) report(ctx context.Context, r RefreshResult) {
	switch {
	case errors.Is(r.Err, ErrOlderSnapshot):
		s.log.WarnContext(ctx, "systema: refused a snapshot exported before the one served; serving the newer one",
			"error", r.Err.Error(), "refused", r.Version.String(), "refused_exported_at", r.Version.ExportedAt,
			"serving", r.Serving.String(), "exported_at", r.Serving.ExportedAt, "took", r.Took)
	case r.Err != nil && r.Kept:
		s.log.WarnContext(ctx, "systema: snapshot refresh failed; serving the last good snapshot",
			"error", r.Err.Error(), "serving", r.Serving.String(), "exported_at", r.Serving.ExportedAt, "took", r.Took)
	case r.Err != nil:
		s.log.ErrorContext(ctx, "systema: snapshot unavailable", "error", r.Err.Error(), "took", r.Took)
	case r.Loaded:
		s.log.InfoContext(ctx, "systema: snapshot loaded", "version", r.Serving.String(), "size", r.Serving.Size,
			"exported_at", r.Serving.ExportedAt, "took", r.Took)
	default:
		s.log.DebugContext(ctx, "systema: snapshot unchanged", "version", r.Serving.String())
	}
	if s.cfg.OnRefresh != nil {
		s.cfg.OnRefresh(r)
	}
}

// release drops one pin of snap.
func (s *Store) release(snap *snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(snap)
}

// releaseLocked drops one pin; the last closes snap. s.mu must be held.
func (s *Store) releaseLocked(snap *snapshot) {
	snap.refs--
	if snap.refs > 0 {
		return
	}
	if err := snap.close(); err != nil {
		s.log.Warn("systema: closing a replaced snapshot failed", "version", snap.version.String(), "error", err.Error())
	}
}

// Close stops serving: a refresh in progress is cancelled and waited for,
// and the current snapshot is closed and its file removed once every pin is
// released. Acquire fails afterwards. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.stop()
	if s.cur != nil {
		cur := s.cur
		s.cur = nil
		s.releaseLocked(cur)
	}
	s.mu.Unlock()
	s.wg.Wait() // the refresh takes s.mu to swap: not held here
	return nil
}
