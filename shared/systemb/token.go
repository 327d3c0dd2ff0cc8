package systemb

import (
	"context"
	"fmt"
	"sync"
)

// TokenFunc returns the bearer token for System B. Config.Token is called
// once per Get and once per List page, so a source that looks the token up
// remotely should cache it.
type TokenFunc func(ctx context.Context) (string, error)

// StaticToken returns a TokenFunc that always gives tok.
func StaticToken(tok string) TokenFunc {
	return func(context.Context) (string, error) { return tok, nil }
}

// refresher runs Config.RefreshToken for the calls System B refused, one
// refresh at a time. Refreshes are numbered (generation): a call notes the
// generation before it reads its token, and when refused it takes the
// outcome of a refresh completed since then instead of making another. So
// the calls in flight during a rotation share one refresh, while a later
// call refused again makes its own.
type refresher struct {
	refresh TokenFunc
	done    func(context.Context, error)
	turn    chan struct{} // holds one value while a refresh runs

	mu  sync.Mutex
	gen uint64 // refreshes completed
	tok string // the token of the last refresh
	err error  // and its error
}

func newRefresher(refresh TokenFunc, done func(context.Context, error)) *refresher {
	return &refresher{refresh: refresh, done: done, turn: make(chan struct{}, 1)}
}

// generation returns the number of refreshes completed; 0 for a nil
// refresher.
func (r *refresher) generation() uint64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// fresh returns a token to try after a refusal of one read at generation
// gen: that of a refresh completed since, or of a new refresh. It waits for
// a refresh in progress, unless ctx ends first.
func (r *refresher) fresh(ctx context.Context, gen uint64) (string, error) {
	select {
	case r.turn <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for a token refresh: %w", ctx.Err())
	}
	defer func() { <-r.turn }()
	r.mu.Lock()
	if r.gen != gen {
		tok, err := r.tok, r.err
		r.mu.Unlock()
		return tok, err
	}
	r.mu.Unlock()
	tok, err := r.refresh(ctx)
	r.mu.Lock()
	r.gen++
	r.tok, r.err = tok, err
	r.mu.Unlock()
	r.done(ctx, err)
	return tok, err
}
