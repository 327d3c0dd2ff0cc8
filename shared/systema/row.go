package systema

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
)

// Rows are read as one TEXT value per row, json_array of the columns cast to
// TEXT (so NULL stays null and a stray BLOB or number cannot fail the
// query): a single column per row is about three times faster to scan than
// eleven through database/sql, and the record's values are substrings of it.

// rowExpr is the SELECT expression of a customers row, built from the
// declarative field table: json_array(CAST(email AS TEXT), ..., CAST(last_updated AS TEXT)).
var rowExpr = func() string {
	var b strings.Builder
	b.WriteString("json_array(")
	for i, c := range columns() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("CAST(" + c + " AS TEXT)")
	}
	b.WriteString(")")
	return b.String()
}()

// scanner turns rows of rowExpr (optionally followed by a key column) into
// Records.
type scanner struct {
	row  string
	key  sql.NullString
	dest []any
}

func (sc *scanner) init(withKey bool) {
	sc.dest = []any{&sc.row}
	if withKey {
		sc.dest = append(sc.dest, &sc.key)
	}
}

// scan reads the current row and its key column (if any). A row that
// breaks the contract is an error wrapping ErrBadData that names the column,
// never the values; the record is then still returned when its email could
// be read (so callers can tell whose row it is), nil otherwise.
func (sc *scanner) scan(rows *sql.Rows) (*merge.Record, string, error) {
	if err := rows.Scan(sc.dest...); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadData, err)
	}
	rec := &merge.Record{}
	if err := decodeRow(sc.row, rec); err != nil {
		if rec.Values[merge.FieldEmail] == "" {
			rec = nil
		}
		return rec, sc.key.String, err
	}
	return rec, sc.key.String, nil
}

// errRowSyntax is a json_array text that does not parse (never expected
// from SQLite).
var errRowSyntax = errors.New("row does not parse")

// decodeRow fills rec from a rowExpr value: the fields in merge.Fields order,
// then last_updated. Errors wrap ErrBadData and name the column only.
func decodeRow(s string, rec *merge.Record) error {
	cols := columns()
	if !strings.HasPrefix(s, "[") {
		return fmt.Errorf("%w: %w", ErrBadData, errRowSyntax)
	}
	s = s[1:]
	var lastUpdated string
	var bad error
	for i := range cols {
		if i > 0 {
			if !strings.HasPrefix(s, ",") {
				return fmt.Errorf("%w: %w", ErrBadData, errRowSyntax)
			}
			s = s[1:]
		}
		v, null, rest, err := jsonValue(s)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadData, cols[i], err)
		}
		s = rest
		if i == merge.NumFields {
			if null {
				return fmt.Errorf("%w: last_updated is NULL", ErrBadData)
			}
			lastUpdated = v
			continue
		}
		if merge.Fields[i].Kind != merge.KindBool {
			rec.Values[i] = v
			continue
		}
		switch {
		case null:
		case v == "1":
			rec.Values[i] = "true"
		case v == "0":
			rec.Values[i] = "false"
		default:
			bad = fmt.Errorf("%w: %s is neither 1, 0 nor NULL", ErrBadData, cols[i])
		}
	}
	if s != "]" {
		return fmt.Errorf("%w: %w", ErrBadData, errRowSyntax)
	}
	if rec.Values[merge.FieldEmail] == "" {
		return fmt.Errorf("%w: a row has no email", ErrBadData)
	}
	if bad != nil {
		return bad
	}
	t, err := time.Parse(time.RFC3339, lastUpdated)
	if err != nil {
		return fmt.Errorf("%w: last_updated is not RFC 3339", ErrBadData)
	}
	rec.LastUpdated = t.UTC()
	return nil
}

// jsonValue reads a JSON string or null at the start of s, as SQLite's
// json_array writes them, and returns the rest. A string without escapes is
// returned as a substring of s (no copy).
func jsonValue(s string) (v string, null bool, rest string, err error) {
	if strings.HasPrefix(s, "null") {
		return "", true, s[4:], nil
	}
	if !strings.HasPrefix(s, `"`) {
		return "", false, "", errRowSyntax
	}
	escaped := false
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			escaped = true
			i++ // skip the escaped byte (\" included)
		case '"':
			if !escaped {
				return s[1:i], false, s[i+1:], nil
			}
			u, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", false, "", errRowSyntax
			}
			return u, false, s[i+1:], nil
		}
	}
	return "", false, "", errRowSyntax
}
