package merge

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot\n%s\nwant\n%s", name, got, want)
	}
}

func TestRecordMarshalJSONGolden(t *testing.T) {
	records := []struct {
		name string
		r    *Record
	}{
		{"full", typicalA(t)},
		{"absent values are null, text trimmed", rec(t, t0, "email", " a@x.io ", "phone", "  ", "address.city", "Oslo", "marketingOptIn", "false")},
		{"escaping", rec(t, t0, "email", "a@x.io", "firstName", "Ann \"A\" \\ <b>&", "lastName", "line\nbreak\ttab\x01",
			"address.line1", "bad\xffutf8 \u2028sep", "loyaltyTier", "gold ✨")},
		{"unreadable bool is null", rec(t, t0, "email", "a@x.io", "marketingOptIn", "maybe")},
		{"empty record", &Record{}},
	}
	var out bytes.Buffer
	for _, tt := range records {
		b, err := tt.r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !json.Valid(b) {
			t.Fatalf("%s: invalid JSON %s", tt.name, b)
		}
		out.WriteString("# " + tt.name + "\n")
		out.Write(b)
		out.WriteByte('\n')
	}
	golden(t, "customer.golden.jsonl", out.Bytes())
}

// TestRecordJSONRoundTrip checks the JSON against encoding/json's reading of
// it: every value is JSONValue of the field, at the field's nested path.
func TestRecordJSONRoundTrip(t *testing.T) {
	r := rec(t, t0, "email", "a@x.io", "firstName", "Ann \"A\" \\ <b>&\u2029", "lastName", "x\x00y",
		"address.postalCode", "10 117", "marketingOptIn", "1")
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	for i, f := range Fields {
		got, ok := lookupPath(doc, f.Path)
		if !ok {
			t.Errorf("%s missing from %s", f.Path, b)
			continue
		}
		if want := JSONValue(FieldID(i), r.Values[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", f.Path, got, want)
		}
	}
}

// lookupPath finds a dotted path in a decoded JSON object.
func lookupPath(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, seg := range splitPath(path) {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func splitPath(p string) []string {
	var segs []string
	for {
		i := bytes.IndexByte([]byte(p), '.')
		if i < 0 {
			return append(segs, p)
		}
		segs, p = append(segs, p[:i]), p[i+1:]
	}
}

func TestJSONValue(t *testing.T) {
	tests := []struct {
		name string
		id   FieldID
		in   string
		want any
	}{
		{"absent", FieldFirstName, "", nil},
		{"whitespace only", FieldFirstName, "  ", nil},
		{"trimmed string", FieldFirstName, " Anna ", "Anna"},
		{"bool true", FieldMarketingOptIn, "true", true},
		{"bool false", FieldMarketingOptIn, "false", false},
		{"bool 0", FieldMarketingOptIn, "0", false},
		{"bool absent", FieldMarketingOptIn, "", nil},
		{"bool unreadable", FieldMarketingOptIn, "maybe", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := JSONValue(tt.id, tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("JSONValue(%v, %q) = %#v, want %#v", tt.id, tt.in, got, tt.want)
			}
		})
	}
}
