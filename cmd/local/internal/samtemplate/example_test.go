package samtemplate_test

import (
	"fmt"

	"github.com/acme/unified-customer-service/cmd/local/internal/samtemplate"
)

func ExampleParse() {
	tpl, err := samtemplate.Parse([]byte(`
Parameters:
  Bucket: {Type: String, Default: ucs-snapshots}
Globals:
  Function:
    Timeout: 10
    Environment:
      Variables:
        SNAPSHOT_URI: !Sub "s3://${Bucket}/customers.db"
        REGION: !Ref AWS::Region
Resources:
  LookupFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Lookup:
          Type: HttpApi
          Properties: {Path: "/customer/{email}", Method: get}
`), "/src", samtemplate.Options{Parameters: map[string]string{"Bucket": "other"}, Region: "eu-west-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	f, _ := tpl.Function("LookupFunction")
	fmt.Println(f.Timeout, f.Environment["SNAPSHOT_URI"], f.Environment["REGION"], f.Routes[0].Key())
	// Output: 10s s3://other/customers.db eu-west-1 GET /customer/{email}
}
