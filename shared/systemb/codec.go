package systemb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// ErrBadData is returned (wrapped) when System B sends a document that breaks
// its contract (invalid JSON, a wrong type, a missing or unparsable
// lastUpdated). Nothing of such a document is used.
var ErrBadData = errors.New("systemb: data breaks the System B contract")

// AppendCustomer appends the System B API v1 JSON of r to dst. Paths in
// merge.Fields map to nested objects ("address.city" -> address.city); absent
// values are written as null.
func AppendCustomer(dst []byte, r *merge.Record) []byte {
	dst = append(dst, '{')
	open := "" // the nested object currently open, "" for the top level
	first := true
	for i, f := range merge.Fields {
		parent, name, nested := strings.Cut(f.Path, ".")
		if !nested {
			name, parent = parent, ""
		}
		if parent != open {
			if open != "" {
				dst = append(dst, '}')
			}
			if parent != "" {
				if !first {
					dst = append(dst, ',')
				}
				dst = appendJSONString(dst, parent)
				dst = append(dst, ':', '{')
				first = true
			}
			open = parent
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, name)
		dst = append(dst, ':')
		v := r.Values[i]
		switch {
		case v == "":
			dst = append(dst, "null"...)
		case f.Kind == merge.KindBool:
			dst = append(dst, v...)
		default:
			dst = appendJSONString(dst, v)
		}
	}
	if open != "" {
		dst = append(dst, '}')
	}
	dst = append(dst, `,"lastUpdated":`...)
	dst = appendJSONString(dst, r.LastUpdated.UTC().Format(time.RFC3339Nano))
	return append(dst, '}')
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// UnmarshalCustomer decodes one System B API v1 customer document. Unknown
// fields are ignored; a wrong type, a missing email or a missing or
// unparsable lastUpdated is an error wrapping ErrBadData.
func UnmarshalCustomer(data []byte) (*merge.Record, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("systemb: decode customer: %w: %v", ErrBadData, err)
	}
	if top == nil {
		return nil, fmt.Errorf("systemb: decode customer: %w: not an object", ErrBadData)
	}
	var r merge.Record
	nested := map[string]map[string]json.RawMessage{}
	for i, f := range merge.Fields {
		parent, name, isNested := strings.Cut(f.Path, ".")
		obj := top
		if isNested {
			sub, ok := nested[parent]
			if !ok {
				if raw := top[parent]; len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
					if err := json.Unmarshal(raw, &sub); err != nil {
						return nil, fmt.Errorf("systemb: decode customer: %w: %s: %v", ErrBadData, parent, err)
					}
				}
				nested[parent] = sub
			}
			obj = sub
		} else {
			name = parent
		}
		raw, ok := obj[name]
		if !ok || bytes.Equal(raw, []byte("null")) {
			continue
		}
		v, err := decodeValue(f.Kind, raw)
		if err != nil {
			return nil, fmt.Errorf("systemb: decode customer: %w: %s: %v", ErrBadData, f.Path, err)
		}
		r.Values[i] = v
	}
	if strings.TrimSpace(r.Values[merge.FieldEmail]) == "" {
		return nil, fmt.Errorf("systemb: decode customer: %w: email is missing", ErrBadData)
	}
	var ts string
	if raw, ok := top["lastUpdated"]; ok {
		if err := json.Unmarshal(raw, &ts); err != nil {
			return nil, fmt.Errorf("systemb: decode customer: %w: lastUpdated: %v", ErrBadData, err)
		}
	}
	t, err := time.Parse(time.RFC3339, ts)
	if y := t.UTC().Year(); err == nil && (y < 0 || y > 9999) {
		err = errors.New("year out of range")
	}
	if err != nil {
		return nil, fmt.Errorf("systemb: decode customer: %w: lastUpdated is missing or not RFC 3339", ErrBadData)
	}
	r.LastUpdated = t.UTC()
	return &r, nil
}

func decodeValue(k merge.Kind, raw json.RawMessage) (string, error) {
	if k == merge.KindBool {
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", fmt.Errorf("want a boolean or null")
		}
		if b {
			return "true", nil
		}
		return "false", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("want a string or null")
	}
	return s, nil
}

// decodePage decodes a list page {"items": [...], "nextCursor": "..."|null}
// appending its records to dst. Both members are required; nextCursor is a
// non-empty string (more is true) or null (the last page).
func decodePage(data []byte, dst []merge.Record) (items []merge.Record, next string, more bool, err error) {
	var pg struct {
		Items      *[]json.RawMessage `json:"items"`
		NextCursor json.RawMessage    `json:"nextCursor"`
	}
	if err := json.Unmarshal(data, &pg); err != nil {
		return dst, "", false, fmt.Errorf("systemb: decode page: %w: %v", ErrBadData, err)
	}
	if pg.Items == nil {
		return dst, "", false, fmt.Errorf("systemb: decode page: %w: items is missing", ErrBadData)
	}
	switch {
	case pg.NextCursor == nil:
		return dst, "", false, fmt.Errorf("systemb: decode page: %w: nextCursor is missing", ErrBadData)
	case bytes.Equal(pg.NextCursor, []byte("null")):
	default:
		if err := json.Unmarshal(pg.NextCursor, &next); err != nil || next == "" {
			return dst, "", false, fmt.Errorf("systemb: decode page: %w: nextCursor is not a non-empty string or null", ErrBadData)
		}
		more = true
	}
	for i, raw := range *pg.Items {
		r, err := UnmarshalCustomer(raw)
		if err != nil {
			return dst, "", false, fmt.Errorf("systemb: decode page: item %d: %w", i, err)
		}
		dst = append(dst, *r)
	}
	return dst, next, more, nil
}
