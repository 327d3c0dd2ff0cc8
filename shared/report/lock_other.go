//go:build !unix

package report

import (
	"errors"
	"runtime"
)

// lockFile is not available here: FileStore.Replace needs flock, which
// this system does not have. Use an s3:// REPORT_URI (s3local locally).
func lockFile(string) (func(), error) {
	return nil, errors.New("file:// compare-and-swap needs a unix system, not " + runtime.GOOS)
}
