//go:build unix && !linux

package sandbox

import (
	"os"
	"syscall"
)

// sysProcAttr puts the child in its own process group, so a timeout kills
// everything it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// maxMemoryMB is unknown without /proc.
func maxMemoryMB(pid int) int { return 0 }

// killGroup kills the process group pid leads.
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) } //nolint:errcheck // it may be gone already

// rusageMaxMemoryMB is unknown here.
func rusageMaxMemoryMB(ps *os.ProcessState) int { return 0 }
