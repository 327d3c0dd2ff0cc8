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
// serving the newer one and does not download the older version again. Its
// kind is merge.ErrBadData.
var ErrOlderSnapshot = newError("systema: snapshot exported before the one served", merge.ErrBadData)

// ErrClosed is returned (wrapped) by Acquire after Close.
var ErrClosed = errors.New("systema: store closed")

// DefaultRefreshEvery is how often a Store looks for a newer snapshot unless
// Config.RefreshEvery says otherwise (SNAPSHOT_REFRESH_SECONDS's default).
const DefaultRefreshEvery = 60 * time.Second

// RefreshResult reports one check for a newer snapshot, for metrics.
type RefreshResult struct {
	Version Version       // the version found (zero if Stat failed)
	Serving Version       // the version served after the check (zero if none)
	Loaded  bool          // Version was downloaded, validated and swapped in
	Err     error         // why the check failed; nil on success
	Kept    bool          // Err != nil and the last good snapshot keeps serving
	Took    time.Duration // the check's duration (by Config.Now)
}

// Config configures a Store. Source is required; New fills the defaults.
type Config struct {
	Source       Source        // where snapshots come from (required)
	Dir          string        // where snapshot files are kept; default os.TempDir()
	RefreshEvery time.Duration // minimum interval between checks; default DefaultRefreshEvery
	Now          func() time.Time
	Logger       *slog.Logger // default: discards
	// OnRefresh, if set, is called after every check (metrics hook). It
	// must not call back into the Store.
	OnRefresh func(RefreshResult)
	// SkipIntegrityCheck skips PRAGMA quick_check on each new snapshot.
	// The check reads every page (about 15 ms per 100,000 customers once
	// downloaded) and catches corrupt pages before anything is served;
	// header, schema and column checks always run.
	SkipIntegrityCheck bool
}

// Store serves the current validated snapshot of System A and keeps it up
// to date: at most every RefreshEvery, an Acquire looks for a newer object
// (another ETag or VersionId), downloads it to a file beside the current
// one, validates it and swaps it in. Readers pin a version with Acquire and
// unpin it with Release; a replaced version is closed and its file removed
// once nobody holds it. A failed refresh keeps the last good snapshot.
// A Store is safe for concurrent use.
type Store struct {
	cfg Config
	log *slog.Logger

	// sem (capacity 1) serialises checks, so concurrent Acquires never
	// download twice; it is a channel so waiting honours ctx.
	sem chan struct{}

	mu        sync.Mutex
	cur       *snapshot // current good snapshot; the Store holds one ref
	lastCheck time.Time // when the last check started
	checked   bool      // a check has run
	bad       Version   // the last version that failed validation
	badErr    error     // why it failed (remembered: no re-download)
	lastErr   error     // the last failure, for Acquire with no snapshot
	closed    bool
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
	if cfg.RefreshEvery < 0 {
		return nil, fmt.Errorf("systema: new store: RefreshEvery %v is negative", cfg.RefreshEvery)
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = DefaultRefreshEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{cfg: cfg, log: log, sem: make(chan struct{}, 1)}, nil
}

// Acquire returns the current snapshot, pinned until its Release: one
// request, or one whole reconciliation run, reads one version. If the last
// check is RefreshEvery old, Acquire first looks for a newer version, in the
// caller's goroutine and bounded by ctx (only one caller does; others keep
// using the current one meanwhile, or wait if there is none yet). A check
// that fails counts as a check, so at most one caller per RefreshEvery pays
// for a slow or failing source; without any good snapshot every Acquire
// checks again (a known-bad version is not downloaded twice). With no good
// snapshot at all Acquire returns an error wrapping ErrUnavailable and the
// reason.
func (s *Store) Acquire(ctx context.Context) (*Snapshot, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("systema: acquire: %w", ErrClosed)
	}
	have := s.cur != nil
	due := s.due()
	s.mu.Unlock()

	switch {
	case have && due:
		select {
		case s.sem <- struct{}{}: // else someone is checking: serve the current one
			s.checkLocked(ctx)
			<-s.sem
		default:
		}
	case !have:
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("systema: acquire: %w: %w", ErrUnavailable, ctx.Err())
		}
		s.checkLocked(ctx)
		<-s.sem
	}

	s.mu.Lock()
	defer s.mu.Unlock()
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
	return s.cur == nil || !s.checked || s.cfg.Now().Sub(s.lastCheck) >= s.cfg.RefreshEvery
}

// checkLocked looks for a newer snapshot and swaps it in; s.sem must be held.
func (s *Store) checkLocked(ctx context.Context) {
	s.mu.Lock()
	if !s.due() || s.closed { // another caller just checked
		s.mu.Unlock()
		return
	}
	if err := ctx.Err(); err != nil { // not a check: try again on the next Acquire
		s.lastErr = err
		s.mu.Unlock()
		return
	}
	first := !s.checked
	start := s.cfg.Now()
	s.lastCheck, s.checked = start, true
	cur := s.cur
	s.mu.Unlock()

	if first {
		s.sweepStale(ctx)
	}
	res := RefreshResult{}
	if cur != nil {
		res.Serving = cur.version
	}
	next, v, err := s.load(ctx, cur)
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
	s.report(ctx, res)
}

// load stats the source and, for a version other than cur (and other than
// the last bad one), fetches and validates it. It returns nil, v, nil when
// cur is still current.
func (s *Store) load(ctx context.Context, cur *snapshot) (*snapshot, Version, error) {
	for attempt := 0; ; attempt++ {
		v, err := s.cfg.Source.Stat(ctx)
		if err != nil {
			return nil, Version{}, err
		}
		if cur != nil && cur.version.Same(v) {
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
		if errors.Is(err, ErrInvalidSnapshot) {
			s.mu.Lock()
			s.bad, s.badErr = v, err
			s.mu.Unlock()
		}
		return next, v, err
	}
}

// fetch downloads v to a new file in Dir and validates it.
func (s *Store) fetch(ctx context.Context, v Version) (_ *snapshot, err error) {
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

// report logs a check (with the caller's context, so the Lambda request id
// is on the line) and calls the hook. Logs carry versions and errors, never
// customer data.
func (s *Store) report(ctx context.Context, r RefreshResult) {
	switch {
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

// Close stops serving: the current snapshot is closed and its file removed
// once every pin is released. Acquire fails afterwards. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.cur != nil {
		cur := s.cur
		s.cur = nil
		s.releaseLocked(cur)
	}
	return nil
}
