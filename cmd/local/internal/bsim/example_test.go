package bsim_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
)

// Example starts a simulator with one customer, reads it back, then makes
// System B fail every request with 503.
func Example() {
	sim := bsim.New(bsim.Config{Token: "secret"})
	err := sim.Load(strings.NewReader(`{"email":"Ann@Example.com","firstName":"Ann","lastUpdated":"2024-01-02T03:04:05Z"}` + "\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := sim.Serve("127.0.0.1:0") // a free port; DefaultAddr when ""
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	get := func(path string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, string(body))
	}
	get("/customers/ann@example.com")

	_ = sim.SetFaults(bsim.Faults{ErrorRate: 1, Status: 503}) // or PUT /_sim/faults
	get("/customers/ann@example.com")
	// Output:
	// 200 {"email":"Ann@Example.com","firstName":"Ann","lastName":null,"phone":null,"address":{"line1":null,"city":null,"postalCode":null,"country":null},"marketingOptIn":null,"loyaltyTier":null,"lastUpdated":"2024-01-02T03:04:05Z"}
	// 503 {"type":"about:blank","title":"Service Unavailable","status":503,"detail":"injected fault"}
}
