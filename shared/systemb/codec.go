package systemb

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/acme/unified-customer-service/shared/merge"
)

// The codec is driven by merge.Fields: a field's Path is its JSON path in
// System B's document ("address.city" is member city of object address).
// Fields of one nested object must be contiguous in the table.

// layout holds, for every field, the JSON written before its value, and the
// JSON written between the last value and lastUpdated's.
type layout struct {
	before  [merge.NumFields]string
	beforeT string
}

// members maps the member names of System B's document to fields.
type members struct {
	top    map[string]member
	nested []map[string]merge.FieldID // by member.group
	names  []string                   // the nested objects' names, by member.group
}

// member is a top-level member: a field (group < 0) or a nested object.
type member struct {
	field merge.FieldID
	group int
}

var (
	codecLayout  = buildLayout()
	codecMembers = buildMembers()
)

func buildLayout() (l layout) {
	open := "" // the nested object currently open, "" for the top level
	sep := "{"
	for i, f := range merge.Fields {
		parent, name, nested := strings.Cut(f.Path, ".")
		if !nested {
			name, parent = parent, ""
		}
		var b []byte
		if parent != open {
			if open != "" {
				b = append(b, '}')
				sep = ","
			}
			if parent != "" {
				b = append(b, sep...)
				b = merge.AppendJSONString(b, parent)
				b = append(b, ':')
				sep = "{"
			}
			open = parent
		}
		b = append(b, sep...)
		b = merge.AppendJSONString(b, name)
		b = append(b, ':')
		l.before[i] = string(b)
		sep = ","
	}
	if open != "" {
		l.beforeT = "}"
	}
	l.beforeT += `,"lastUpdated":`
	return l
}

func buildMembers() members {
	m := members{top: map[string]member{}}
	groups := map[string]int{}
	for i, f := range merge.Fields {
		parent, name, nested := strings.Cut(f.Path, ".")
		if !nested {
			m.top[parent] = member{field: merge.FieldID(i), group: -1}
			continue
		}
		g, ok := groups[parent]
		if !ok {
			g = len(m.nested)
			groups[parent] = g
			m.nested = append(m.nested, map[string]merge.FieldID{})
			m.names = append(m.names, parent)
			m.top[parent] = member{group: g}
		}
		m.nested[g][name] = merge.FieldID(i)
	}
	return m
}

// AppendCustomer appends the System B API v1 JSON of r to dst. Paths in
// merge.Fields map to nested objects ("address.city" -> address.city); absent
// values are written as null, lastUpdated in RFC 3339 UTC (with fractional
// seconds only when it has them). Invalid UTF-8 is written as U+FFFD.
func AppendCustomer(dst []byte, r *merge.Record) []byte {
	for i, f := range merge.Fields {
		dst = append(dst, codecLayout.before[i]...)
		dst = appendValue(dst, f.Kind, r.Values[i])
	}
	dst = append(dst, codecLayout.beforeT...)
	dst = append(dst, '"')
	dst = r.LastUpdated.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"', '}')
}

// FieldSet is a set of fields (indexed by merge.FieldID): what a PATCH writes.
type FieldSet [merge.NumFields]bool

// Empty reports whether the set holds no field.
func (s *FieldSet) Empty() bool { return *s == FieldSet{} }

// AppendPatch appends the System B API v1.1 PATCH body that writes the
// fields of set to their values in r: a subset of the customer document
// (the same nesting and types as AppendCustomer, absent values as null)
// holding only those fields. The email (the join key, which a PATCH never
// changes) and lastUpdated (System B stamps its own) are never written.
func AppendPatch(dst []byte, r *merge.Record, set FieldSet) []byte {
	dst = append(dst, '{')
	open, first := "", true
	for i, f := range merge.Fields {
		if !set[i] || merge.FieldID(i) == merge.FieldEmail {
			continue
		}
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
				dst = merge.AppendJSONString(dst, parent)
				dst = append(dst, ':', '{')
				first = true
			}
			open = parent
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = merge.AppendJSONString(dst, name)
		dst = append(dst, ':')
		dst = appendValue(dst, f.Kind, r.Values[i])
	}
	if open != "" {
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendValue appends one field's value as System B writes it.
func appendValue(dst []byte, kind merge.Kind, v string) []byte {
	switch {
	case v == "":
		return append(dst, "null"...)
	case kind == merge.KindBool && v == "true":
		return append(dst, "true"...)
	case kind == merge.KindBool:
		return append(dst, "false"...)
	default:
		return merge.AppendJSONString(dst, v)
	}
}

// UnmarshalCustomer decodes one System B API v1 customer document. Unknown
// members are ignored; null and absent values are the same. A wrong type, a
// member of the field table given twice, a missing email, a missing or
// unparsable lastUpdated, or anything after the document is an error
// wrapping ErrBadData, whose message never quotes the document. Invalid
// UTF-8 in strings becomes U+FFFD, as with encoding/json.
func UnmarshalCustomer(data []byte) (*merge.Record, error) {
	d := decoder{data: data}
	r := new(merge.Record)
	err := d.customer(r)
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return nil, fmt.Errorf("systemb: decode customer: %w: %v", ErrBadData, err)
	}
	return r, nil
}

