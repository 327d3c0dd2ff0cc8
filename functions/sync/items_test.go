package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/testkit"
)

// pair is what both systems answer for one customer.
type pair struct{ a, b testkit.Answer }

func (p pair) failed() bool {
	return failing(p.a) || p.b == testkit.Unavailable || p.b == testkit.BadData
}

func failing(a testkit.Answer) bool { return a == testkit.Unavailable || a == testkit.BadData }

// wantStatus is the model of one customer's result.
func (p pair) wantStatus() Status {
	switch {
	case p.failed():
		return StatusUnknown
	case p.a == testkit.Found && p.b == testkit.Found:
		return StatusInSync // CustomerFor picks the in-sync showcase customer
	case p.a == testkit.Found || p.b == testkit.Found:
		return StatusConflicts // held by one system: every field is a difference
	}
	return StatusNotFound
}

// wantDegraded is the model of the systems that failed for the customer.
func (p pair) wantDegraded() []merge.Source {
	var out []merge.Source
	if failing(p.a) {
		out = append(out, merge.SystemA)
	}
	if failing(p.b) {
		out = append(out, merge.SystemB)
	}
	return out
}

// wantProblemStatus is the model of the status of a customer's failure:
// 503 when a system could not be asked, else 502 (bad data).
func (p pair) wantProblemStatus() int {
	if p.a == testkit.Unavailable || p.b == testkit.Unavailable {
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// pairsFor lists the answer pairs the data allows for a customer held
// (or not) by each system: found where it is held, not found where it is
// not, and either failure anywhere.
func pairsFor(inA, inB bool) []pair {
	answers := func(held bool) []testkit.Answer {
		if held {
			return []testkit.Answer{testkit.Found, testkit.Unavailable, testkit.BadData}
		}
		return []testkit.Answer{testkit.NotFound, testkit.Unavailable, testkit.BadData}
	}
	var out []pair
	for _, a := range answers(inA) {
		for _, b := range answers(inB) {
			out = append(out, pair{a, b})
		}
	}
	return out
}

// syncOf posts emails to a handler over sys and decodes the answer: the
// results of a 200, or the problem's status, degraded and Retry-After.
func syncOf(t *testing.T, sys *testkit.Systems, emails []string) (events.APIGatewayV2HTTPResponse, Response) {
	t.Helper()
	h, logs, _ := newHandler(t, sys)
	body, _ := json.Marshal(map[string][]string{"emails": emails})
	resp, err := h.Handle(context.Background(), events.APIGatewayV2HTTPRequest{Body: string(body)})
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckHeaders(t, resp)
	if strings.Contains(logs.String(), "@") {
		t.Errorf("logs contain an email: %s", logs.String())
	}
	var r Response
	if resp.StatusCode == http.StatusOK {
		r = decode(t, resp.Body)
	} else {
		testkit.ProblemDetail(t, resp)
	}
	return resp, r
}

// checkResult checks one customer's result against the model.
func checkResult(t *testing.T, res Result, p pair) {
	t.Helper()
	if res.Status != p.wantStatus() {
		t.Errorf("%v: status %q, want %q", p, res.Status, p.wantStatus())
	}
	if !slices.Equal(res.Degraded, p.wantDegraded()) {
		t.Errorf("%v: degraded %v, want %v", p, res.Degraded, p.wantDegraded())
	}
	if !p.failed() {
		if res.Problem != nil || res.Reasons != nil {
			t.Errorf("%v: an answered customer carries a problem: %+v %v", p, res.Problem, res.Reasons)
		}
		return
	}
	if res.InSync || len(res.Conflicts) != 0 {
		t.Errorf("%v: unknown yet inSync %v, conflicts %v", p, res.InSync, res.Conflicts)
	}
	if res.Problem == nil || res.Problem.Status != p.wantProblemStatus() || res.Problem.Detail == "" || strings.Contains(res.Problem.Detail, "@") {
		t.Errorf("%v: problem %+v, want status %d with a detail and no email", p, res.Problem, p.wantProblemStatus())
	}
	for _, s := range p.wantDegraded() {
		a := p.a
		if s == merge.SystemB {
			a = p.b
		}
		if res.Reasons[string(s)] != string(a) {
			t.Errorf("%v: reasons %v, want %s: %s", p, res.Reasons, s, a)
		}
	}
	if len(res.Reasons) != len(p.wantDegraded()) {
		t.Errorf("%v: reasons %v for degraded %v", p, res.Reasons, p.wantDegraded())
	}
}

// TestSyncEveryAnswerOneCustomer: one customer, each system found / not
// found / unavailable / bad data: 200 with the customer's state when both
// answered; else no customer could be answered and the answer is the
// failure's problem (503 with Retry-After when a system could not be asked,
// 502 for bad data alone).
func TestSyncEveryAnswerOneCustomer(t *testing.T) {
	testkit.EachPair(t, func(t *testing.T, a, b testkit.Answer) {
		p := pair{a, b}
		email := testkit.CustomerFor(a, b)
		resp, r := syncOf(t, testkit.NewSystemsAnswering(t, email, a, b), []string{email})
		if !p.failed() {
			if resp.StatusCode != http.StatusOK || len(r.Results) != 1 || r.Partial || len(r.Degraded) != 0 {
				t.Fatalf("status %d: %s, want 200, not partial", resp.StatusCode, resp.Body)
			}
			checkResult(t, r.Results[0], p)
			return
		}
		if resp.StatusCode != p.wantProblemStatus() {
			t.Fatalf("status %d, want %d: %s", resp.StatusCode, p.wantProblemStatus(), resp.Body)
		}
		if (resp.Headers["Retry-After"] != "") != (resp.StatusCode == http.StatusServiceUnavailable) {
			t.Errorf("Retry-After %q with status %d", resp.Headers["Retry-After"], resp.StatusCode)
		}
	})
}

// TestSyncEveryAnswerInABatch: each combination beside a customer both
// systems answer: 200, the healthy customer answered, the other one with
// its own state, and the batch partial when that one is unknown.
func TestSyncEveryAnswerInABatch(t *testing.T) {
	testkit.EachPair(t, func(t *testing.T, a, b testkit.Answer) {
		p := pair{a, b}
		email := testkit.CustomerFor(a, b)
		resp, r := syncOf(t, testkit.NewSystemsAnswering(t, email, a, b), []string{email, demodata.ShowcaseCosmetic})
		if resp.StatusCode != http.StatusOK || len(r.Results) != 2 {
			t.Fatalf("status %d: %s, want 200 with two results", resp.StatusCode, resp.Body)
		}
		checkResult(t, r.Results[0], p)
		checkResult(t, r.Results[1], pair{testkit.Found, testkit.Found})
		if r.Partial != p.failed() || !slices.Equal(r.Degraded, p.wantDegraded()) {
			t.Errorf("partial %v degraded %v, want %v %v", r.Partial, r.Degraded, p.failed(), p.wantDegraded())
		}
	})
}

// TestSyncEveryMixedBatch answers every batch of the four showcase
// customers (in both systems, only in A, only in B, in neither) with every
// combination of answers the data allows for each (9^4 batches): each
// customer gets its own state; the answer is 200 when at least one
// customer was answered, else the worst failure's problem (503 when any
// system could not be asked, else 502), naming every system that failed.
func TestSyncEveryMixedBatch(t *testing.T) {
	held := []struct {
		email    string
		inA, inB bool
	}{
		{demodata.ShowcaseInSync, true, true},
		{demodata.ShowcaseOnlyInSystemA, true, false},
		{demodata.ShowcaseOnlyInSystemB, false, true},
		{testkit.MissingEmail, false, false},
	}
	emails := make([]string, len(held))
	options := make([][]pair, len(held))
	total := 1
	for i, h := range held {
		emails[i] = h.email
		options[i] = pairsFor(h.inA, h.inB)
		total *= len(options[i])
	}
	if total != 9*9*9*9 {
		t.Fatalf("%d batches, want 9^4: the model of the data is wrong", total)
	}
	sys := testkit.NewSystems(t, 0)
	for n := range total {
		batch := make([]pair, len(emails))
		for i, rest := 0, n; i < len(emails); i++ {
			batch[i] = options[i][rest%len(options[i])]
			rest /= len(options[i])
			sys.Answer(emails[i], batch[i].a, batch[i].b)
		}
		answered, unavailable := false, false
		var degraded []merge.Source
		for _, p := range batch {
			answered = answered || !p.failed()
			unavailable = unavailable || p.failed() && p.wantProblemStatus() == http.StatusServiceUnavailable
			for _, s := range p.wantDegraded() {
				if !slices.Contains(degraded, s) {
					degraded = append(degraded, s)
				}
			}
		}
		slices.Sort(degraded)
		resp, r := syncOf(t, sys, emails)
		switch {
		case answered:
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("batch %v: status %d, want 200: %s", batch, resp.StatusCode, resp.Body)
			}
			for i, p := range batch {
				checkResult(t, r.Results[i], p)
			}
			if r.Partial != (len(degraded) > 0) || !slices.Equal(r.Degraded, degraded) {
				t.Errorf("batch %v: partial %v degraded %v, want degraded %v", batch, r.Partial, r.Degraded, degraded)
			}
		default:
			want := http.StatusBadGateway
			if unavailable {
				want = http.StatusServiceUnavailable
			}
			var prob struct{ Degraded []merge.Source }
			if err := json.Unmarshal([]byte(resp.Body), &prob); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != want || !slices.Equal(prob.Degraded, degraded) {
				t.Errorf("batch %v: status %d degraded %v, want %d %v", batch, resp.StatusCode, prob.Degraded, want, degraded)
			}
		}
		if t.Failed() {
			t.Fatalf("batch %d of %d: %v", n, total, batch)
		}
	}
}

// TestSyncOneCustomerDownOfABatch is the case: System B fails for
// one customer of a batch; the others are answered and the batch is 200.
func TestSyncOneCustomerDownOfABatch(t *testing.T) {
	sys := testkit.NewSystems(t, 0)
	sys.Answer(demodata.ShowcaseConflict, testkit.Found, testkit.Unavailable)
	resp, r := syncOf(t, sys, []string{demodata.ShowcaseInSync, demodata.ShowcaseConflict, demodata.ShowcaseOnlyInSystemA})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, resp.Body)
	}
	want := []Status{StatusInSync, StatusUnknown, StatusConflicts}
	for i, res := range r.Results {
		if res.Status != want[i] {
			t.Errorf("result %d: status %s, want %s", i, res.Status, want[i])
		}
	}
	down := r.Results[1]
	if !slices.Equal(down.PresentIn, []merge.Source{merge.SystemA}) || down.Problem == nil ||
		down.Problem.Detail != "conflict detection needs both systems: the customer is in System A and System B could not be asked; try again later" {
		t.Errorf("unknown result: %+v problem %+v", down, down.Problem)
	}
	if !r.Partial || !slices.Equal(r.Degraded, []merge.Source{merge.SystemB}) {
		t.Errorf("partial %v degraded %v, want true [systemB]", r.Partial, r.Degraded)
	}
}
