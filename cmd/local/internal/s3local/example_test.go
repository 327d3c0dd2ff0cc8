package s3local_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/acme/unified-customer-service/cmd/local/internal/s3local"
)

// Example starts the embedded S3 server with a versioned bucket, writes an
// object twice and reads the first version back.
func Example() {
	dir, _ := os.MkdirTemp("", "s3local-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	srv, err := s3local.Start(ctx, s3local.Config{Addr: "127.0.0.1:0", Dir: dir, Buckets: []string{"snapshots"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	c := srv.Client() // or s3local.NewClient(srv.URL())

	var ids []string
	for _, body := range []string{"v1", "v2"} {
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("snapshots"), Key: aws.String("k"), Body: strings.NewReader(body)})
		if err != nil {
			fmt.Println(err)
			return
		}
		ids = append(ids, aws.ToString(out.VersionId))
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("snapshots"), Key: aws.String("k"), VersionId: aws.String(ids[0])})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out.Body.Close()
	body, _ := io.ReadAll(out.Body)
	fmt.Println(ids[0] != ids[1], string(body))
	// Output: true v1
}
