package stackproc

import "syscall"

// sysProcAttr puts the child in its own process group and has the kernel
// send it SIGTERM if this process dies first (so it never outlives us).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