// decodedPage is a decoded list page.
type decodedPage struct {
	// items holds every item in page order; a bad item's slot is the zero
	// Record.
	items []merge.Record
	// bad lists the items that do not fit the contract, in page order.
	bad  []badItem
	next string // the cursor of the next page, when more
	more bool   // nextCursor was not null
}

// badItem is an item of a page that is valid JSON but not a valid
// customer.
type badItem struct {
	index  int    // in decodedPage.items
	reason string // names fields, never values
}

// decodePage decodes a list page {"items": [...], "nextCursor": "..."|null}
// into dst, reusing its slices. Both members are required; nextCursor is a
// non-empty string (more is true) or null (the last page). The envelope
// must be valid JSON: an error (wrapping ErrBadData) is a failure of the
// whole page. An item that is valid JSON but not a valid customer (not an
// object, a wrong type, no email, no valid lastUpdated) is listed in
// dst.bad and the other items are kept.
func decodePage(data []byte, dst *decodedPage) error {
	d := decoder{data: data}
	err := d.page(dst)
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return fmt.Errorf("systemb: decode page: %w: %v", ErrBadData, err)
	}
	return nil
}

// maxDepth bounds the nesting of skipped values.
const maxDepth = 512

// decoder is a strict, allocation-lean JSON reader for System B documents:
// one string allocation per record for its values, one for a cursor.
type decoder struct {
	data    []byte
	pos     int
	key     []byte // the member name being read
	scratch []byte // the values of the record being read
}

// decodeError is an error of the decoder at a byte offset of the data.
type decodeError struct {
	pos int
	msg string // names fields, never values
}

// Error renders the offset and the message.
func (e *decodeError) Error() string { return fmt.Sprintf("at byte %d: %s", e.pos, e.msg) }

func (d *decoder) errorf(format string, args ...any) error {
	return &decodeError{pos: d.pos, msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte (0 at the end).
func (d *decoder) peek() byte {
	d.ws()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) expect(c byte) error {
	if d.peek() != c {
		if d.pos >= len(d.data) {
			return d.errorf("unexpected end, want %q", c)
		}
		return d.errorf("want %q", c)
	}
	d.pos++
	return nil
}

func (d *decoder) end() error {
	if d.peek() != 0 || d.pos < len(d.data) {
		return d.errorf("data after the document")
	}
	return nil
}

// literal consumes lit ("null", "true", "false") if it comes next.
func (d *decoder) literal(lit string) bool {
	if d.peek() == lit[0] && len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return true
	}
	return false
}

// object reads an object's members, calling fn after each name with the
// decoder at the value, which fn must consume.
func (d *decoder) object(fn func(name []byte) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	for {
		var err error
		if d.peek() != '"' {
			return d.errorf("want a member name")
		}
		if d.key, err = d.str(d.key[:0]); err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := fn(d.key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.errorf("want ',' or '}'")
		}
	}
}

// str reads a string, appending its decoded text to dst.
func (d *decoder) str(dst []byte) ([]byte, error) {
	if d.peek() != '"' {
		return dst, d.errorf("want a string")
	}
	d.pos++
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			dst = append(dst, d.data[start:d.pos]...)
			d.pos++
			return dst, nil
		case c < 0x20:
			return dst, d.errorf("control character in a string")
		case c == '\\':
			dst = append(dst, d.data[start:d.pos]...)
			var err error
			if dst, err = d.escape(dst); err != nil {
				return dst, err
			}
			start = d.pos
		case c < utf8.RuneSelf:
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, d.data[start:d.pos]...)
				dst = utf8.AppendRune(dst, utf8.RuneError)
				start = d.pos + 1
			}
			d.pos += size
		}
	}
	return dst, d.errorf("unterminated string")
}

