package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrSim is returned (wrapped) when the System B simulator's admin API does
// not do what was asked.
var ErrSim = errors.New("load: System B simulator")

// Sim drives the System B simulator's admin endpoints (/_sim/, no token).
type Sim struct {
	URL    string       // the simulator's base URL, e.g. http://127.0.0.1:8081
	Client *http.Client // default http.DefaultClient
}

// SimStats are the simulator's request counters (GET /_sim/stats).
type SimStats struct {
	Requests int64 `json:"requests"` // API requests received
	Get      int64 `json:"get"`      // GET /customers/{email} served
	Injected int64 `json:"injected"` // answered by a fault
}

// Reset clears every fault and zeroes the counters (POST /_sim/reset).
func (s *Sim) Reset(ctx context.Context) error {
	return s.do(ctx, http.MethodPost, "reset", nil, nil)
}

// SetFaults replaces the faults in force (PUT /_sim/faults), e.g.
// {"errorRate":0.2,"status":503}.
func (s *Sim) SetFaults(ctx context.Context, faults json.RawMessage) error {
	return s.do(ctx, http.MethodPut, "faults", faults, nil)
}

// Stats returns the request counters (GET /_sim/stats).
func (s *Sim) Stats(ctx context.Context) (SimStats, error) {
	var st SimStats
	err := s.do(ctx, http.MethodGet, "stats", nil, &st)
	return st, err
}

func (s *Sim) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(s.URL, "/")+"/_sim/"+path, rd)
	if err != nil {
		return fmt.Errorf("%w: %s /_sim/%s: %w", ErrSim, method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s /_sim/%s: %w", ErrSim, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("%w: %s /_sim/%s: read: %w", ErrSim, method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s /_sim/%s: status %d: %s", ErrSim, method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: %s /_sim/%s: decode: %w", ErrSim, method, path, err)
		}
	}
	return nil
}
