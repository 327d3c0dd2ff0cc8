package stackproc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTail(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		writes []string
		want   string
	}{
		{"empty", 8, nil, ""},
		{"fits", 8, []string{"ab", "cd"}, "abcd"},
		{"exactly full", 4, []string{"ab", "cd"}, "abcd"},
		{"wraps", 4, []string{"abc", "def"}, "cdef"},
		{"wraps many times", 5, []string{"12", "34", "56", "78", "9"}, "56789"},
		{"one write bigger than the ring", 3, []string{"x", "abcdefg"}, "efg"},
		{"empty write", 3, []string{"ab", "", "c"}, "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := NewTail(tt.size)
			for _, w := range tt.writes {
				if n, err := tl.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := tl.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Errorf("ports %v: want 4 distinct ports above 0", ports)
		}
		seen[p] = true
	}
}

func TestFindRoot(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"go.mod", "template.yaml"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deep := filepath.Join(root, "cmd", "loadgen")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := FindRoot(deep)
	if err != nil || got != root {
		t.Errorf("FindRoot = %q, %v; want %q", got, err, root)
	}
	if _, err := FindRoot(t.TempDir()); err == nil {
		t.Error("FindRoot of a directory outside any repository gave no error")
	}
}

func TestWaitReady(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	never := make(chan struct{})

	t.Run("ready after two refusals", func(t *testing.T) {
		if err := WaitReady(context.Background(), srv.URL, never); err != nil || calls.Load() != 3 {
			t.Errorf("WaitReady = %v after %d calls, want nil after 3", err, calls.Load())
		}
	})
	t.Run("the child exited", func(t *testing.T) {
		exited := make(chan struct{})
		close(exited)
		ports, _ := FreePorts(1)
		err := WaitReady(context.Background(), "http://127.0.0.1:"+strconv.Itoa(ports[0])+"/", exited)
		if err == nil || !strings.Contains(err.Error(), "exited") {
			t.Errorf("WaitReady = %v, want an error saying it exited", err)
		}
	})
	t.Run("the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ports, _ := FreePorts(1)
		err := WaitReady(ctx, "http://127.0.0.1:"+strconv.Itoa(ports[0])+"/", never)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("WaitReady = %v, want context.Canceled", err)
		}
	})
}

func TestStartFailsCleanlyOutsideTheRepository(t *testing.T) {
	_, err := Start(context.Background(), Config{Root: t.TempDir(), ReadyTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "go build ./cmd/local") {
		t.Errorf("Start = %v, want a build error", err)
	}
}
