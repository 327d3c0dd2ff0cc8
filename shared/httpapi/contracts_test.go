package httpapi

import (
	"strconv"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/testkit/contractdoc"
)

// TestContractsStatusTable keeps the table of failure kinds in
// docs/contracts.md equal to Status and Reason: one row per kind, in
// merge.ErrorKinds' order, then internal.
func TestContractsStatusTable(t *testing.T) {
	rows := contractdoc.Table(contractdoc.After(t, contractdoc.Read(t), "status-table: checked by shared/httpapi/contracts_test.go"))
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
