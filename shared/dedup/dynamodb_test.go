package dedup_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/acme/unified-customer-service/shared/dedup"
)

// motoDynamoDB starts moto's server mode on a free 127.0.0.1 port and
// returns a DynamoDB client for it; the test is skipped without moto
// (make test installs it).
func motoDynamoDB(t *testing.T) *dynamodb.Client {
	t.Helper()
	if err := exec.Command("python3", "-c", "import moto.server").Run(); err != nil {
		t.Skip("moto is not installed (python3 -m pip install 'moto[server]'; make test does): the DynamoDB store is not tested")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	var out bytes.Buffer // moto logs every request: shown only when the test fails
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("moto's output:\n%s", out.String())
		}
	})
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Wait for it to answer, as long as the process lives (a Python start
	// takes a few seconds on a loaded machine).
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("moto exited before answering")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

func TestDynamoDB(t *testing.T) {
	client := motoDynamoDB(t)
	ctx := context.Background()
	// The table as template.yaml declares it.
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("ucs-dedup"),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(dedup.AttrPK), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(dedup.AttrPK), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String("ucs-dedup"),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(dedup.AttrExpiresAt), Enabled: aws.Bool(true)},
	}); err != nil {
		t.Fatalf("enable TTL: %v", err)
	}
	c := &clock{now: t0}
	testStore(t, dedup.NewDynamoDB(client, "ucs-dedup", c.Now), c)

	t.Run("a missing table is unavailable", func(t *testing.T) {
		st := dedup.NewDynamoDB(client, "no-such-table", c.Now)
		if _, err := st.Seen(ctx, "x"); err == nil {
			t.Errorf("Seen on a missing table succeeded")
		}
	})
}
