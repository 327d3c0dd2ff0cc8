package changes_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/changes"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/testkit/contractdoc"
)

// section9 returns section 9 of docs/contracts.md, the change events.
func section9(t *testing.T) string {
	t.Helper()
	return contractdoc.Section(t, contractdoc.Read(t), "9. Change events")
}

// table returns the rows of the table after marker's comment in section 9.
func table(t *testing.T, marker string) [][]string {
	t.Helper()
	return contractdoc.Table(contractdoc.After(t, section9(t), marker+": checked by shared/changes/contracts_test.go"))
}

// TestContractsTopics: the topic table names the topic of each system.
func TestContractsTopics(t *testing.T) {
	rows := table(t, "change-topics")
	var got [][2]string
	for _, r := range rows {
		got = append(got, [2]string{r[0], r[1]})
	}
	var want [][2]string
	for _, src := range []merge.Source{merge.SystemA, merge.SystemB} {
		topic, err := changes.Topic(src)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, [2]string{string(src), topic})
	}
	if !slices.Equal(got, want) {
		t.Errorf("topic table = %v, want %v", got, want)
	}
}

// TestContractsHeaders: the header table names the headers Headers writes,
// in order, and the schema version.
func TestContractsHeaders(t *testing.T) {
	rows := table(t, "change-headers")
	var ev changes.Event
	var want []string
	for _, h := range ev.Headers() {
		want = append(want, h[0])
	}
	var got []string
	for _, r := range rows {
		got = append(got, r[0])
	}
	if !slices.Equal(got, want) {
		t.Errorf("header table = %v, want %v", got, want)
	}
	if len(rows) == 2 && !strings.HasPrefix(rows[1][1], changes.SchemaVersion+"`:") {
		t.Errorf("the %s row says %q, want it to start with the version %s", changes.HeaderSchemaVersion, rows[1][1], changes.SchemaVersion)
	}
}

// TestContractsOps: the op table lists the three ops with the before/after
// that New gives them.
func TestContractsOps(t *testing.T) {
	rows := table(t, "change-ops")
	r := record(t, "ada@example.com", "+44 1", t0)
	cases := map[changes.Op][2]*merge.Record{
		changes.OpCreate: {nil, r}, changes.OpUpdate: {r, r}, changes.OpDelete: {r, nil},
	}
	set := func(rec *merge.Record) string {
		if rec == nil {
			return "null"
		}
		return "set"
	}
	if len(rows) != len(cases) {
		t.Fatalf("op table has %d rows, want %d", len(rows), len(cases))
	}
	for _, row := range rows {
		c, ok := cases[changes.Op(row[0])]
		if !ok {
			t.Errorf("op table names %q, not an op", row[0])
			continue
		}
		ev, err := changes.New(merge.SystemA, c[0], c[1], "v", exported, now)
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Op) != row[0] || row[2] != set(c[0]) || row[3] != set(c[1]) {
			t.Errorf("op row %q: before %s after %s; New gives op %s with before %s after %s", row[0], row[2], row[3], ev.Op, set(c[0]), set(c[1]))
		}
	}
}

// TestContractsGolden: the envelope quoted in section 9 is the golden
// update-system-a.json, and its key and event-id are the ones Decode finds.
func TestContractsGolden(t *testing.T) {
	doc := section9(t)
	block := contractdoc.CodeBlock(t, contractdoc.After(t, doc, "change-golden: shared/changes/testdata/update-system-a.json"), "json")
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(block)); err != nil {
		t.Fatalf("the quoted envelope is not JSON: %v", err)
	}
	golden, err := os.ReadFile("testdata/update-system-a.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(compact.Bytes(), bytes.TrimSpace(golden)) {
		t.Errorf("the envelope in docs/contracts.md differs from testdata/update-system-a.json:\n%s\n%s", compact.Bytes(), golden)
	}
	m := regexp.MustCompile("key `([^`]+)`; headers `event-id: ([0-9a-f]+)`,\\s+`schema-version: ([^`]+)`").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("section 9 does not state the golden record's key and headers")
	}
	hs := []changes.Header{{Key: changes.HeaderEventID, Value: []byte(m[2])}, {Key: changes.HeaderSchemaVersion, Value: []byte(m[3])}}
	if _, err := changes.Decode([]byte(m[1]), compact.Bytes(), hs); err != nil {
		t.Errorf("the quoted record does not decode with its stated key and headers: %v", err)
	}
}
