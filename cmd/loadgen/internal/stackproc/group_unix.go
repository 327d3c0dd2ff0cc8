//go:build unix

package stackproc

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// group is a child process leading its own process group.
type group struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed once the child has exited and been reaped
	err  error         // Wait's error, set before done is closed
}

// startGroup starts cmd as the leader of a new process group.
func startGroup(cmd *exec.Cmd) (*group, error) {
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild that keeps the output pipe open must not keep Wait
	// waiting forever.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("stackproc: start %s: %w", cmd.Path, err)
	}
	g := &group{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		g.err = cmd.Wait()
		close(g.done)
	}()
	return g, nil
}

// stop sends SIGTERM to the group, SIGKILL after grace if the leader has
// not exited, and SIGKILL again to whatever is left of the group once it
// has. It returns when the leader has been reaped.
func (g *group) stop(grace time.Duration) error {
	signalGroup(g.pid, syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	killed := false
	select {
	case <-g.done:
	case <-timer.C:
		killed = true
		signalGroup(g.pid, syscall.SIGKILL)
		<-g.done
	}
	signalGroup(g.pid, syscall.SIGKILL) // stragglers in the group, if any
	if killed {
		return fmt.Errorf("stackproc: the stack did not stop within %s of SIGTERM and was killed", grace)
	}
	var ee *exec.ExitError
	if g.err != nil && !errors.As(g.err, &ee) {
		return fmt.Errorf("stackproc: wait: %w", g.err)
	}
	return nil // an exit status after SIGTERM is the stack's business
}

// signalGroup signals every process of the group pid leads; a group that
// is gone already is no error.
func signalGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
}
