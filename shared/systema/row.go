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
// breaks the contract returns the reason, which names the column, never the
// value; the record is then still returned when its email could be read (so
// callers can tell whose row it is), nil otherwise. err is a failure to read
// the row at all (rows closed by a cancelled query; json_array is never
// NULL): the query's failure, not the row's, and it ends the query.
func (sc *scanner) scan(rows *sql.Rows) (rec *merge.Record, key, reason string, err error) {
	if err := rows.Scan(sc.dest...); err != nil {
		if qerr := rows.Err(); qerr != nil {
			err = qerr // the cause (a cancelled ctx), not its symptom
		}
		return nil, "", "", err
	}
	rec = &merge.Record{}
	if reason := decodeRow(sc.row, rec); reason != "" {
		if rec.Values[merge.FieldEmail] == "" {
			rec = nil
		}
		return rec, sc.key.String, reason, nil
	}
	return rec, sc.key.String, "", nil
}

// badRecord returns the error for a row that breaks the contract: a
// *merge.BadRecordError (kind merge.ErrBadData) that also wraps ErrBadData.
// position says where the row is ("row 12", see All), reason what is wrong
// with which column; neither quotes a value.
func badRecord(position, reason string) error {
	return fmt.Errorf("%w: %w", ErrBadData, &merge.BadRecordError{Source: merge.SystemA, Position: position, Reason: reason})
}

// rowSyntax is the reason for a json_array text that does not parse (never
// expected from SQLite).
const rowSyntax = "row does not parse"

// errRowSyntax is jsonValue's error.
var errRowSyntax = errors.New(rowSyntax)

// decodeRow fills rec from a rowExpr value: the fields in merge.Fields order,
// then last_updated. It returns "" for a good row, else the reason the row
// breaks the contract, naming the column only.
func decodeRow(s string, rec *merge.Record) (reason string) {
	cols := columns()
	if !strings.HasPrefix(s, "[") {
		return rowSyntax
	}
	s = s[1:]
	var lastUpdated string
	var bad string
	for i := range cols {
		if i > 0 {
			if !strings.HasPrefix(s, ",") {
				return rowSyntax
			}
			s = s[1:]
		}
		v, null, rest, err := jsonValue(s)
		if err != nil {
			return cols[i] + ": " + rowSyntax
		}
		s = rest
		if i == merge.NumFields {
			if null {
				return "last_updated is NULL"
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
			bad = cols[i] + " is neither 1, 0 nor NULL"
		}
	}
	if s != "]" {
		return rowSyntax
	}
	if strings.TrimSpace(rec.Values[merge.FieldEmail]) == "" { // no join key (merge.Key), without its allocation
		return "email is NULL or blank: the row has no key"
	}
	if bad != "" {
		return bad
	}
	t, err := time.Parse(time.RFC3339, lastUpdated)
	if err != nil {
		return "last_updated is not RFC 3339"
	}
	rec.LastUpdated = t.UTC()
	return ""
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
