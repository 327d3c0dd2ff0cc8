// Package localtest holds helpers the local tool's tests share.
package localtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Buffer is a bytes.Buffer safe for concurrent writers: tests hand it to
// code that logs from several goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RunWithTestFn is a TestMain body for the packages whose tests run
// cmd/local/testdata/testfn: it builds testfn (from dir, the path of
// cmd/local/testdata/testfn relative to the package) into a temporary
// directory, sets *bootstrap to it, runs the tests and returns their exit
// code, having removed the directory.
func RunWithTestFn(m *testing.M, dir string, bootstrap *string) int {
	tmp, err := os.MkdirTemp("", "testfn-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	*bootstrap = filepath.Join(tmp, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", *bootstrap, dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testfn:", err)
		return 1
	}
	return m.Run()
}
