package systema

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// acquireResult is one Acquire's outcome, from a goroutine.
type acquireResult struct {
	snap *Snapshot
	err  error
}

// acquireAsync runs Acquire(ctx) in a goroutine.
func acquireAsync(h *harness, ctx context.Context) <-chan acquireResult {
	out := make(chan acquireResult, 1)
	go func() {
		snap, err := h.store.Acquire(ctx)
		out <- acquireResult{snap, err}
	}()
	return out
}

// TestStoreSlowRefreshKeepsTheRequestsBudget: a refresh whose download
// blocks does not spend the request's deadline. The request with 3 s left
// waits until the reserve (1 s before its deadline) and gets the current
// version; a request meanwhile gets it at once; once the refresh has ended,
// the next request gets the new version.
func TestStoreSlowRefreshKeepsTheRequestsBudget(t *testing.T) {
	for _, p := range publishers(t) {
		t.Run(p.name, func(t *testing.T) {
			p.publish(t, snapBytes(t, versionOf("v1"), snapOpts{}))
			src := newGatedSource(p.src)
			h := newHarness(t, src)
			h.acquire(t).Release()

			p.publish(t, snapBytes(t, versionOf("v2"), snapOpts{exportedAt: snapExportedAt.Add(24 * time.Hour)}))
			src.Close()
			h.clock.Advance(time.Minute)
			res := acquireAsync(h, h.clock.withDeadlineIn(3*time.Second))
			<-src.fetching // the refresh is downloading...
			if d := <-h.clock.armed; d != 2*time.Second {
				t.Fatalf("the request waits %v for the refresh, want 2s (3s left minus the 1s reserve)", d)
			}
			h.clock.Advance(2 * time.Second) // ...past the request's budget
			r := <-res
			if r.err != nil {
				t.Fatalf("acquire: %v", r.err)
			}
			if got := firstName(t, r.snap, "alice@example.com"); got != "v1" {
				t.Fatalf("a request whose budget ran out read %q, want v1 (the current version)", got)
			}
			r.snap.Release()
			if !strings.Contains(h.logs.String(), "snapshot refresh still running; serving the current snapshot") {
				t.Errorf("the deferred refresh is not logged:\n%s", h.logs)
			}

			// Meanwhile, another request is served at once (the refresh is
			// not due again; nobody waits for it).
			during := h.acquire(t)
			if got := firstName(t, during, "alice@example.com"); got != "v1" {
				t.Fatalf("during the refresh: read %q, want v1", got)
			}
			during.Release()

			src.Open()
			h.refreshEnded(t)
			after := h.acquire(t)
			defer after.Release()
			if got := firstName(t, after, "alice@example.com"); got != "v2" {
				t.Fatalf("after the refresh ended: read %q, want v2", got)
			}
			if rep := h.lastReport(t); !rep.Loaded || rep.Err != nil {
				t.Fatalf("report = %+v", rep)
			}
		})
	}
}

func TestStoreRefreshWaitBounds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		left     time.Duration // the request's time left; 0: no deadline
		wantWait time.Duration // the timer armed; 0: none
	}{
		{"no deadline: waits for the refresh", 0, 0},
		{"ten seconds left", 10 * time.Second, 9 * time.Second},
		{"less than the reserve left: no wait", 500 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newGatedSource(NewFileSource(writeSnap(t, t.TempDir(), versionOf("v1"), snapOpts{})))
			h := newHarness(t, src)
			src.Close()
			ctx := context.Background()
			if tc.left > 0 {
				ctx = h.clock.withDeadlineIn(tc.left)
			}
			res := acquireAsync(h, ctx)
			<-src.fetching
			if tc.wantWait > 0 {
				if d := <-h.clock.armed; d != tc.wantWait {
					t.Fatalf("waits %v, want %v", d, tc.wantWait)
				}
				h.clock.Advance(tc.wantWait)
			}
			if tc.left > 0 {
				// The first load did not end in the budget: unavailable.
				r := <-res
				if !errors.Is(r.err, ErrUnavailable) || !strings.Contains(r.err.Error(), "still loading") {
					t.Fatalf("first load past the budget: %v, want ErrUnavailable (still loading)", r.err)
				}
				src.Open()
				h.refreshEnded(t)
				h.acquire(t).Release() // what the refresh loaded is served
				return
			}
			src.Open()
			r := <-res
			if r.err != nil {
				t.Fatalf("acquire without a deadline: %v", r.err)
			}
			r.snap.Release()
			select {
			case d := <-h.clock.armed:
				t.Fatalf("a request without a deadline armed a %v timer", d)
			default:
			}
		})
	}
}

