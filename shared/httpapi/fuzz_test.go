package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// maxDepth returns how deeply objects and arrays nest in data, scanning the
// bytes (strings and escapes skipped) independently of encoding/json.
func maxDepth(data []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// hasFoldedDuplicate reports whether an object in the (valid) JSON data has
// two keys that strings.EqualFold says are equal, which encoding/json would
// decode into the same struct field.
func hasFoldedDuplicate(t *testing.T, data []byte) bool {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   []string
		atKey  bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.atKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key := tok.(string)
			for _, k := range top.keys {
				if strings.EqualFold(k, key) {
					return true
				}
			}
			top.keys = append(top.keys, key)
			top.atKey = false
			continue
		}
		if top != nil && top.object {
			top.atKey = true // this token is the key's value (or opens it)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, atKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// decodeBoth decodes data with DecodeStrict and, when that accepts, with
// encoding/json into a fresh value of the same type, and insists they agree.
func decodeBoth[T any](t *testing.T, data []byte) (accepted bool) {
	t.Helper()
	var strict T
	err := DecodeStrict(data, &strict)
	if err != nil {
		msg := err.Error()
		if strings.ContainsRune(msg, '@') || len(msg) > 200 {
			t.Fatalf("error %q quotes input or is too long", msg)
		}
		return false
	}
	var plain T
	if err := json.Unmarshal(data, &plain); err != nil {
		t.Fatalf("DecodeStrict accepted %q, encoding/json refuses it: %v", data, err)
	}
	if !reflect.DeepEqual(strict, plain) {
		t.Fatalf("DecodeStrict(%q) = %#v, encoding/json = %#v", data, strict, plain)
	}
	return true
}

func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@x.com"}`, `{"emails":["a@x.com","b@x.com"],"limit":3}`, `{"email":null}`,
		`{"email":"a","email":"b"}`, `{"email":"a","EMAIL":"b"}`, `{"emails":[],"email\u017f":[]}`,
		`{"a":{"b":{"a":1,"A":2}}}`, `[1,"two",{"3":null},true,false,-0.5e3]`, `"just a string"`, `12`,
		`{"email":"a\u0000b"}`, "{\"email\":\"\xff\"}", `{"x":1} {}`, `{"limit":1e400}`, `{"k":1,"\u212a":2}`,
		nested(MaxNesting), nested(MaxNesting + 1), strings.Repeat(`{"a":`, 100), `{"\"":1,"\\\"":2}`,
		`{"ada@example.com":1,"ada@example.com":2}`, ` `, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		acceptedAny := decodeBoth[any](t, data)
		acceptedTarget := decodeBoth[target](t, data)
		if !acceptedAny && !acceptedTarget {
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted invalid UTF-8 %q", data)
		}
		if d := maxDepth(data); d > MaxNesting {
			t.Fatalf("accepted %q nesting %d levels", data, d)
		}
		if hasFoldedDuplicate(t, data) {
			t.Fatalf("accepted %q with a repeated key", data)
		}
	})
}
