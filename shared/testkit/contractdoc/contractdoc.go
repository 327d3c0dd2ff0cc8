// Package contractdoc reads docs/contracts.md for the tests that keep it
// true against the code (the field table, the status table, the change
// events, the write-back, the webhook example): its sections, the tables
// and code blocks after a marker comment. It imports nothing of the
// service, so any package's tests can use it.
package contractdoc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Read returns docs/contracts.md, found from the test's working directory
// (its package directory) up to the module root.
func Read(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("contractdoc: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			b, err := os.ReadFile(filepath.Join(dir, "docs", "contracts.md"))
			if err != nil {
				t.Fatalf("contractdoc: read the contracts: %v", err)
			}
			return string(b)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("contractdoc: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Section returns the section of doc whose heading starts "## "+heading
// (e.g. "9." or "11. Write-back"), up to the next "## " heading.
func Section(t testing.TB, doc, heading string) string {
	t.Helper()
	start := strings.Index(doc, "\n## "+heading)
	if start < 0 {
		t.Fatalf("docs/contracts.md has no section %q", heading)
	}
	rest := doc[start+1:]
	if end := strings.Index(rest, "\n## "); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

// After returns what follows the line "<!-- marker -->" in text.
func After(t testing.TB, text, marker string) string {
	t.Helper()
	_, rest, ok := strings.Cut(text, "<!-- "+marker+" -->\n")
	if !ok {
		t.Fatalf("the marker <!-- %s --> is missing from docs/contracts.md", marker)
	}
	return rest
}

// Table returns the rows of the Markdown table text starts with, header and
// separator left out, each cell trimmed of spaces and backquotes.
func Table(text string) [][]string {
	var rows [][]string
	for i, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if i < 2 { // header and separator
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.Trim(strings.TrimSpace(c), "`"))
		}
		rows = append(rows, cells)
	}
	return rows
}

// CodeBlock returns the first fenced block of the language lang in text.
func CodeBlock(t testing.TB, text, lang string) string {
	t.Helper()
	_, after, ok := strings.Cut(text, "```"+lang+"\n")
	if !ok {
		t.Fatalf("docs/contracts.md: no ```%s block where expected", lang)
	}
	block, _, _ := strings.Cut(after, "```")
	return block
}
