package systemb_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systemb"
)

// fakeSystemB serves one customer and a two-page list, as System B API v1;
// the second page holds an item without its lastUpdated.
func fakeSystemB() *httptest.Server {
	ada := `{"email":"ada@example.com","firstName":"Ada","lastName":"Lovelace","address":{"city":"London"},"marketingOptIn":true,"lastUpdated":"2026-03-01T12:30:00Z"}`
	bob := `{"email":"bob@example.com","firstName":"Bob","lastUpdated":"2026-02-01T08:00:00Z"}`
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer demo-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.URL.Path == "/customers/ada@example.com":
			fmt.Fprint(w, ada)
		case r.URL.Path == "/customers" && r.URL.Query().Get("cursor") == "":
			fmt.Fprintf(w, `{"items":[%s],"nextCursor":"page-2"}`, ada)
		case r.URL.Path == "/customers":
			fmt.Fprintf(w, `{"items":[{"email":"eve@example.com"},%s],"nextCursor":null}`, bob)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
}

func ExampleClient_Get() {
	srv := fakeSystemB()
	defer srv.Close()

	c, err := systemb.New(systemb.Config{BaseURL: srv.URL, Token: systemb.StaticToken("demo-token")})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The Lambda deadline bounds every call (minus DeadlineReserve).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	r, err := c.Get(ctx, "ada@example.com")
	if err != nil {
		fmt.Println(err) // an *systemb.Error; errors.Is tells which sentinel
		return
	}
	fmt.Println(r.Get(merge.FieldFirstName), r.Get(merge.FieldCity), r.Get(merge.FieldMarketingOptIn), r.LastUpdated.Format(time.RFC3339))

	_, err = c.Get(ctx, "nobody@example.com")
	fmt.Println("not found:", errors.Is(err, systemb.ErrNotFound))
	// Output:
	// Ada London true 2026-03-01T12:30:00Z
	// not found: true
}

func ExampleClient_List() {
	srv := fakeSystemB()
	defer srv.Close()

	c, err := systemb.New(systemb.Config{BaseURL: srv.URL, Token: systemb.StaticToken("demo-token")})
	if err != nil {
		fmt.Println(err)
		return
	}
	p := c.List(context.Background(), 1000)
	defer p.Close()
	for p.Next() {
		if bad := p.BadRecord(); bad != nil {
			fmt.Println(bad) // counted and skipped: the Pager carries on
			continue
		}
		fmt.Println(p.Record().Email())
	}
	if err := p.Err(); err != nil {
		fmt.Println("stopped:", err)
	}
	fmt.Println("pages:", p.Pages())
	// Output:
	// ada@example.com
	// systemB: bad record at page 2 item 1: lastUpdated is missing
	// bob@example.com
	// pages: 2
}
