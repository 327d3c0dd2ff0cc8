//go:build bench

package benchmarks

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestE2EBootstrapSizes builds every function of the template for Lambda
// (linux/arm64) and for this machine with the Makefile's build-<LogicalId>
// targets (the recipe `make build` and `sam build` run) and prints the
// bootstraps' sizes.
func TestE2EBootstrapSizes(t *testing.T) {
	tpl := loadTemplate(t)
	dir := t.TempDir()
	tb := &table{header: []string{"function", "linux/arm64 (Lambda) bytes", runtime.GOOS + "/" + runtime.GOARCH + " (this machine) bytes"}}
	for _, f := range tpl.Functions {
		var cells []string
		for _, target := range [][2]string{{"linux", "arm64"}, {"", ""}} {
			p := buildFunction(t, f, filepath.Join(dir, target[0]+target[1]), target[0], target[1])
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			cells = append(cells, fmt.Sprintf("%d", st.Size()))
		}
		tb.add(append([]string{f.LogicalID}, cells...)...)
	}
	t.Logf("\nBootstrap sizes (make build-<LogicalId>: -trimpath -ldflags \"-s -w\" -tags lambda.norpc)\n%s", tb)
}
