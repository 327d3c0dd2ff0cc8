package merge_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
)

func TestKindOf(t *testing.T) {
	cause := errors.New("connection reset")
	tests := []struct {
		name string
		err  error
		want merge.ErrorKind
	}{
		{"nil", nil, ""},
		{"plain error is internal", cause, ""},
		{"bare kind", merge.ErrNotFound, merge.ErrNotFound},
		{"wrapped kind", fmt.Errorf("systemb: get customer: %w: %w", merge.ErrUnavailable, cause), merge.ErrUnavailable},
		{"twice wrapped", fmt.Errorf("unified: %w", fmt.Errorf("systema: %w", merge.ErrInvalid)), merge.ErrInvalid},
		{"bad record", &merge.BadRecordError{Source: merge.SystemA, Position: "rowid 7", Reason: "lastUpdated does not parse"}, merge.ErrBadData},
		{"unauthorized", fmt.Errorf("systemb: %w", merge.ErrUnauthorized), merge.ErrUnauthorized},
		{"first in ErrorKinds order wins", errors.Join(merge.ErrUnavailable, merge.ErrInvalid), merge.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := merge.ErrorKindOf(tt.err); got != tt.want {
				t.Errorf("ErrorKindOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestBadRecordError(t *testing.T) {
	e := &merge.BadRecordError{Source: merge.SystemB, Position: "page 3 item 9", Reason: `"lastUpdated" is not RFC 3339`}
	if got, want := e.Error(), `systemB: bad record at page 3 item 9: "lastUpdated" is not RFC 3339`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var target *merge.BadRecordError
	if err := fmt.Errorf("reconcile: %w", e); !errors.As(err, &target) || !errors.Is(err, merge.ErrBadData) {
		t.Errorf("a wrapped BadRecordError is not found by errors.As / errors.Is(ErrBadData)")
	}
}

func ExampleErrorKindOf() {
	err := fmt.Errorf("systemb: get customer: %w: status 503", merge.ErrUnavailable)
	fmt.Println(merge.ErrorKindOf(err))
	// Output: unavailable
}
