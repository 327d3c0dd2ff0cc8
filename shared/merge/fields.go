package merge

import "strconv"

// FieldID indexes Fields and Record.Values.
type FieldID int

// Kind selects how a field's values are normalised for comparison and how
// they are rendered in JSON.
type Kind int

// The field kinds. Their normalisers are described in docs/contracts.md.
const (
	KindEmail      Kind = iota + 1 // trimmed, lower-cased; the join key
	KindName                       // NFC, trimmed, inner whitespace collapsed, case-insensitive
	KindText                       // NFC, trimmed, inner whitespace collapsed, case-sensitive
	KindPhone                      // digits only, a leading '+' kept
	KindPostalCode                 // upper-cased, spaces removed
	KindCountry                    // trimmed, upper-cased ISO 3166 alpha-2
	KindBool                       // "true" / "false"; rendered as a JSON boolean
	KindTier                       // trimmed, lower-cased
)

// Field describes one field of the unified customer: its JSON path (also
// System B's JSON path), System A's column, and its kind. This table is the
// only place that maps the two sources to the unified view: adding a field is
// one entry here (plus a FieldID constant if code needs to name it).
type Field struct {
	Path   string // JSON path in the unified view and in System B, dot-separated
	Column string // column of System A's customers table
	Kind   Kind
}

// Fields is the declarative field table, in the order of every output.
var Fields = [...]Field{
	FieldEmail:          {Path: "email", Column: "email", Kind: KindEmail},
	FieldFirstName:      {Path: "firstName", Column: "first_name", Kind: KindName},
	FieldLastName:       {Path: "lastName", Column: "last_name", Kind: KindName},
	FieldPhone:          {Path: "phone", Column: "phone", Kind: KindPhone},
	FieldAddressLine1:   {Path: "address.line1", Column: "address_line1", Kind: KindText},
	FieldCity:           {Path: "address.city", Column: "city", Kind: KindName},
	FieldPostalCode:     {Path: "address.postalCode", Column: "postal_code", Kind: KindPostalCode},
	FieldCountry:        {Path: "address.country", Column: "country", Kind: KindCountry},
	FieldMarketingOptIn: {Path: "marketingOptIn", Column: "marketing_opt_in", Kind: KindBool},
	FieldLoyaltyTier:    {Path: "loyaltyTier", Column: "loyalty_tier", Kind: KindTier},
}

// NumFields is the number of fields in the unified customer.
const NumFields = len(Fields)

// Field identifiers, for code that needs to name a field.
const (
	FieldEmail FieldID = iota
	FieldFirstName
	FieldLastName
	FieldPhone
	FieldAddressLine1
	FieldCity
	FieldPostalCode
	FieldCountry
	FieldMarketingOptIn
	FieldLoyaltyTier
)

// FieldByPath returns the id of the field with the given JSON path.
func FieldByPath(path string) (FieldID, bool) {
	for i, f := range Fields {
		if f.Path == path {
			return FieldID(i), true
		}
	}
	return 0, false
}

// kindNames are the names of the kinds, as docs/contracts.md writes them.
var kindNames = [...]string{
	KindEmail:      "email",
	KindName:       "name",
	KindText:       "text",
	KindPhone:      "phone",
	KindPostalCode: "postalCode",
	KindCountry:    "country",
	KindBool:       "bool",
	KindTier:       "tier",
}

// String returns the kind's name as docs/contracts.md writes it.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}
