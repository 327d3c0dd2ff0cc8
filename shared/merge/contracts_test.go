package merge

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/testkit/contractdoc"
)

// TestContractsFieldTable keeps the field table of docs/contracts.md equal to
// Fields: same fields in the same order, same column, B path and kind.
func TestContractsFieldTable(t *testing.T) {
	rows := contractdoc.Table(contractdoc.After(t, contractdoc.Read(t), "field-table: checked by shared/merge/contracts_test.go"))
	if len(rows) != NumFields {
		t.Fatalf("the field table has %d rows, merge.Fields %d", len(rows), NumFields)
	}
	for i, f := range Fields {
		row := rows[i]
		if len(row) != 5 {
			t.Fatalf("row %d has %d cells: %q", i, len(row), row)
		}
		want := []string{f.Path, f.Column, f.Path, f.Kind.String()}
		for j, w := range want {
			if row[j] != w {
				t.Errorf("row %d (%s), column %d = %q, want %q", i, f.Path, j+1, row[j], w)
			}
		}
	}
}

// TestContractsSchema checks that the documented System A DDL has a column
// for every field, and the other contract facts the code relies on.
func TestContractsSchema(t *testing.T) {
	doc := contractdoc.Read(t)
	ddl := contractdoc.CodeBlock(t, contractdoc.Section(t, doc, "1. "), "sql")
	create, _, _ := strings.Cut(ddl, ") WITHOUT ROWID;")
	columns := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+([a-z_0-9]+)\s+(TEXT|INTEGER)`).FindAllStringSubmatch(create, -1) {
		columns[m[1]] = true
	}
	for _, f := range Fields {
		if !columns[f.Column] {
			t.Errorf("the documented schema has no column %q for %s", f.Column, f.Path)
		}
	}
	if want := len(Fields) + 1; len(columns) != want { // + last_updated
		t.Errorf("the documented schema has %d columns, want %d (fields and last_updated)", len(columns), want)
	}
	for _, must := range []string{"last_updated     TEXT NOT NULL", "'schema_version', '1'", "'exported_at'", "journal_mode=DELETE"} {
		if !strings.Contains(doc, must) {
			t.Errorf("docs/contracts.md does not say %q", must)
		}
	}
}

// TestContractsUnifiedExample checks that the documented unified customer
// JSON has every field at its path and nothing else.
func TestContractsUnifiedExample(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(contractdoc.CodeBlock(t, contractdoc.Section(t, contractdoc.Read(t), "3. "), "json")), &doc); err != nil {
		t.Fatalf("the unified customer example is not JSON: %v", err)
	}
	var empty Record
	var want map[string]any
	b, _ := empty.MarshalJSON()
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if !sameShape(doc, want) {
		t.Errorf("the documented unified customer %v does not have the shape of Record.MarshalJSON %s", doc, b)
	}
}

// sameShape reports whether two decoded JSON objects have the same keys at
// every level.
func sameShape(x, y map[string]any) bool {
	if len(x) != len(y) {
		return false
	}
	for k, vx := range x {
		vy, ok := y[k]
		if !ok {
			return false
		}
		mx, okx := vx.(map[string]any)
		my, oky := vy.(map[string]any)
		if okx != oky || (okx && !sameShape(mx, my)) {
			return false
		}
	}
	return true
}

// TestContractsRules checks the documented default rules and rule names.
func TestContractsRules(t *testing.T) {
	rules := contractdoc.Section(t, contractdoc.Read(t), "6. ")
	if !strings.Contains(rules, "Default (an empty setting): `"+DefaultRulesText+"`") {
		t.Errorf("section 6 does not give the default rules %q", DefaultRulesText)
	}
	for _, r := range ruleNames {
		if !strings.Contains(rules, "| `"+string(r)+"` |") {
			t.Errorf("section 6 does not describe rule %q", r)
		}
	}
}

// TestFieldTableInvariants checks what the code assumes of Fields: unique
// paths and columns, known kinds, and the fields of one nested object
// adjacent (so the JSON has no duplicate keys).
func TestFieldTableInvariants(t *testing.T) {
	paths, columns, closed := map[string]bool{}, map[string]bool{}, map[string]bool{}
	parent := ""
	for i, f := range Fields {
		if paths[f.Path] || columns[f.Column] {
			t.Errorf("field %d: path %q or column %q repeated", i, f.Path, f.Column)
		}
		paths[f.Path], columns[f.Column] = true, true
		if strings.HasPrefix(f.Kind.String(), "Kind(") {
			t.Errorf("field %s has an unknown kind %d", f.Path, f.Kind)
		}
		if id, ok := FieldByPath(f.Path); !ok || int(id) != i {
			t.Errorf("FieldByPath(%q) = %d, %v", f.Path, id, ok)
		}
		p := ""
		if dot := strings.LastIndexByte(f.Path, '.'); dot >= 0 {
			p = f.Path[:dot]
		}
		if p != parent {
			if p != "" && closed[p] {
				t.Errorf("the fields of %q are not adjacent", p)
			}
			closed[parent] = true
			parent = p
		}
	}
	if Fields[FieldEmail].Kind != KindEmail {
		t.Error("field FieldEmail is not the email")
	}
}