// TestStoreCloseEndsTheRefresh: Close cancels a blocked refresh and returns
// once its goroutine has ended; the waiting first Acquire gets ErrClosed or
// ErrUnavailable, never a snapshot.
func TestStoreCloseEndsTheRefresh(t *testing.T) {
	src := newGatedSource(NewFileSource(writeSnap(t, t.TempDir(), versionOf("v1"), snapOpts{})))
	h := newHarness(t, src)
	src.Close()
	res := acquireAsync(h, context.Background())
	<-src.fetching
	h.store.mu.Lock()
	r := h.store.refresh
	h.store.mu.Unlock()
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	default:
		t.Fatal("Close returned before the refresh ended")
	}
	got := <-res
	if got.snap != nil || !(errors.Is(got.err, ErrClosed) || errors.Is(got.err, ErrUnavailable)) {
		t.Fatalf("acquire across Close = %v, %v", got.snap, got.err)
	}
	if files := h.files(t); len(files) != 0 {
		t.Fatalf("files left after Close: %q", files)
	}
}

// TestStoreRefusesOlderSnapshot: a snapshot exported before the one served
// is refused (the newer keeps serving, the refusal is reported and logged
// without personal data, the older version is not downloaded again); one
// exported at the same time is taken as a re-export; a newer one is taken.
func TestStoreRefusesOlderSnapshot(t *testing.T) {
	for _, p := range publishers(t) {
		t.Run(p.name, func(t *testing.T) {
			p.publish(t, snapBytes(t, versionOf("night2"), snapOpts{}))
			h := newHarness(t, p.src)
			s := h.acquire(t)
			night2 := s.Version()
			s.Release()

			p.publish(t, snapBytes(t, versionOf("night1"), snapOpts{exportedAt: snapExportedAt.Add(-24 * time.Hour)}))
			h.clock.Advance(time.Minute)
			s = h.acquire(t)
			if got := firstName(t, s, "alice@example.com"); got != "night2" || !s.Version().Same(night2) {
				t.Fatalf("after an older upload: read %q, want night2", got)
			}
			s.Release()
			r := h.lastReport(t)
			if !errors.Is(r.Err, ErrOlderSnapshot) || !r.Kept || r.Loaded || !r.Serving.Same(night2) ||
				!r.Version.ExportedAt.Equal(snapExportedAt.Add(-24*time.Hour)) {
				t.Fatalf("report = %+v", r)
			}
			if logs := h.logs.String(); !strings.Contains(logs, "refused a snapshot exported before the one served") ||
				!strings.Contains(logs, "2025-02-28T02:00:00Z") {
				t.Fatalf("the refusal is not logged with both export times:\n%s", logs)
			}
			if got := h.files(t); len(got) != 1 {
				t.Fatalf("files = %q, want only the served one", got)
			}

			var gets int64
			if p.fake != nil {
				gets = p.fake.gets.Load()
			}
			h.clock.Advance(time.Minute)
			h.acquire(t).Release()
			if r := h.lastReport(t); !errors.Is(r.Err, ErrOlderSnapshot) || !r.Kept {
				t.Fatalf("second check report = %+v", r)
			}
			if p.fake != nil && p.fake.gets.Load() != gets {
				t.Fatal("the refused version was downloaded again")
			}

			for _, step := range []struct {
				name       string
				exportedAt time.Time
			}{
				{"re-export at the same time", snapExportedAt},
				{"newer", snapExportedAt.Add(24 * time.Hour)},
			} {
				p.publish(t, snapBytes(t, versionOf(step.name), snapOpts{exportedAt: step.exportedAt}))
				h.clock.Advance(time.Minute)
				s := h.acquire(t)
				if got := firstName(t, s, "alice@example.com"); got != step.name || !s.ExportedAt().Equal(step.exportedAt) {
					t.Fatalf("%s: read %q exported at %v", step.name, got, s.ExportedAt())
				}
				s.Release()
				if r := h.lastReport(t); !r.Loaded || r.Err != nil {
					t.Fatalf("%s: report = %+v", step.name, r)
				}
			}
		})
	}
}

// TestStoreFirstLoadCallerCancelled: a caller waiting for the first load
// that is cancelled gets ErrUnavailable wrapping its context's error; the
// load goes on and serves the next caller.
func TestStoreFirstLoadCallerCancelled(t *testing.T) {
	src := newGatedSource(NewFileSource(writeSnap(t, t.TempDir(), versionOf("v1"), snapOpts{})))
	h := newHarness(t, src)
	src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(h, ctx)
	<-src.fetching
	cancel()
	if r := <-res; !errors.Is(r.err, ErrUnavailable) || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled while the first snapshot loads: %v, want ErrUnavailable and context.Canceled", r.err)
	}
	src.Open()
	h.refreshEnded(t)
	snap := h.acquire(t)
	defer snap.Release()
	if got := firstName(t, snap, "alice@example.com"); got != "v1" {
		t.Fatalf("read %q, want v1", got)
	}
	if rep := h.lastReport(t); !rep.Loaded {
		t.Fatalf("report = %+v", rep)
	}
}
