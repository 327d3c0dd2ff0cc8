package apigw_test

import (
	"fmt"

	"github.com/acme/unified-customer-service/cmd/local/internal/apigw"
)

func ExampleDecodeResponse() {
	// A payload 2.0 proxy response, and a plain object HTTP APIs answer as 200 JSON.
	for _, payload := range []string{
		`{"statusCode": 404, "headers": {"content-type": "application/problem+json"}, "body": "{\"status\":404}"}`,
		`{"hello": "world"}`,
	} {
		r, err := apigw.DecodeResponse([]byte(payload))
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(r.StatusCode, r.Header.Get("Content-Type"), string(r.Body))
	}
	// Output:
	// 404 application/problem+json {"status":404}
	// 200 application/json {"hello": "world"}
}
