package httpapi

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
)

// TestContractsStatusTable keeps the table of failure kinds in
// docs/contracts.md equal to Status and Reason: one row per kind, in
// merge.ErrorKinds' order, then internal.
func TestContractsStatusTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/contracts.md")
	if err != nil {
		t.Fatalf("read the contracts: %v", err)
	}
	_, table, ok := strings.Cut(string(b), "<!-- status-table: checked by shared/httpapi/contracts_test.go -->\n")
	if !ok {
		t.Fatal("the status-table marker is missing from docs/contracts.md")
	}
	var rows [][]string
	for i, line := range strings.Split(table, "\n") {
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
	all := merge.ErrorKinds()
	kinds := append(all[:], KindInternal)
	if len(rows) != len(kinds) {
		t.Fatalf("the table has %d rows, want %d (every kind and internal)", len(rows), len(kinds))
	}
	for i, k := range kinds {
		row := rows[i]
		name := string(k)
		if k == KindInternal {
			name = "*(none: internal)*"
		}
		if len(row) != 4 || row[0] != name || row[1] != Reason(k) || row[2] != strconv.Itoa(Status(k)) {
			t.Errorf("row %d = %q, want kind %q, reason %q, status %d", i, row, name, Reason(k), Status(k))
		}
	}
}
