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

// This file holds the reference the codec is checked and measured against:
// encoding/json into a typed struct, with the codec's validation (email
// required and not blank, lastUpdated required and RFC 3339 within years
// 0..9999 in UTC, nothing after the document). Its known differences from
// the codec are listed by jsonDiffers.

// stdAddress is the address object of a System B customer.
type stdAddress struct {
	Line1      string `json:"line1"`
	City       string `json:"city"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

// stdCustomer is a System B customer as encoding/json decodes it. A null
// or absent string is "", like an empty one, as in the codec.
type stdCustomer struct {
	Email          string      `json:"email"`
	FirstName      string      `json:"firstName"`
	LastName       string      `json:"lastName"`
	Phone          string      `json:"phone"`
	Address        *stdAddress `json:"address"`
	MarketingOptIn *bool       `json:"marketingOptIn"`
	LoyaltyTier    string      `json:"loyaltyTier"`
	LastUpdated    *string     `json:"lastUpdated"`
}

// record validates c and converts it into r.
func (c *stdCustomer) record(r *merge.Record) error {
	*r = merge.Record{}
	r.Values[merge.FieldEmail] = c.Email
	r.Values[merge.FieldFirstName] = c.FirstName
	r.Values[merge.FieldLastName] = c.LastName
	r.Values[merge.FieldPhone] = c.Phone
	if a := c.Address; a != nil {
		r.Values[merge.FieldAddressLine1] = a.Line1
		r.Values[merge.FieldCity] = a.City
		r.Values[merge.FieldPostalCode] = a.PostalCode
		r.Values[merge.FieldCountry] = a.Country
	}
	if c.MarketingOptIn != nil {
		r.Values[merge.FieldMarketingOptIn] = fmt.Sprint(*c.MarketingOptIn)
	}
	r.Values[merge.FieldLoyaltyTier] = c.LoyaltyTier
	if strings.TrimSpace(c.Email) == "" {
		return errors.New("email is missing")
	}
	if c.LastUpdated == nil {
		return errors.New("lastUpdated is missing")
	}
	t, err := time.Parse(time.RFC3339, *c.LastUpdated)
	if err != nil {
		return errors.New("lastUpdated is not RFC 3339")
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return errors.New("lastUpdated is out of range")
	}
	r.LastUpdated = t
	return nil
}

// stdUnmarshalCustomer is UnmarshalCustomer with encoding/json.
func stdUnmarshalCustomer(data []byte) (*merge.Record, error) {
	var c stdCustomer
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("systemb: decode customer: %w: %v", ErrBadData, err)
	}
	r := new(merge.Record)
	if err := c.record(r); err != nil {
		return nil, fmt.Errorf("systemb: decode customer: %w: %v", ErrBadData, err)
	}
	return r, nil
}

// stdPage is a list page whose items are decoded one by one, so that a bad
// item does not spoil the page.
type stdPage struct {
	Items      *[]json.RawMessage `json:"items"`
	NextCursor *string            `json:"nextCursor"`
	hasCursor  bool
}

// UnmarshalJSON notes whether nextCursor is present (null included).
func (p *stdPage) UnmarshalJSON(b []byte) error {
	var m struct {
		Items      *[]json.RawMessage `json:"items"`
		NextCursor json.RawMessage    `json:"nextCursor"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	p.Items = m.Items
	p.hasCursor = m.NextCursor != nil
	if p.hasCursor && !bytes.Equal(m.NextCursor, []byte("null")) {
		var s string
		if err := json.Unmarshal(m.NextCursor, &s); err != nil {
			return err
		}
		p.NextCursor = &s
	}
	return nil
}

// stdPageResult is what stdDecodePage found: the records in item order,
// nil for an item that was refused.
type stdPageResult struct {
	items []*merge.Record
	next  string
	more  bool
}

// stdDecodePage is decodePage with encoding/json: the envelope into a
// struct, each item into a stdCustomer.
func stdDecodePage(data []byte) (stdPageResult, error) {
	var p stdPage
	var res stdPageResult
	if err := json.Unmarshal(data, &p); err != nil {
		return res, fmt.Errorf("systemb: decode page: %w: %v", ErrBadData, err)
	}
	switch {
	case p.Items == nil:
		return res, fmt.Errorf("systemb: decode page: %w: items is missing", ErrBadData)
	case !p.hasCursor:
		return res, fmt.Errorf("systemb: decode page: %w: nextCursor is missing", ErrBadData)
	case p.NextCursor != nil && *p.NextCursor == "":
		return res, fmt.Errorf("systemb: decode page: %w: nextCursor is empty", ErrBadData)
	}
	if p.NextCursor != nil {
		res.next, res.more = *p.NextCursor, true
	}
	for _, raw := range *p.Items {
		var c stdCustomer
		r := new(merge.Record)
		if json.Unmarshal(raw, &c) != nil || c.record(r) != nil {
			r = nil
		}
		res.items = append(res.items, r)
	}
	return res, nil
}

// jsonDiffers reports whether data holds something on which the codec
// and encoding/json are known to disagree, so that a comparison of the two
// would be meaningless:
//
//   - a member name given twice in one object (the codec refuses the
//     document; encoding/json keeps the last value);
//   - a member name that matches a field of the contract only when case is
//     ignored ("EMAIL"; encoding/json fills the field, the codec ignores
//     the member as unknown);
//   - nesting deeper than the codec's limit (maxDepth; encoding/json allows
//     10000).
//
// It walks data with json.Decoder; a document it cannot walk is not
// reported (both decoders refuse invalid JSON).
func jsonDiffers(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object  bool
		names   map[string]bool
		wantKey bool
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
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.wantKey = true
				}
				stack = append(stack, &frame{object: v == '{', names: map[string]bool{}, wantKey: true})
				if len(stack) > maxDepth {
					return true
				}
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.object && top.wantKey {
				if top.names[v] || caseOnlyMatch(v) {
					return true
				}
				top.names[v] = true
				top.wantKey = false
				continue
			}
		}
		if top != nil && top.object {
			top.wantKey = true
		}
	}
}

// caseOnlyMatch reports whether name equals a member name of the contract
// when case is ignored, but not exactly.
func caseOnlyMatch(name string) bool {
	for _, f := range merge.Fields {
		parent, child, _ := strings.Cut(f.Path, ".")
		for _, n := range []string{parent, child, "lastUpdated", "items", "nextCursor"} {
			if n != "" && n != name && strings.EqualFold(n, name) {
				return true
			}
		}
	}
	return false
}
