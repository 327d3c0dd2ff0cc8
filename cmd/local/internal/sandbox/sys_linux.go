package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr puts the child in its own process group (so a timeout kills
// everything it started) and has the kernel kill it if the tool dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// maxMemoryMB returns the peak resident set size (VmHWM) of pid, in MB
// rounded up; 0 when unknown.
func maxMemoryMB(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.Atoi(string(fields[0]))
		if err != nil {
			return 0
		}
		return (kb + 1023) / 1024
	}
	return 0
}

// killGroup kills the process group pid leads.
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) } //nolint:errcheck // it may be gone already

// rusageMaxMemoryMB returns the peak resident set size of an exited process,
// in MB rounded up; 0 when unknown.
func rusageMaxMemoryMB(ps *os.ProcessState) int {
	if ps == nil {
		return 0
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return int((ru.Maxrss + 1023) / 1024) // kilobytes on Linux
}
