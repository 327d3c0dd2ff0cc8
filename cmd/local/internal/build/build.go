// Package build builds a template function's bootstrap for the host, the way
// `sam build` does for Lambda: BuildMethod makefile runs
// `make build-<LogicalId> ARTIFACTS_DIR=<dir>` in the function's CodeUri, with
// GOOS and GOARCH overridden to the host's, so the Makefile stays the only
// list of what each function is built from.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

// ErrUnsupported is returned (wrapped) for a function the local tool cannot
// build.
var ErrUnsupported = errors.New("build: unsupported build method")

// Builder builds bootstraps under Dir/<LogicalId>/bootstrap.
type Builder struct {
	Dir    string    // the build root, e.g. .local/build
	GOOS   string    // default runtime.GOOS
	GOARCH string    // default runtime.GOARCH
	Log    io.Writer // make's and go's output; default io.Discard
	Make   string    // the make command; default "make"
	Go     string    // the go command for BuildMethod go1.x; default "go"
}

// Build builds f and returns the absolute path of its bootstrap.
func (b *Builder) Build(ctx context.Context, f *samtemplate.Function) (string, error) {
	goos, goarch := or(b.GOOS, runtime.GOOS), or(b.GOARCH, runtime.GOARCH)
	dir, err := filepath.Abs(filepath.Join(b.Dir, f.LogicalID))
	if err != nil {
		return "", fmt.Errorf("build: %s: %w", f.LogicalID, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build: %s: %w", f.LogicalID, err)
	}
	bootstrap := filepath.Join(dir, "bootstrap")
	if err := os.Remove(bootstrap); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("build: %s: remove the old bootstrap: %w", f.LogicalID, err)
	}
	var cmd *exec.Cmd
	switch method := strings.ToLower(f.BuildMethod); {
	case method == "makefile":
		cmd = exec.CommandContext(ctx, or(b.Make, "make"), "--no-print-directory", "-C", f.CodeURI,
			"build-"+f.LogicalID, "ARTIFACTS_DIR="+dir, "GOOS="+goos, "GOARCH="+goarch)
	case method == "go1.x" || (method == "" && f.Runtime == "go1.x"):
		cmd = exec.CommandContext(ctx, or(b.Go, "go"), "build", "-trimpath", "-tags", "lambda.norpc", "-o", bootstrap, ".")
		cmd.Dir = f.CodeURI
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	default:
		return "", fmt.Errorf("build: %s: %w %q (want Metadata: BuildMethod: makefile)", f.LogicalID, ErrUnsupported, f.BuildMethod)
	}
	log := b.Log
	if log == nil {
		log = io.Discard
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build: %s: %s: %w", f.LogicalID, strings.Join(cmd.Args, " "), err)
	}
	st, err := os.Stat(bootstrap)
	if err != nil {
		return "", fmt.Errorf("build: %s: the build wrote no %s: %w", f.LogicalID, bootstrap, err)
	}
	if st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("build: %s: %s is not executable", f.LogicalID, bootstrap)
	}
	return bootstrap, nil
}

// Existing returns the bootstrap a previous Build left for f (--skip-build).
func (b *Builder) Existing(f *samtemplate.Function) (string, error) {
	p, err := filepath.Abs(filepath.Join(b.Dir, f.LogicalID, "bootstrap"))
	if err != nil {
		return "", fmt.Errorf("build: %s: %w", f.LogicalID, err)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("build: %s: no bootstrap built yet (run without --skip-build): %w", f.LogicalID, err)
	}
	return p, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
