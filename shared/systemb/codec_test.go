package systemb

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

func TestCodecRoundTrip(t *testing.T) {
	withValues := func(mod func(r *merge.Record)) merge.Record {
		r := newRecord("ada@example.com")
		mod(&r)
		return r
	}
	tests := []struct {
		name string
		r    merge.Record
	}{
		{"complete", newRecord("ada@example.com")},
		{"all absent but email", withValues(func(r *merge.Record) {
			for i := 1; i < merge.NumFields; i++ {
				r.Values[i] = ""
			}
		})},
		{"no address", withValues(func(r *merge.Record) {
			for _, id := range []merge.FieldID{merge.FieldAddressLine1, merge.FieldCity, merge.FieldPostalCode, merge.FieldCountry} {
				r.Values[id] = ""
			}
		})},
		{"opt-in false", withValues(func(r *merge.Record) { r.Values[merge.FieldMarketingOptIn] = "false" })},
		{"quotes, backslashes, controls", withValues(func(r *merge.Record) {
			r.Values[merge.FieldFirstName] = "O\"Brien \\ \t\n\r\x00\x1f"
			r.Values[merge.FieldAddressLine1] = "</script><script>alert(1)</script> & more"
		})},
		{"non-ASCII", withValues(func(r *merge.Record) {
			r.Values[merge.FieldEmail] = "JÖRG@Exämple.com"
			r.Values[merge.FieldLastName] = "Müller 🚀 \u2028\u2029 漢字"
			r.Values[merge.FieldCity] = "Zürich"
		})},
		{"whitespace kept", withValues(func(r *merge.Record) { r.Values[merge.FieldFirstName] = "  Ada  " })},
		{"sub-second time", withValues(func(r *merge.Record) {
			r.LastUpdated = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := AppendCustomer(nil, &tt.r)
			if !json.Valid(doc) {
				t.Fatalf("AppendCustomer wrote invalid JSON: %s", doc)
			}
			got, err := UnmarshalCustomer(doc)
			if err != nil {
				t.Fatalf("UnmarshalCustomer(%s): %v", doc, err)
			}
			if *got != tt.r {
				t.Errorf("round trip:\n got %+v\nwant %+v", *got, tt.r)
			}
		})
	}
}

func TestAppendCustomerShape(t *testing.T) {
	r := newRecord("ada@example.com")
	r.Values[merge.FieldPhone] = ""
	var doc map[string]any
	if err := json.Unmarshal(AppendCustomer(nil, &r), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace", "phone": nil,
		"address": map[string]any{
			"line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB",
		},
		"marketingOptIn": true, "loyaltyTier": "gold", "lastUpdated": "2026-03-01T12:30:00Z",
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("document\n got %v\nwant %v", doc, want)
	}
}

func TestUnmarshalCustomerAccepts(t *testing.T) {
	base := newRecord("ada@example.com")
	tests := []struct {
		name string
		doc  string
		want func(r *merge.Record)
	}{
		{"unknown fields ignored", `{"email":"ada@example.com","id":7,"tags":["a",{"b":null}],"address":{"line2":"x","city":"London"},"lastUpdated":"2026-03-01T12:30:00Z","extra":{"deep":[[[]]]}}`,
			func(r *merge.Record) { keepOnly(r, merge.FieldEmail, merge.FieldCity) }},
		{"nulls are absent", `{"email":"ada@example.com","firstName":null,"address":null,"marketingOptIn":null,"lastUpdated":"2026-03-01T12:30:00Z"}`,
			func(r *merge.Record) { keepOnly(r, merge.FieldEmail) }},
		{"offset time to UTC", `{"email":"ada@example.com","lastUpdated":"2026-03-01T14:30:00+02:00"}`,
			func(r *merge.Record) { keepOnly(r, merge.FieldEmail) }},
		{"whitespace and escapes", " {\n\"email\" : \"ad\\u0061@example.com\" ,\t\"lastUpdated\":\"2026-03-01T12:30:00Z\"} \n",
			func(r *merge.Record) { keepOnly(r, merge.FieldEmail) }},
		{"invalid UTF-8 and lone surrogate become U+FFFD", "{\"email\":\"ada@example.com\",\"firstName\":\"a\xffb\\ud800c\",\"lastUpdated\":\"2026-03-01T12:30:00Z\"}",
			func(r *merge.Record) {
				keepOnly(r, merge.FieldEmail, merge.FieldFirstName)
				r.Values[merge.FieldFirstName] = "a\ufffdb\ufffdc"
			}},
		{"deep unknown within limits", `{"email":"ada@example.com","x":` + strings.Repeat(`{"a":[`, 100) + `1.5e-3` + strings.Repeat(`]}`, 100) + `,"lastUpdated":"2026-03-01T12:30:00Z"}`,
			func(r *merge.Record) { keepOnly(r, merge.FieldEmail) }},
		{"surrogate pair", `{"email":"ada@example.com","firstName":"\ud83d\ude80","lastUpdated":"2026-03-01T12:30:00Z"}`,
			func(r *merge.Record) {
				keepOnly(r, merge.FieldEmail, merge.FieldFirstName)
				r.Values[merge.FieldFirstName] = "🚀"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnmarshalCustomer([]byte(tt.doc))
			if err != nil {
				t.Fatalf("UnmarshalCustomer: %v", err)
			}
			want := base
			tt.want(&want)
			if *got != want {
				t.Errorf("got %+v\nwant %+v", *got, want)
			}
		})
	}
}

// keepOnly clears every value of r but ids.
func keepOnly(r *merge.Record, ids ...merge.FieldID) {
	for i := range r.Values {
		keep := false
		for _, id := range ids {
			keep = keep || merge.FieldID(i) == id
		}
		if !keep {
			r.Values[i] = ""
		}
	}
}

func TestUnmarshalCustomerRejects(t *testing.T) {
	const ts = `"lastUpdated":"2026-03-01T12:30:00Z"`
	tests := []struct{ name, doc string }{
		{"empty", ``},
		{"null", `null`},
		{"array", `[]`},
		{"string", `"ada@example.com"`},
		{"truncated", `{"email":"ada@example.com",` + ts},
		{"trailing garbage", `{"email":"ada@example.com",` + ts + `}x`},
		{"two documents", `{"email":"ada@example.com",` + ts + `}{}`},
		{"missing email", `{"firstName":"Ada",` + ts + `}`},
		{"blank email", `{"email":"  ",` + ts + `}`},
		{"null email", `{"email":null,` + ts + `}`},
		{"missing lastUpdated", `{"email":"ada@example.com"}`},
		{"null lastUpdated", `{"email":"ada@example.com","lastUpdated":null}`},
		{"numeric lastUpdated", `{"email":"ada@example.com","lastUpdated":1700000000}`},
		{"date only", `{"email":"ada@example.com","lastUpdated":"2026-03-01"}`},
		{"no zone", `{"email":"ada@example.com","lastUpdated":"2026-03-01T12:30:00"}`},
		{"number for a string", `{"email":"ada@example.com","firstName":42,` + ts + `}`},
		{"object for a string", `{"email":"ada@example.com","phone":{},` + ts + `}`},
		{"string for a bool", `{"email":"ada@example.com","marketingOptIn":"true",` + ts + `}`},
		{"number for a bool", `{"email":"ada@example.com","marketingOptIn":1,` + ts + `}`},
		{"string for address", `{"email":"ada@example.com","address":"London",` + ts + `}`},
		{"array for address", `{"email":"ada@example.com","address":[],` + ts + `}`},
		{"number in address", `{"email":"ada@example.com","address":{"city":1},` + ts + `}`},
		{"bad escape", `{"email":"ada\x@example.com",` + ts + `}`},
		{"raw control char", "{\"email\":\"ada\n@example.com\"," + ts + "}"},
		{"duplicate email", `{"email":"eve@example.com","email":"ada@example.com",` + ts + `}`},
		{"duplicate email, escaped name", `{"email":"eve@example.com","\u0065mail":"ada@example.com",` + ts + `}`},
		{"duplicate address", `{"email":"ada@example.com","address":null,"address":{"city":"x"},` + ts + `}`},
		{"duplicate city", `{"email":"ada@example.com","address":{"city":"x","city":"y"},` + ts + `}`},
		{"duplicate lastUpdated", `{"email":"ada@example.com",` + ts + `,` + ts + `}`},
		{"deeply nested unknown", `{"email":"ada@example.com",` + ts + `,"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`},
		{"bad number in unknown", `{"email":"ada@example.com",` + ts + `,"x":01}`},
		{"bare word", `{"email":"ada@example.com",` + ts + `,"x":nul}`},
		{"31 June", `{"email":"ada@example.com","lastUpdated":"2026-06-31T12:30:00Z"}`},
		{"hour 24", `{"email":"ada@example.com","lastUpdated":"2026-06-30T24:00:00Z"}`},
		{"year 10000 in UTC", `{"email":"ada@example.com","lastUpdated":"9999-12-31T23:59:59-01:00"}`},
		{"single quotes", `{'email':'ada@example.com',` + ts + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := UnmarshalCustomer([]byte(tt.doc))
			if !errors.Is(err, ErrBadData) || r != nil {
				t.Fatalf("UnmarshalCustomer = %v, %v; want nil, ErrBadData", r, err)
			}
			if strings.Contains(err.Error(), "ada@example.com") {
				t.Errorf("error %q echoes the email", err)
			}
		})
	}
}

