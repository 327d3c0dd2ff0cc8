package testkit

import (
	"fmt"
	"testing"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
)

// Answer is what one system answers for one customer in the functions'
// matrix tests.
type Answer string

// The answers a system can give.
const (
	Found       Answer = "found"       // it holds the customer
	NotFound    Answer = "notFound"    // it answered that it does not
	Unavailable Answer = "unavailable" // it could not be asked (merge.ErrUnavailable)
	BadData     Answer = "badData"     // its record breaks the contract (merge.ErrBadData)
)

// Answers lists every Answer.
func Answers() []Answer { return []Answer{Found, NotFound, Unavailable, BadData} }

// MissingEmail is in neither system's data.
const MissingEmail = "nobody.at.all@example.net"

// CustomerFor picks a showcase customer held as the answers say: a system
// that fails holds the customer (a customer created in System B today
// exists during a System B outage); MissingEmail for one held by neither.
func CustomerFor(a, b Answer) string {
	switch inA, inB := a != NotFound, b != NotFound; {
	case inA && inB:
		return demodata.ShowcaseInSync
	case inA:
		return demodata.ShowcaseOnlyInSystemA
	case inB:
		return demodata.ShowcaseOnlyInSystemB
	}
	return MissingEmail
}

// Answer makes System A answer a and System B answer b for email: the
// failures are set in AErrFor and BErrFor; Found and NotFound must match
// what the data holds (CustomerFor picks such a customer).
func (s *Systems) Answer(email string, a, b Answer) {
	if s.AErrFor == nil {
		s.AErrFor = map[string]error{}
	}
	if s.BErrFor == nil {
		s.BErrFor = map[string]error{}
	}
	key := merge.Key(email)
	s.AErrFor[key] = answerErr("testkit: system A", a)
	s.BErrFor[key] = answerErr("testkit: system B", b)
}

// answerErr is the error of a failing answer, nil for the others.
func answerErr(sys string, a Answer) error {
	switch a {
	case Unavailable:
		return fmt.Errorf("%s: connection refused: %w", sys, merge.ErrUnavailable)
	case BadData:
		return fmt.Errorf("%s: lastUpdated is not RFC 3339: %w", sys, merge.ErrBadData)
	}
	return nil
}

// EachPair runs f as a subtest named "A <a>, B <b>" for every pair of
// answers.
func EachPair(t *testing.T, f func(t *testing.T, a, b Answer)) {
	t.Helper()
	for _, a := range Answers() {
		for _, b := range Answers() {
			t.Run(fmt.Sprintf("A %s, B %s", a, b), func(t *testing.T) { f(t, a, b) })
		}
	}
}

// NewSystemsAnswering returns the showcase systems (NewSystems(t, 0)) with
// System A answering a and System B answering b for email.
func NewSystemsAnswering(t testing.TB, email string, a, b Answer) *Systems {
	t.Helper()
	s := NewSystems(t, 0)
	s.Answer(email, a, b)
	return s
}
