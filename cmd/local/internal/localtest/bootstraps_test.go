package localtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

// fakeRepo lays out the files NewestSource stats, all modified at mod, and
// a Makefile whose build-<LogicalId> writes a shell script bootstrap that
// prints "built", except build-Broken, which fails.
func fakeRepo(t *testing.T, mod time.Time) string {
	t.Helper()
	root := t.TempDir()
	mk := "build-Broken:\n\t@echo compiler says no; false\n" +
		"build-%:\n\tprintf '#!/bin/sh\\necho built\\n' > $(ARTIFACTS_DIR)/bootstrap && chmod +x $(ARTIFACTS_DIR)/bootstrap\n"
	files := map[string]string{
		"go.mod": "module x\n", "go.sum": "", "Makefile": mk, "template.yaml": "",
		"functions/lookup/main.go": "package main\n", "shared/merge/merge.go": "package merge\n",
		"shared/merge/merge_test.go": "package merge\n",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// prebuilt writes dir/<id>/bootstrap, a script that prints "prebuilt",
// modified at mod.
func prebuilt(t *testing.T, dir, id string, mod time.Time) {
	t.Helper()
	p := filepath.Join(dir, id, "bootstrap")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho prebuilt\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestNewestSource(t *testing.T) {
	base := time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC)
	root := fakeRepo(t, base)
	// A test file is newer than everything: it does not count.
	if err := os.Chtimes(filepath.Join(root, "shared/merge/merge_test.go"), base.Add(time.Hour), base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(root, "functions/lookup/main.go")
	if err := os.Chtimes(newer, base.Add(time.Minute), base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	p, mod, err := NewestSource(root)
	if err != nil || p != newer || !mod.Equal(base.Add(time.Minute)) {
		t.Errorf("NewestSource = %s, %v, %v; want %s at %v", p, mod, err, newer, base.Add(time.Minute))
	}
	if err := os.Remove(filepath.Join(root, "go.sum")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewestSource(root); err == nil || !strings.Contains(err.Error(), "go.sum") {
		t.Errorf("NewestSource without go.sum: %v, want an error naming it", err)
	}
}

func TestHostBootstraps(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil || runtime.GOOS == "windows" {
		t.Skip("the fake bootstraps are shell scripts")
	}
	sources := time.Date(2026, 11, 24, 3, 30, 0, 0, time.UTC)
	fresh, stale := sources.Add(time.Minute), sources.Add(-time.Minute)
	tests := []struct {
		name     string
		env      bool                 // set UCS_BOOTSTRAP_DIR
		prebuilt map[string]time.Time // prebuilt bootstraps and their times
		ids      []string
		want     map[string]string // what each bootstrap prints
		wantErr  string
		wantLog  string
	}{
		{"no variable: built", false, map[string]time.Time{"A": fresh}, []string{"A"}, map[string]string{"A": "built"}, "", ""},
		{"fresh prebuilt: used", true, map[string]time.Time{"A": fresh, "B": fresh}, []string{"A", "B"},
			map[string]string{"A": "prebuilt", "B": "prebuilt"}, "", ""},
		{"as new as the sources: used", true, map[string]time.Time{"A": sources}, []string{"A"}, map[string]string{"A": "prebuilt"}, "", ""},
		{"stale prebuilt: built", true, map[string]time.Time{"A": stale, "B": fresh}, []string{"A", "B"},
			map[string]string{"A": "built", "B": "prebuilt"}, "", "A: " + "PREBUILT/A/bootstrap is older than a source"},
		{"missing prebuilt: built", true, map[string]time.Time{}, []string{"A"}, map[string]string{"A": "built"}, "", "A: no prebuilt bootstrap"},
		{"build fails: its output in the error", false, nil, []string{"Broken"}, nil, "compiler says no", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeRepo(t, sources)
			pre := t.TempDir()
			for id, mod := range tc.prebuilt {
				prebuilt(t, pre, id, mod)
			}
			var fns []*samtemplate.Function
			for _, id := range tc.ids {
				fns = append(fns, &samtemplate.Function{LogicalID: id, CodeURI: root, BuildMethod: "makefile"})
			}
			env := map[string]string{}
			if tc.env {
				env[EnvBootstrapDir] = pre
			}
			var log Buffer
			dir := t.TempDir()
			got, err := HostBootstraps(context.Background(), BootstrapConfig{
				Root: root, Dir: dir, Getenv: func(k string) string { return env[k] }, Log: &log,
				LockFile: filepath.Join(t.TempDir(), "lock"),
			}, fns)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %v, want %d bootstraps", got, len(tc.want))
			}
			for id, want := range tc.want {
				if p := got[id]; p != filepath.Join(dir, id, "bootstrap") {
					t.Errorf("%s: %s, want it under this package's directory %s", id, p, dir)
				}
				out, err := runBootstrap(got[id])
				if err != nil || out != want {
					t.Errorf("%s prints %q (%v), want %q", id, out, err, want)
				}
			}
			wantLog := strings.ReplaceAll(tc.wantLog, "PREBUILT", pre)
			if !strings.Contains(log.String(), wantLog) {
				t.Errorf("log %q lacks %q", log.String(), wantLog)
			}
			// A prebuilt bootstrap is never changed.
			for id, mod := range tc.prebuilt {
				st, err := os.Stat(filepath.Join(pre, id, "bootstrap"))
				if err != nil || !st.ModTime().Equal(mod) {
					t.Errorf("prebuilt %s changed: %v", id, err)
				}
			}
		})
	}
}

func TestLockBuilds(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := lockBuilds(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// Held: a second taker waits until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := lockBuilds(ctx, path); !errors.Is(err, context.Canceled) {
		t.Errorf("second lock while held: %v, want context.Canceled", err)
	}
	unlock()
	unlock2, err := lockBuilds(context.Background(), path)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
	if _, err := lockBuilds(context.Background(), filepath.Join(t.TempDir(), "no", "such", "dir", "lock")); err == nil {
		t.Error("a lock file in a missing directory gave no error")
	}
}

// runBootstrap runs p and returns what it printed, trimmed.
func runBootstrap(p string) (string, error) {
	out, err := exec.Command(p).Output()
	return strings.TrimSpace(string(out)), err
}
