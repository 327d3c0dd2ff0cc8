package localtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/build"
	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

// EnvBootstrapDir names the variable that points the tests at bootstraps
// built for this machine before they run, as <dir>/<LogicalId>/bootstrap:
// `make test` builds them into dist/host with the Makefile's
// build-<LogicalId> targets and sets it, so every package that runs the
// real functions shares one build.
const EnvBootstrapDir = "UCS_BOOTSTRAP_DIR"

// lockName is the lock file, in the temporary directory, that lets one
// test process at a time build bootstraps.
const lockName = "ucs-bootstrap-build.lock"

// sourcePaths are what the repository's bootstraps are built from,
// relative to its root.
func sourcePaths() []string {
	return []string{"go.mod", "go.sum", "Makefile", "template.yaml", "functions", "shared"}
}

// NewestSource stats every file the repository's bootstraps are built from
// (test files aside) and returns the newest one and its modification time.
//
// Called while a test runs (not in TestMain before m.Run), the stats also
// keep go test's result cache honest: the bootstraps are built or copied
// outside what go test watches, and a change to a file the test process
// stat'ed invalidates a cached PASS.
func NewestSource(root string) (path string, mod time.Time, err error) {
	visit := func(p string, st fs.FileInfo) {
		if st.ModTime().After(mod) {
			path, mod = p, st.ModTime()
		}
	}
	for _, rel := range sourcePaths() {
		top := filepath.Join(root, rel)
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			visit(p, st)
			return nil
		})
		if err != nil {
			return "", time.Time{}, fmt.Errorf("localtest: stat the bootstraps' sources: %w", err)
		}
	}
	return path, mod, nil
}

// BootstrapConfig says where HostBootstraps finds the sources and puts the
// bootstraps.
type BootstrapConfig struct {
	Root   string              // the repository's root (go.mod, Makefile, template.yaml)
	Dir    string              // where this package's bootstraps go: Dir/<LogicalId>/bootstrap
	Getenv func(string) string // default os.Getenv
	Log    io.Writer           // the builds' output and why a prebuilt bootstrap was not used; default io.Discard
	// LockFile serialises the builds of every test process that names the
	// same file; default ucs-bootstrap-build.lock in os.TempDir().
	LockFile string
}

// HostBootstraps returns, by logical id, a bootstrap for this machine of
// each function, at cfg.Dir/<LogicalId>/bootstrap: this package's own path,
// so that its tests can tell their function processes from another
// package's by the executable's path.
//
// With $UCS_BOOTSTRAP_DIR set, a prebuilt bootstrap there is linked (or
// copied) when it is newer than every source (see NewestSource). Otherwise,
// or when it is missing or stale, the function is built with the Makefile
// (build.Builder, as `local build` does), one function at a time and one
// test process at a time (a lock file): packages tested in parallel then
// share go's build cache instead of compiling the same packages at once,
// and the second one only links.
func HostBootstraps(ctx context.Context, cfg BootstrapConfig, fns []*samtemplate.Function) (map[string]string, error) {
	getenv, log := cfg.Getenv, cfg.Log
	if getenv == nil {
		getenv = os.Getenv
	}
	if log == nil {
		log = io.Discard
	}
	newestPath, newest, err := NewestSource(cfg.Root)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	var toBuild []*samtemplate.Function
	prebuilt := getenv(EnvBootstrapDir)
	for _, f := range fns {
		if prebuilt == "" {
			toBuild = append(toBuild, f)
			continue
		}
		src := filepath.Join(prebuilt, f.LogicalID, "bootstrap")
		p, err := usePrebuilt(src, filepath.Join(cfg.Dir, f.LogicalID), newestPath, newest)
		if err != nil {
			fmt.Fprintf(log, "localtest: %s: %v; building it\n", f.LogicalID, err)
			toBuild = append(toBuild, f)
			continue
		}
		out[f.LogicalID] = p
	}
	if len(toBuild) == 0 {
		return out, nil
	}
	lockFile := cfg.LockFile
	if lockFile == "" {
		lockFile = filepath.Join(os.TempDir(), lockName)
	}
	unlock, err := lockBuilds(ctx, lockFile)
	if err != nil {
		return nil, err
	}
	defer unlock()
	b := &build.Builder{Dir: cfg.Dir}
	for _, f := range toBuild {
		var buf bytes.Buffer
		b.Log = io.MultiWriter(&buf, log)
		p, err := b.Build(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("localtest: %w\n%s", err, buf.String())
		}
		out[f.LogicalID] = p
	}
	return out, nil
}

// errStale says a prebuilt bootstrap is older than a source.
var errStale = errors.New("older than a source")

// usePrebuilt links (or copies) src to dir/bootstrap if src is an
// executable newer than the newest source, and returns the new path.
func usePrebuilt(src, dir, newestPath string, newest time.Time) (string, error) {
	st, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("no prebuilt bootstrap: %w", err)
	}
	if st.Mode()&0o111 == 0 || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not an executable file", src)
	}
	if st.ModTime().Before(newest) {
		return "", fmt.Errorf("%s is %w (%s)", src, errStale, newestPath)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("localtest: %w", err)
	}
	dst, err := filepath.Abs(filepath.Join(dir, "bootstrap"))
	if err != nil {
		return "", fmt.Errorf("localtest: %w", err)
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("localtest: remove the old bootstrap: %w", err)
	}
	if os.Link(src, dst) == nil {
		return dst, nil
	}
	if err := copyExecutable(src, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// copyExecutable copies src to a new executable file dst.
func copyExecutable(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("localtest: copy the bootstrap: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return fmt.Errorf("localtest: copy the bootstrap: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("localtest: copy the bootstrap to %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("localtest: copy the bootstrap to %s: %w", dst, err)
	}
	return nil
}
