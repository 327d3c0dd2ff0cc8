package systemb

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/acme/unified-customer-service/shared/merge"
)

func TestAppendPatch(t *testing.T) {
	r := newRecord("ada@example.com")
	r.Values[merge.FieldPhone] = ""
	set := func(ids ...merge.FieldID) (s FieldSet) {
		for _, id := range ids {
			s[id] = true
		}
		return s
	}
	tests := []struct {
		name string
		set  FieldSet
		want string
	}{
		{"one top-level field", set(merge.FieldLoyaltyTier), `{"loyaltyTier":"gold"}`},
		{"a nested field", set(merge.FieldCity), `{"address":{"city":"London"}}`},
		{"nested then top-level", set(merge.FieldLastName, merge.FieldCity, merge.FieldCountry, merge.FieldMarketingOptIn),
			`{"lastName":"Lovelace","address":{"city":"London","country":"GB"},"marketingOptIn":true}`},
		{"an absent value is null", set(merge.FieldPhone), `{"phone":null}`},
		{"the email is never written", set(merge.FieldEmail, merge.FieldFirstName), `{"firstName":"Ada"}`},
		{"an empty set", FieldSet{}, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendPatch(nil, &r, tt.set)
			if string(got) != tt.want {
				t.Errorf("AppendPatch = %s, want %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

func TestGetWithETag(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("ETag", `"r7"`)
		writeJSON(w, customerJSON("ada@example.com"))
	})
	c, _ := newClient(t, s.URL, nil)
	r, etag, err := c.GetWithETag(context.Background(), "ada@example.com")
	if err != nil || r == nil || etag != `"r7"` {
		t.Fatalf("GetWithETag = %v, %q, %v; want the record and \"r7\"", r, etag, err)
	}
}

func TestPatch(t *testing.T) {
	r := newRecord("ada@example.com")
	var tier FieldSet
	tier[merge.FieldLoyaltyTier] = true
	tests := []struct {
		name     string
		statuses []int // answers in order; 200 serves the customer; the last repeats
		want     error
		requests int
	}{
		{"200 returns the stored record and its ETag", []int{200}, nil, 1},
		{"412 is not retried", []int{412, 200}, ErrPreconditionFailed, 1},
		{"405 means no API v1.1", []int{405, 200}, ErrNotSupported, 1},
		{"501 means no API v1.1", []int{501, 200}, ErrNotSupported, 1},
		{"404 is not found", []int{404, 200}, ErrNotFound, 1},
		{"503 is retried, safe under If-Match", []int{503, 200}, nil, 2},
		{"400 is not retried", []int{400, 200}, ErrUnavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, func(n int, w http.ResponseWriter, req *http.Request) {
				body, _ := io.ReadAll(req.Body)
				if req.Method != http.MethodPatch || req.Header.Get("If-Match") != `"r1"` ||
					req.Header.Get("Content-Type") != "application/json" || string(body) != `{"loyaltyTier":"gold"}` {
					t.Errorf("request %s If-Match %q type %q body %s", req.Method, req.Header.Get("If-Match"), req.Header.Get("Content-Type"), body)
				}
				st := tt.statuses[min(n, len(tt.statuses))-1]
				if st == http.StatusOK {
					w.Header().Set("ETag", `"r2"`)
					writeJSON(w, customerJSON("ada@example.com"))
					return
				}
				w.WriteHeader(st)
			})
			c, _ := newClient(t, s.URL, nil)
			got, etag, err := c.Patch(context.Background(), "ada@example.com", `"r1"`, &r, tier)
			if tt.want == nil {
				if err != nil || got == nil || etag != `"r2"` || got.Get(merge.FieldLoyaltyTier) != "gold" {
					t.Fatalf("Patch = %v, %q, %v; want the stored record and \"r2\"", got, etag, err)
				}
			} else {
				e := checkErr(t, err, tt.want, tt.requests, "ada@example.com")
				if e.Op != OpPatch {
					t.Errorf("Op = %q, want %q", e.Op, OpPatch)
				}
			}
			if s.Requests() != tt.requests {
				t.Errorf("%d requests, want %d", s.Requests(), tt.requests)
			}
		})
	}
}

func TestPatchRefusesWithoutARequest(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	c, _ := newClient(t, s.URL, nil)
	r := newRecord("ada@example.com")
	var tier FieldSet
	tier[merge.FieldLoyaltyTier] = true
	tests := []struct {
		name, email, etag string
		set               FieldSet
	}{
		{"no ETag: never an unconditional write", "ada@example.com", "", tier},
		{"nothing to write", "ada@example.com", `"r1"`, FieldSet{}},
		{"no email", " ", `"r1"`, tier},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.Patch(context.Background(), tt.email, tt.etag, &r, tt.set)
			checkErr(t, err, ErrInvalidArgument, 0)
			if merge.ErrorKindOf(err) != merge.ErrInvalid {
				t.Errorf("kind %v, want invalid", merge.ErrorKindOf(err))
			}
		})
	}
	if s.Requests() != 0 {
		t.Errorf("%d requests, want none", s.Requests())
	}
}
