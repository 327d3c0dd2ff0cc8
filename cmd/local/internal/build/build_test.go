package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	src := t.TempDir()
	// A Makefile that honours the contract, one that writes nothing, one that fails.
	mk := "build-Good:\n\tprintf '#!/bin/sh\\necho $(GOOS)/$(GOARCH)\\n' > $(ARTIFACTS_DIR)/bootstrap && chmod +x $(ARTIFACTS_DIR)/bootstrap\n" +
		"build-Lazy:\n\ttrue\n" +
		"build-Broken:\n\tfalse\n"
	if err := os.WriteFile(filepath.Join(src, "Makefile"), []byte(mk), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Builder{Dir: dir, GOOS: "plan9", GOARCH: "mips"}
	fn := func(id, method string) *samtemplate.Function {
		return &samtemplate.Function{LogicalID: id, CodeURI: src, BuildMethod: method}
	}
	p, err := b.Build(context.Background(), fn("Good", "makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !strings.Contains(string(got), "plan9/mips") {
		t.Errorf("GOOS/GOARCH were not passed to make: %s", got)
	}
	if e, err := b.Existing(fn("Good", "makefile")); err != nil || e != p {
		t.Errorf("Existing = %q, %v", e, err)
	}
	tests := []struct {
		id, method, want string
		is               error
	}{
		{"Lazy", "makefile", "wrote no", nil},
		{"Broken", "makefile", "make", nil},
		{"Other", "esbuild", "unsupported", ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			_, err := b.Build(context.Background(), fn(tc.id, tc.method))
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := b.Existing(fn("Never", "makefile")); err == nil {
		t.Errorf("Existing found a bootstrap never built")
	}
}
