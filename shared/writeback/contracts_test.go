package writeback_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/testkit/contractdoc"
	"github.com/acme/unified-customer-service/shared/writeback"
)

// after returns what follows marker's comment in section 11 of
// docs/contracts.md, the write-back.
func after(t *testing.T, marker string) string {
	t.Helper()
	sec := contractdoc.Section(t, contractdoc.Read(t), "11. Write-back (opt-in)")
	return contractdoc.After(t, sec, marker+": checked by shared/writeback/contracts_test.go")
}

// firstColumn returns the first cells of the table at the start of s.
func firstColumn(s string) []string {
	var out []string
	for _, row := range contractdoc.Table(s) {
		out = append(out, row[0])
	}
	return out
}

func TestContractsCorrectionTopicAndHeaders(t *testing.T) {
	if got := firstColumn(after(t, "correction-topic")); !slices.Equal(got, []string{writeback.TopicCorrections}) {
		t.Errorf("documented topic %v, want %s", got, writeback.TopicCorrections)
	}
	want := []string{writeback.HeaderEventID, writeback.HeaderSchemaVersion, writeback.HeaderSourceEventID}
	if got := firstColumn(after(t, "correction-headers")); !slices.Equal(got, want) {
		t.Errorf("documented headers %v, want %v", got, want)
	}
	const source = "8c3f0b6d2a8e4f1c9b7a6d5e4c3b2a19"
	sum := sha256.Sum256([]byte("ucs-sync-v1\x00" + source + "\x00correction"))
	if got := writeback.CorrectionID(source); got != hex.EncodeToString(sum[:16]) {
		t.Errorf("CorrectionID = %s, not the documented derivation", got)
	}
}

// TestContractsCorrectionValue: the quoted value is a Correction, member
// for member, and what CorrectionMessage writes has the same members.
func TestContractsCorrectionValue(t *testing.T) {
	quoted := contractdoc.CodeBlock(t, after(t, "correction-value"), "json")
	dec := json.NewDecoder(strings.NewReader(quoted))
	dec.DisallowUnknownFields()
	var c writeback.Correction
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("the documented value is not a Correction: %v", err)
	}
	for path, rule := range c.Rules {
		if _, ok := merge.FieldByPath(path); !ok || c.Fields[path] == nil {
			t.Errorf("rules names %q, which is not a field the value corrects", path)
		}
		if _, err := merge.ParseRules(path + "=" + string(rule)); err != nil {
			t.Errorf("rule %q: %v", rule, err)
		}
	}

	var doc, written map[string]json.RawMessage
	if err := json.Unmarshal([]byte(quoted), &doc); err != nil {
		t.Fatal(err)
	}
	a, b := rec(tB), rec(tA, "address.city", "Potsdam")
	res := merge.Merge(a, b, merge.DefaultRules())
	plan := writeback.PlanOf(&res)
	msg, err := writeback.CorrectionMessage("ada@example.com", &res, &plan, "e1", tA)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(msg.Value, &written); err != nil {
		t.Fatal(err)
	}
	docKeys, writtenKeys := keys(doc), keys(written)
	if !slices.Equal(docKeys, writtenKeys) {
		t.Errorf("documented members %v, written %v", docKeys, writtenKeys)
	}
	if !bytes.Contains(msg.Value, []byte(`"fields":{"address.city":"Potsdam"}`)) {
		t.Errorf("fields are not keyed by path: %s", msg.Value)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
