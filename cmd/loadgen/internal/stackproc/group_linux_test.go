package stackproc

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	rest := b[bytes.LastIndexByte(b, ')')+1:]
	f := strings.Fields(string(rest))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// startShell starts script under sh in its own group and returns the group
// and the pid the script prints first (a grandchild).
func startShell(t *testing.T, script string) (*group, int) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	g, err := startGroup(cmd)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		g.stop(time.Second) //nolint:errcheck // failing anyway
		t.Fatalf("read the grandchild's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	return g, pid
}

func TestStopLeavesNoOrphans(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		grace      time.Duration
		wantKilled bool
	}{
		{"stops on SIGTERM", `sleep 60 & echo $!; wait`, 5 * time.Second, false},
		{"killed when SIGTERM is ignored", `trap "" TERM; sleep 60 & echo $!; wait`, 200 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, grandchild := startShell(t, tt.script)
			if !alive(g.pid) || !alive(grandchild) {
				t.Fatalf("processes not running before stop")
			}
			err := g.stop(tt.grace)
			if killed := err != nil && strings.Contains(err.Error(), "killed"); killed != tt.wantKilled {
				t.Errorf("stop = %v, want killed %t", err, tt.wantKilled)
			}
			select {
			case <-g.done:
			default:
				t.Error("stop returned before the child was reaped")
			}
			// The grandchild was signalled with the group; it may take a
			// moment to be reaped by init.
			for i := 0; alive(grandchild) && i < 100; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if alive(grandchild) {
				t.Errorf("grandchild %d outlived stop", grandchild)
			}
		})
	}
}

func TestStopAfterTheChildExited(t *testing.T) {
	g, err := startGroup(exec.Command("true"))
	if err != nil {
		t.Fatal(err)
	}
	<-g.done
	if err := g.stop(time.Second); err != nil {
		t.Errorf("stop of an exited child = %v, want nil", err)
	}
}
