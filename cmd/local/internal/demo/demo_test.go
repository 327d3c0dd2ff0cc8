package demo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/acme/unified-customer-service/cmd/local/internal/bsim"
	"github.com/acme/unified-customer-service/cmd/local/internal/s3local"
	"github.com/acme/unified-customer-service/shared/demodata"
	"github.com/acme/unified-customer-service/shared/merge"
	"github.com/acme/unified-customer-service/shared/systema"
	"github.com/acme/unified-customer-service/shared/systemb"
)

const (
	testBucket = "snapshots"
	testKey    = "systema/customers.db"
)

func startS3(t *testing.T) *s3local.Server {
	t.Helper()
	srv, err := s3local.Start(context.Background(), s3local.Config{Addr: "127.0.0.1:0", Dir: t.TempDir(), Buckets: []string{testBucket}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func seed(t *testing.T, cfg Config) Summary {
	t.Helper()
	sum, err := Seed(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	return sum
}

// object returns the snapshot object's body and version.
func object(t *testing.T, c *s3.Client) ([]byte, string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(testKey)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, aws.ToString(out.VersionId)
}

func TestSeedEndToEnd(t *testing.T) {
	srv := startS3(t)
	client := srv.Client()
	dir := t.TempDir()
	cfg := Config{Dir: dir, N: 300, Seed: 7, S3: client, Bucket: testBucket, Key: testKey}

	// First run: generate, upload, load.
	cfg.Sim = bsim.New(bsim.Config{})
	first := seed(t, cfg)
	if !first.Generated || !first.Uploaded || first.VersionID == "" {
		t.Fatalf("first run: %+v", first)
	}
	if first.Truth.Seed != 7 || first.Truth.N != 300 || !first.Truth.Showcase {
		t.Errorf("truth %+v", first.Truth)
	}
	if first.Loaded != first.Truth.SystemB || cfg.Sim.Len() != first.Truth.SystemB {
		t.Errorf("simulator holds %d (summary %d), truth says System B holds %d", cfg.Sim.Len(), first.Loaded, first.Truth.SystemB)
	}
	file, err := os.ReadFile(filepath.Join(dir, demodata.SnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	body, vid := object(t, client)
	if !bytes.Equal(body, file) || vid != first.VersionID {
		t.Errorf("S3 object: %d bytes version %q; file %d bytes, summary version %q", len(body), vid, len(file), first.VersionID)
	}
	if !bytes.HasPrefix(body, []byte("SQLite format 3\x00")) {
		t.Error("the uploaded snapshot is not a SQLite file")
	}
	// The export contract's manifest is the object's metadata.
	head, err := client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(testKey)})
	if err != nil {
		t.Fatal(err)
	}
	want, err := systema.ManifestOf(filepath.Join(dir, demodata.SnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := systema.ManifestFromMetadata(head.Metadata); err != nil || got != want {
		t.Errorf("object manifest %+v (%v), want %+v", got, err, want)
	}

	// The showcase customers are where their situations say.
	sc := first.Showcase
	if sc != ShowcaseCustomers() || sc.Conflict != demodata.ShowcaseConflict {
		t.Errorf("showcase %+v", sc)
	}
	doc, ok := cfg.Sim.Customer(strings.ToUpper(sc.Conflict))
	if !ok {
		t.Fatal("the conflict showcase customer is not in the simulator")
	}
	rec, err := systemb.UnmarshalCustomer(doc)
	if err != nil || rec.Get(merge.FieldPhone) != demodata.ShowcaseConflictPhoneB {
		t.Errorf("conflict customer in System B: %v %v", rec, err)
	}
	for _, email := range []string{sc.InSync, sc.OnlyInSystemB, sc.NonASCII, sc.Cosmetic} {
		if _, ok := cfg.Sim.Customer(email); !ok {
			t.Errorf("showcase customer %q missing from System B", email)
		}
	}
	if _, ok := cfg.Sim.Customer(sc.OnlyInSystemA); ok {
		t.Error("the System A-only showcase customer is in System B")
	}

	// Second run, same config: nothing generated or uploaded; loaded again.
	before, _ := os.Stat(filepath.Join(dir, demodata.SystemBFile))
	cfg.Sim = bsim.New(bsim.Config{})
	second := seed(t, cfg)
	after, _ := os.Stat(filepath.Join(dir, demodata.SystemBFile))
	if second.Generated || second.Uploaded || second.VersionID != first.VersionID || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("second run: %+v", second)
	}
	if second.Loaded != first.Loaded {
		t.Errorf("second run loaded %d, first %d", second.Loaded, first.Loaded)
	}

	// Another size: regenerated and uploaded as a new version.
	cfg.N = 150
	cfg.Sim = bsim.New(bsim.Config{})
	third := seed(t, cfg)
	if !third.Generated || !third.Uploaded || third.VersionID == first.VersionID || third.Truth.N != 150 {
		t.Errorf("third run: %+v", third)
	}
	if third.Loaded >= first.Loaded {
		t.Errorf("third run loaded %d customers, want fewer than %d", third.Loaded, first.Loaded)
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	var files [2][]byte
	for i := range files {
		dir := t.TempDir()
		seed(t, Config{Dir: dir, N: 100, Seed: 3})
		b, err := os.ReadFile(filepath.Join(dir, demodata.SystemBFile))
		if err != nil {
			t.Fatal(err)
		}
		files[i] = b
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("two runs with one seed wrote different System B files")
	}
}

func TestSeedValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative n", Config{N: -1}},
		{"S3 without bucket", Config{S3: s3local.NewClient("http://127.0.0.1:1"), Key: "k"}},
		{"S3 without key", Config{S3: s3local.NewClient("http://127.0.0.1:1"), Bucket: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Dir = t.TempDir()
			if _, err := Seed(context.Background(), tt.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Seed = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestSeedUploadFailure(t *testing.T) {
	srv := startS3(t)
	_, err := Seed(context.Background(), Config{Dir: t.TempDir(), N: 20, S3: srv.Client(), Bucket: "no-such-bucket", Key: testKey})
	if err == nil || !strings.Contains(err.Error(), "upload snapshot") {
		t.Errorf("Seed into a missing bucket = %v, want an upload error", err)
	}
}