// escape decodes the escape sequence at d.pos.
func (d *decoder) escape(dst []byte) ([]byte, error) {
	if d.pos+1 >= len(d.data) {
		return dst, d.errorf("unterminated escape")
	}
	c := d.data[d.pos+1]
	d.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(dst, c), nil
	case 'b':
		return append(dst, '\b'), nil
	case 'f':
		return append(dst, '\f'), nil
	case 'n':
		return append(dst, '\n'), nil
	case 'r':
		return append(dst, '\r'), nil
	case 't':
		return append(dst, '\t'), nil
	case 'u':
		r, ok := d.hex4()
		if !ok {
			return dst, d.errorf("bad \\u escape")
		}
		if utf16.IsSurrogate(r) {
			r2 := utf8.RuneError
			save := d.pos
			if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
				d.pos += 2
				if lo, ok := d.hex4(); ok {
					r2 = lo
				} else {
					d.pos = save
				}
			}
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				r = dec
			} else {
				// A lone surrogate: U+FFFD, and the next escape stands alone.
				r = utf8.RuneError
				d.pos = save
			}
		}
		return utf8.AppendRune(dst, r), nil
	}
	return dst, d.errorf("bad escape")
}

func (d *decoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.pos += 4
	return r, true
}

// skip consumes any JSON value, checking its syntax.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return d.errorf("nested too deeply")
	}
	switch c := d.peek(); {
	case c == '{':
		return d.object(func([]byte) error { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() error { return d.skip(depth + 1) })
	case c == '"':
		var err error
		d.key, err = d.str(d.key[:0])
		return err
	case c == 'n':
		if d.literal("null") {
			return nil
		}
	case c == 't':
		if d.literal("true") {
			return nil
		}
	case c == 'f':
		if d.literal("false") {
			return nil
		}
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	}
	return d.errorf("want a value")
}

// array reads an array, calling fn with the decoder at each element.
func (d *decoder) array(fn func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.pos++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return nil
		default:
			return d.errorf("want ',' or ']'")
		}
	}
}

// number consumes a JSON number.
func (d *decoder) number() error {
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.data[d.pos] == '-' {
		d.pos++
	}
	start := d.pos
	if n := digits(); n == 0 || n > 1 && d.data[start] == '0' {
		return d.errorf("bad number")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return d.errorf("bad number")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return d.errorf("bad number")
		}
	}
	return nil
}

// customer decodes one customer object into r.
func (d *decoder) customer(r *merge.Record) error {
	*r = merge.Record{}
	var (
		seen      [merge.NumFields]bool
		seenGroup = make([]bool, 0, 4)
		seenT     bool
		spans     [merge.NumFields][2]int // of the values in d.scratch
	)
	seenGroup = seenGroup[:len(codecMembers.nested)]
	d.scratch = d.scratch[:0]
	field := func(id merge.FieldID) error {
		if seen[id] {
			return d.errorf("%s given twice", merge.Fields[id].Path)
		}
		seen[id] = true
		if d.literal("null") {
			return nil
		}
		if merge.Fields[id].Kind == merge.KindBool {
			switch {
			case d.literal("true"):
				r.Values[id] = "true"
			case d.literal("false"):
				r.Values[id] = "false"
			default:
				return d.errorf("%s: want a boolean or null", merge.Fields[id].Path)
			}
			return nil
		}
		if d.peek() != '"' {
			return d.errorf("%s: want a string or null", merge.Fields[id].Path)
		}
		start := len(d.scratch)
		var err error
		d.scratch, err = d.str(d.scratch)
		spans[id] = [2]int{start, len(d.scratch)}
		return err
	}
	err := d.object(func(name []byte) error {
		if string(name) == "lastUpdated" {
			if seenT {
				return d.errorf("lastUpdated given twice")
			}
			seenT = true
			return d.lastUpdated(r)
		}
		m, ok := codecMembers.top[string(name)]
		switch {
		case !ok:
			return d.skip(1)
		case m.group < 0:
			return field(m.field)
		}
		if seenGroup[m.group] {
			return d.errorf("%s given twice", codecMembers.names[m.group])
		}
		seenGroup[m.group] = true
		if d.literal("null") {
			return nil
		}
		if d.peek() != '{' {
			return d.errorf("%s: want an object or null", codecMembers.names[m.group])
		}
		nested := codecMembers.nested[m.group]
		return d.object(func(name []byte) error {
			if id, ok := nested[string(name)]; ok {
				return field(id)
			}
			return d.skip(2)
		})
	})
	if err != nil {
		return err
	}
	if len(d.scratch) > 0 {
		s := string(d.scratch) // one allocation for all values
		for id, sp := range spans {
			if sp[1] > sp[0] {
				r.Values[id] = s[sp[0]:sp[1]]
			}
		}
	}
	if strings.TrimSpace(r.Values[merge.FieldEmail]) == "" {
		return errors.New("email is missing")
	}
	if !seenT {
		return errors.New("lastUpdated is missing")
	}
	return nil
}

