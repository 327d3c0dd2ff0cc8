package demo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/demo"
	"github.com/acme/unified-customer-service/cmd/local/internal/s3local"
)

// Example wires the embedded S3 server and the System B simulator and seeds
// them, as the local tool's `up` command does.
func Example() {
	root, _ := os.MkdirTemp("", "demo-example")
	defer os.RemoveAll(root)
	ctx := context.Background()

	s3srv, err := s3local.Start(ctx, s3local.Config{Addr: "127.0.0.1:0", Dir: filepath.Join(root, "s3"), Buckets: []string{"snapshots", "reports"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s3srv.Close()
	sim := bsim.New(bsim.Config{})

	sum, err := demo.Seed(ctx, demo.Config{
		Dir: filepath.Join(root, "demo"), N: 100,
		S3: s3srv.Client(), Bucket: "snapshots", Key: "systema/customers.db",
		Sim: sim,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("generated:", sum.Generated, "uploaded:", sum.Uploaded)
	fmt.Println("System B customers loaded:", sum.Loaded == sum.Truth.SystemB)
	fmt.Println("a conflict:", sum.Showcase.Conflict)
	// Output:
	// generated: true uploaded: true
	// System B customers loaded: true
	// a conflict: grace.hopper@example.com
}