// TestNestedFieldsAreContiguous guards the codec's assumption about
// merge.Fields: the fields of one nested object follow each other.
func TestNestedFieldsAreContiguous(t *testing.T) {
	done := map[string]bool{}
	prev := ""
	for _, f := range merge.Fields {
		parent, _, _ := strings.Cut(f.Path, ".")
		if parent != prev && done[parent] {
			t.Errorf("fields of %q are not contiguous in merge.Fields", parent)
		}
		done[prev] = true
		prev = parent
	}
}

func TestDecodePage(t *testing.T) {
	a, b := customerJSON("a@example.com"), customerJSON("b@example.com")
	items := func(docs ...[]byte) string {
		return `{"items":[` + string(bytes.Join(docs, []byte(","))) + `],"nextCursor":null}`
	}
	tests := []struct {
		name  string
		doc   string
		n     int
		bad   []int    // indexes of the bad items
		why   []string // in their reasons
		next  string
		more  bool
		valid bool
	}{
		{"two and a cursor", `{"items":[` + string(a) + `,` + string(b) + `],"nextCursor":"abc=="}`, 2, nil, nil, "abc==", true, true},
		{"last page", `{"nextCursor":null,"items":[` + string(a) + `]}`, 1, nil, nil, "", false, true},
		{"empty", `{"items":[],"nextCursor":null}`, 0, nil, nil, "", false, true},
		{"unknown members", `{"items":[],"total":3,"links":{"x":[1]},"nextCursor":null}`, 0, nil, nil, "", false, true},
		{"missing cursor", `{"items":[]}`, 0, nil, nil, "", false, false},
		{"empty item", items([]byte(`{}`)), 1, []int{0}, []string{"email is missing"}, "", false, true},
		{"bad item in the middle", items(a, []byte(`{"email":"x@example.com","phone":7,"lastUpdated":"2026-03-01T12:30:00Z"}`), b),
			3, []int{1}, []string{"phone: want a string"}, "", false, true},
		{"items that are not objects", items([]byte(`null`), a, []byte(`[1,{"email":"x@example.com"}]`), []byte(`"x@example.com"`)),
			4, []int{0, 2, 3}, []string{"want an object", "want an object", "want an object"}, "", false, true},
		{"bad nested objects", items([]byte(`{"email":"x@example.com","address":"Main St 1","lastUpdated":"2026-03-01T12:30:00Z"}`),
			[]byte(`{"email":"x@example.com","address":null,"address":{},"lastUpdated":"2026-03-01T12:30:00Z"}`)),
			2, []int{0, 1}, []string{"address: want an object", "address given twice"}, "", false, true},
		{"bad lastUpdated", items([]byte(`{"email":"x@example.com","lastUpdated":"yesterday"}`)), 1, []int{0}, []string{"lastUpdated is not RFC 3339"}, "", false, true},
		{"item with invalid JSON", items(a, []byte(`{"email":x}`)), 0, nil, nil, "", false, false},
		{"item with invalid JSON after a bad member", items([]byte(`{"email":1,"x":tru}`)), 0, nil, nil, "", false, false},
		{"trailing comma", `{"items":[` + string(a) + `,],"nextCursor":null}`, 0, nil, nil, "", false, false},
		{"not an object", `[]`, 0, nil, nil, "", false, false},
		{"items twice", `{"items":[],"items":[],"nextCursor":null}`, 0, nil, nil, "", false, false},
		{"cursor twice", `{"items":[],"nextCursor":"a","nextCursor":null}`, 0, nil, nil, "", false, false},
		{"escaped cursor", `{"items":[],"nextCursor":"a\u002Bb\/c"}`, 0, nil, nil, "a+b/c", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p decodedPage
			err := decodePage([]byte(tt.doc), &p)
			if (err == nil) != tt.valid {
				t.Fatalf("decodePage error = %v, want valid=%v", err, tt.valid)
			}
			if err != nil {
				if !errors.Is(err, ErrBadData) {
					t.Errorf("error %v does not wrap ErrBadData", err)
				}
				return
			}
			if len(p.items) != tt.n || p.next != tt.next || p.more != tt.more {
				t.Errorf("got %d items, %q, %v; want %d, %q, %v", len(p.items), p.next, p.more, tt.n, tt.next, tt.more)
			}
			if len(p.bad) != len(tt.bad) {
				t.Fatalf("bad items %+v, want at %v", p.bad, tt.bad)
			}
			for i, bi := range p.bad {
				if bi.index != tt.bad[i] || !strings.Contains(bi.reason, tt.why[i]) {
					t.Errorf("bad item %+v, want at %d saying %q", bi, tt.bad[i], tt.why[i])
				}
				if strings.Contains(bi.reason, "x@example.com") || strings.Contains(bi.reason, "Main St") {
					t.Errorf("reason %q quotes a value", bi.reason)
				}
				if p.items[bi.index] != (merge.Record{}) {
					t.Errorf("bad item %d left a record", bi.index)
				}
			}
		})
	}
}

