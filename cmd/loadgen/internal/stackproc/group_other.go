//go:build !unix

package stackproc

import (
	"errors"
	"os/exec"
	"time"
)

// group is not supported off unix: there are no process groups to stop.
type group struct{ done chan struct{} }

func startGroup(*exec.Cmd) (*group, error) {
	return nil, errors.New("stackproc: -stack needs a unix system (process groups)")
}

func (g *group) stop(time.Duration) error { return nil }
