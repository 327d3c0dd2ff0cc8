//go:build !unix

package systema

import "os"

// lockShared is a no-op where flock is unavailable.
func lockShared(*os.File) error { return nil }

// tryLockExclusive never claims a file where flock is unavailable, so
// sweepStale removes nothing.
func tryLockExclusive(*os.File) bool { return false }