// lastUpdated reads an RFC 3339 time string into r.LastUpdated (UTC).
func (d *decoder) lastUpdated(r *merge.Record) error {
	if d.peek() != '"' {
		return d.errorf("lastUpdated: want an RFC 3339 string")
	}
	start := len(d.scratch)
	var err error
	if d.scratch, err = d.str(d.scratch); err != nil {
		return err
	}
	b := d.scratch[start:]
	t, ok := parseUTCSeconds(b)
	if !ok {
		if t, err = time.Parse(time.RFC3339, string(b)); err != nil {
			return errors.New("lastUpdated is not RFC 3339")
		}
		t = t.UTC()
		if y := t.Year(); y < 0 || y > 9999 {
			return errors.New("lastUpdated is out of range")
		}
	}
	d.scratch = d.scratch[:start]
	r.LastUpdated = t
	return nil
}

// parseUTCSeconds parses the common form YYYY-MM-DDTHH:MM:SSZ without
// allocating; ok is false for anything else (which time.Parse then judges).
func parseUTCSeconds(b []byte) (time.Time, bool) {
	if len(b) != 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, mo, dd, h, mi, s := num(b[0:4]), num(b[5:7]), num(b[8:10]), num(b[11:13]), num(b[14:16]), num(b[17:19])
	if y < 0 || mo < 1 || mo > 12 || dd < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), dd, h, mi, s, 0, time.UTC)
	if t.Day() != dd { // 31 June and the like
		return time.Time{}, false
	}
	return t, true
}

// page decodes a list page into dst.
func (d *decoder) page(dst *decodedPage) error {
	dst.items, dst.bad, dst.next, dst.more = dst.items[:0], dst.bad[:0], "", false
	var haveItems, haveNC bool
	err := d.object(func(name []byte) error {
		switch string(name) {
		case "items":
			if haveItems {
				return d.errorf("items given twice")
			}
			haveItems = true
			if d.peek() != '[' {
				return d.errorf("items: want an array")
			}
			return d.array(func() error { return d.item(dst) })
		case "nextCursor":
			if haveNC {
				return d.errorf("nextCursor given twice")
			}
			haveNC = true
			if d.literal("null") {
				return nil
			}
			if d.peek() != '"' {
				return d.errorf("nextCursor: want a string or null")
			}
			var err error
			if d.scratch, err = d.str(d.scratch[:0]); err != nil {
				return err
			}
			if len(d.scratch) == 0 {
				return d.errorf("nextCursor is empty")
			}
			dst.next, dst.more = string(d.scratch), true
			return nil
		}
		return d.skip(1)
	})
	switch {
	case err != nil:
		return err
	case !haveItems:
		return errors.New("items is missing")
	case !haveNC:
		return errors.New("nextCursor is missing")
	}
	return nil
}

// item decodes the item at d.pos into a new slot of dst.items. An item
// that is valid JSON but not a valid customer is skipped whole and listed
// in dst.bad; an item that is not valid JSON is an error (the page's end
// cannot be found).
func (d *decoder) item(dst *decodedPage) error {
	d.ws()
	start := d.pos
	dst.items = append(dst.items, merge.Record{})
	n := len(dst.items) - 1
	var err error
	if d.peek() != '{' {
		err = errors.New("want an object")
	} else {
		err = d.customer(&dst.items[n])
	}
	if err == nil {
		return nil
	}
	d.pos = start
	if serr := d.skip(0); serr != nil {
		return fmt.Errorf("item %d: %w", n+1, serr)
	}
	dst.items[n] = merge.Record{}
	reason := err.Error()
	if de, ok := err.(*decodeError); ok { // an offset in a page means nothing to a report
		reason = de.msg
	}
	dst.bad = append(dst.bad, badItem{index: n, reason: reason})
	return nil
}
