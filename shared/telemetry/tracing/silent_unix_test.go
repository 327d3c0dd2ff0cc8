//go:build unix

package tracing

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// silent runs fn with the file descriptors 1 and 2 redirected to a file and
// fails if anything was written to them: the SDK's default logger holds
// the original stdout, so swapping os.Stdout would not catch it.
func silent(t *testing.T, fn func()) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var saved [2]int
	for i, fd := range []int{1, 2} {
		if saved[i], err = unix.Dup(fd); err != nil {
			t.Fatalf("dup %d: %v", fd, err)
		}
		if err := unix.Dup2(int(f.Fd()), fd); err != nil {
			t.Fatalf("dup2 %d: %v", fd, err)
		}
	}
	defer func() {
		for i, fd := range []int{1, 2} {
			if err := unix.Dup2(saved[i], fd); err != nil {
				t.Fatalf("restore %d: %v", fd, err)
			}
			unix.Close(saved[i])
		}
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			t.Errorf("output on stdout/stderr: %s", b)
		}
	}()
	fn()
}
