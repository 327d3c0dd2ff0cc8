//go:build unix

package systema

import (
	"os"
	"syscall"
)

// lockShared marks f as in use by this process (a shared flock held until
// f is closed), so sweepStale in another process leaves it alone.
func lockShared(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
}

// tryLockExclusive reports whether f could be locked exclusively: nobody
// holds a lock on it. Any error (held, or locks unsupported) means no.
func tryLockExclusive(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