// TestJSONDiffers checks the filter the fuzzers use to skip the codec's
// known differences from encoding/json.
func TestJSONDiffers(t *testing.T) {
	tests := []struct {
		doc  string
		want bool
	}{
		{string(customerJSON("a@example.com")), false},
		{`{"email":"a","x":{"email":"b"},"y":[{"email":"c"},{"email":"d"}]}`, false},
		{`{"email":"a","email":"b"}`, true},
		{`{"address":{"city":"a","city":"b"}}`, true},
		{`{"Email":"a"}`, true},
		{`{"x":{"LASTUPDATED":"a"}}`, true},
		{`{"x":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`, true},
		{`{"x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`, false},
		{`{"email":`, false},
	}
	for _, tt := range tests {
		name := tt.doc
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			if got := jsonDiffers([]byte(tt.doc)); got != tt.want {
				t.Errorf("jsonDiffers = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzUnmarshalCustomer checks that the decoder never panics, that it
// makes the same decision as encoding/json into a typed struct with the
// same validation (stdUnmarshalCustomer) and decodes the same values, except
// where jsonDiffers names a known difference, that what it accepts carries
// a key and a UTC time, and that it round-trips through AppendCustomer. It
// runs its seed corpus (here and in testdata/fuzz) as a normal test.
func FuzzUnmarshalCustomer(f *testing.F) {
	f.Add(customerJSON("ada@example.com"))
	f.Add([]byte(`{"email":"JÖRG@Example.com","address":null,"marketingOptIn":false,"lastUpdated":"2026-03-01T14:30:00.5+02:00"}`))
	f.Add([]byte(`{"email":"a@b","firstName":"\ud83d\ude80\u0000","extra":[{"email":1}],"lastUpdated":"2026-03-01T12:30:00Z"}`))
	f.Add([]byte(`{"email":"a@b","email":"c@d","lastUpdated":"2026-03-01T12:30:00Z"}`))
	f.Add([]byte(`{"email":"a@b","lastUpdated":"2026-03-01T12:30:00Z","address":{"city":"\xff"}}`))
	f.Add([]byte(`{"email":"a@b","lastUpdated":"9999-12-31T23:59:59.999999999-23:59"}`))
	f.Add([]byte(`{"email":"a@b","lastUpdated":"2026-03-01T12:30:00Z"`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Add([]byte(`{"EMAIL":"a@b","lastUpdated":"2026-03-01T12:30:00Z"}`))
	f.Add([]byte(`{"email":"a@b","address":{"city":"\ud800\udc00\ud800x"},"lastUpdated":"2026-02-29T12:30:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := UnmarshalCustomer(data)
		if err != nil && (r != nil || !errors.Is(err, ErrBadData)) {
			t.Fatalf("error %v with record %v", err, r)
		}
		if !jsonDiffers(data) {
			std, stdErr := stdUnmarshalCustomer(data)
			switch {
			case (err == nil) != (stdErr == nil):
				t.Fatalf("the codec and encoding/json disagree on %q:\n codec: %v\n  json: %v", data, err, stdErr)
			case err == nil && *r != *std:
				t.Fatalf("the codec and encoding/json decode %q differently:\n codec %+v\n  json %+v", data, *r, *std)
			}
		}
		if err != nil {
			return
		}
		if merge.Key(r.Email()) == "" || r.LastUpdated.IsZero() || r.LastUpdated.Location() != time.UTC {
			t.Fatalf("accepted a record without a key or a UTC time: %+v", r)
		}
		doc := AppendCustomer(nil, r)
		again, err := UnmarshalCustomer(doc)
		if err != nil {
			t.Fatalf("re-encoded document %s rejected: %v", doc, err)
		}
		if *again != *r {
			t.Fatalf("round trip differs:\n first %+v\nsecond %+v", *r, *again)
		}
	})
}

// FuzzDecodePage checks that page decoding never panics, that it makes the
// same decisions as encoding/json (stdDecodePage: the envelope into a
// struct, each item into a typed struct) on the page and on each item, with
// the same values, except where jsonDiffers names a known difference, and
// that every item it accepts has a key.
func FuzzDecodePage(f *testing.F) {
	a, b := customerJSON("a@example.com"), customerJSON("b@example.com")
	f.Add([]byte(`{"items":[` + string(a) + `,` + string(b) + `],"nextCursor":"abc"}`))
	f.Add([]byte(`{"items":[],"nextCursor":null}`))
	f.Add([]byte(`{"nextCursor":"\ud800","items":[{}]}`))
	f.Add([]byte(`{"items":[` + string(a) + `,{"email":1},null,[],` + string(b) + `],"nextCursor":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p decodedPage
		err := decodePage(data, &p)
		if err != nil && !errors.Is(err, ErrBadData) {
			t.Fatalf("error %v does not wrap ErrBadData", err)
		}
		if !jsonDiffers(data) {
			std, stdErr := stdDecodePage(data)
			if (err == nil) != (stdErr == nil) {
				t.Fatalf("the codec and encoding/json disagree on the page %q:\n codec: %v\n  json: %v", data, err, stdErr)
			}
			if err == nil {
				if p.next != std.next || p.more != std.more || len(p.items) != len(std.items) {
					t.Fatalf("page %q: codec %d items %q %v, json %d items %q %v", data, len(p.items), p.next, p.more, len(std.items), std.next, std.more)
				}
				b := 0
				for i := range p.items {
					isBad := b < len(p.bad) && p.bad[b].index == i
					if isBad {
						b++
					}
					switch {
					case isBad != (std.items[i] == nil):
						t.Fatalf("page %q item %d: codec bad %v, json bad %v", data, i, isBad, std.items[i] == nil)
					case !isBad && p.items[i] != *std.items[i]:
						t.Fatalf("page %q item %d:\n codec %+v\n  json %+v", data, i, p.items[i], *std.items[i])
					}
				}
			}
		}
		if err != nil {
			return
		}
		if p.more == (p.next == "") {
			t.Fatalf("more %v with cursor %q", p.more, p.next)
		}
		b := 0
		for i, r := range p.items {
			if b < len(p.bad) && p.bad[b].index == i {
				b++
				continue
			}
			if merge.Key(r.Email()) == "" || r.LastUpdated.IsZero() {
				t.Fatalf("accepted item without key or time: %+v", r)
			}
		}
	})
}

// The codec benchmarks compare the hand-written codec with the honest
// baseline, encoding/json into a typed struct with the same validation
// (std_test.go). Run them with
//
//	go test -run '^$' -bench Codec -benchmem ./shared/systemb

// pageDoc is a list page of n customers and a cursor.
func pageDoc(n int) []byte {
	rs := dataset(n)
	doc := []byte(`{"items":[`)
	for i := range rs {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = AppendCustomer(doc, &rs[i])
	}
	return append(doc, `],"nextCursor":"djE6Y3VzdG9tZXIwMDA5OTlAZXhhbXBsZS5jb20"}`...)
}

func BenchmarkCodecAppendCustomer(b *testing.B) {
	r := newRecord("ada.lovelace@example.com")
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendCustomer(buf[:0], &r)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json", func(b *testing.B) {
		opt := r.Values[merge.FieldMarketingOptIn] == "true"
		ts := r.LastUpdated.Format(time.RFC3339Nano)
		b.ReportAllocs()
		var n int
		for b.Loop() {
			c := stdCustomer{
				Email: r.Values[merge.FieldEmail], FirstName: r.Values[merge.FieldFirstName], LastName: r.Values[merge.FieldLastName],
				Phone: r.Values[merge.FieldPhone], Address: &stdAddress{Line1: r.Values[merge.FieldAddressLine1], City: r.Values[merge.FieldCity],
					PostalCode: r.Values[merge.FieldPostalCode], Country: r.Values[merge.FieldCountry]},
				MarketingOptIn: &opt, LoyaltyTier: r.Values[merge.FieldLoyaltyTier], LastUpdated: &ts,
			}
			buf, err := json.Marshal(&c)
			if err != nil {
				b.Fatal(err)
			}
			n = len(buf)
		}
		b.SetBytes(int64(n))
	})
}

func BenchmarkCodecUnmarshalCustomer(b *testing.B) {
	doc := customerJSON("ada.lovelace@example.com")
	for _, d := range []struct {
		name string
		fn   func([]byte) (*merge.Record, error)
	}{{"codec", UnmarshalCustomer}, {"encoding-json", stdUnmarshalCustomer}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.fn(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCodecDecodePage decodes a list page of 1000 customers: the
// codec into a reused slice, as the Pager does; encoding/json item by item
// (what a page tolerant of a bad item needs); and encoding/json into a
// typed page in one call (the fastest encoding/json can be, but one bad
// item fails the page).
func BenchmarkCodecDecodePage(b *testing.B) {
	doc := pageDoc(1000)
	perRecord := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/record")
	}
	b.Run("codec", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		var p decodedPage
		for b.Loop() {
			if err := decodePage(doc, &p); err != nil || len(p.items) != 1000 {
				b.Fatal(err, len(p.items))
			}
		}
		perRecord(b)
	})
	b.Run("encoding-json-items", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			p, err := stdDecodePage(doc)
			if err != nil || len(p.items) != 1000 || p.items[999] == nil {
				b.Fatal(err, len(p.items))
			}
		}
		perRecord(b)
	})
	b.Run("encoding-json-typed-page", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		items := make([]merge.Record, 1000)
		for b.Loop() {
			var p struct {
				Items      []stdCustomer `json:"items"`
				NextCursor *string       `json:"nextCursor"`
			}
			if err := json.Unmarshal(doc, &p); err != nil || len(p.Items) != 1000 {
				b.Fatal(err)
			}
			for i := range p.Items {
				if err := p.Items[i].record(&items[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		perRecord(b)
	})
}
