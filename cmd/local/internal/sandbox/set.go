package sandbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"
)

// ErrNoFunction is returned (wrapped) by Set.Invoke for a name the set does
// not hold.
var ErrNoFunction = errors.New("sandbox: no such function")

// Set holds a template's functions by name.
type Set map[string]*Function

// Invoke runs one event through the named function.
func (s Set) Invoke(ctx context.Context, name string, payload []byte, opts InvokeOptions) (*Result, error) {
	f, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoFunction, name)
	}
	return f.Invoke(ctx, payload, opts)
}

// Has reports whether the set holds the named function.
func (s Set) Has(name string) bool {
	_, ok := s[name]
	return ok
}

// Names returns the names of the functions, sorted.
func (s Set) Names() []string { return slices.Sorted(maps.Keys(s)) }

// Close closes every function.
func (s Set) Close() error {
	for _, f := range s {
		f.Close() //nolint:errcheck // Close never fails
	}
	return nil
}

// NewRequestID returns a Lambda request id (a UUID).
func NewRequestID() string { return uuid.NewString() }
