package systema

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want URI
		err  string
	}{
		{in: "s3://bucket/key.db", want: URI{Scheme: "s3", Bucket: "bucket", Key: "key.db"}},
		{in: "s3://my-bucket/nightly/systema/customers.db", want: URI{Scheme: "s3", Bucket: "my-bucket", Key: "nightly/systema/customers.db"}},
		{in: "file:///tmp/customers.db", want: URI{Scheme: "file", Path: "/tmp/customers.db"}},
		{in: "file://localhost/var/data/../snap.db", want: URI{Scheme: "file", Path: "/var/snap.db"}},
		{in: "", err: "SNAPSHOT_URI is empty"},
		{in: "   ", err: "SNAPSHOT_URI is empty"},
		{in: "s3://bucket", err: "needs a bucket and an object key"},
		{in: "s3://bucket/", err: "needs a bucket and an object key"},
		{in: "s3:///key", err: "needs a bucket and an object key"},
		{in: "s3://bucket/prefix/", err: "needs a bucket and an object key"},
		{in: "s3://bucket/key?versionId=1", err: "no query"},
		{in: "file://relative/path.db", err: "file URIs take no host"},
		{in: "file:relative.db", err: "needs an absolute file path"},
		{in: "/tmp/customers.db", err: `unsupported scheme ""`},
		{in: "https://bucket.s3.amazonaws.com/key", err: `unsupported scheme "https"`},
		{in: "s3://bu cket/%zz", err: "does not parse"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURI(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "SNAPSHOT_URI") {
					t.Fatalf("ParseURI(%q) = %+v, %v; want an error naming SNAPSHOT_URI and %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseURI(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			if back, err := ParseURI(got.String()); err != nil || back != got {
				t.Fatalf("round trip of %q: %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestNewSource(t *testing.T) {
	s3u, _ := ParseURI("s3://b/k")
	if _, err := NewSource(s3u, nil); err == nil {
		t.Fatal("s3 source without a client accepted")
	}
	f := newFakeS3(t, true)
	if src, err := NewSource(s3u, f.client); err != nil || src == nil {
		t.Fatalf("s3: %v", err)
	}
	fu, _ := ParseURI("file:///tmp/x.db")
	if src, err := NewSource(fu, nil); err != nil || src == nil {
		t.Fatalf("file: %v", err)
	}
}

// TestDefaultConfigEndpoint builds the client the way the Lambda wiring
// does (config.LoadDefaultConfig): AWS_ENDPOINT_URL_S3 alone points it at a
// local S3, with no setting of our own.
func TestDefaultConfigEndpoint(t *testing.T) {
	f := newFakeS3(t, true)
	f.put(t, writeSnap(t, t.TempDir(), sampleRecords(), snapOpts{}))
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3":         f.srv.URL,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIDFAKE",
		"AWS_SECRET_ACCESS_KEY":       "fake-secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	u, err := ParseURI("s3://" + testBucket + "/" + testKey)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(u, client)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, src)
	snap := h.acquire(t)
	defer snap.Release()
	if got := firstName(t, snap, "alice@example.com"); got != "Alice" {
		t.Fatalf("read %q", got)
	}
}

// racingSource publishes a new version between Stat and Fetch, once.
type racingSource struct {
	Source
	publish func()
	done    bool
}

func (r *racingSource) Fetch(ctx context.Context, v Version, dst *os.File) error {
	if !r.done {
		r.done = true
		r.publish()
	}
	return r.Source.Fetch(ctx, v, dst)
}

func TestStoreObjectReplacedDuringFetch(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		name := map[bool]string{false: "s3 unversioned (If-Match)", true: "s3 versioned (VersionId)"}[versioned]
		t.Run(name, func(t *testing.T) {
			f := newFakeS3(t, versioned)
			f.putBytes(t, snapBytes(t, versionOf("first"), snapOpts{}))
			src := &racingSource{Source: f.source(), publish: func() { f.putBytes(t, snapBytes(t, versionOf("second"), snapOpts{})) }}
			h := newHarness(t, src)
			snap := h.acquire(t)
			defer snap.Release()
			// Versioned: the stat'ed version is fetched by id. Unversioned:
			// the fetch notices the new ETag, stats again and loads that.
			want := map[bool]string{false: "second", true: "first"}[versioned]
			if got := firstName(t, snap, "alice@example.com"); got != want {
				t.Fatalf("read %q, want %q", got, want)
			}
		})
	}
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		path := writeSnap(t, dir, versionOf("first"), snapOpts{})
		src := &racingSource{Source: NewFileSource(path), publish: func() {
			b := snapBytes(t, versionOf("second-longer-name"), snapOpts{})
			if err := os.WriteFile(path+".new", b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}}
		h := newHarness(t, src)
		snap := h.acquire(t)
		defer snap.Release()
		if got := firstName(t, snap, "alice@example.com"); got != "second-longer-name" {
			t.Fatalf("read %q", got)
		}
	})
}

func TestFileSourceErrors(t *testing.T) {
	dir := t.TempDir()
	src := NewFileSource(dir) // a directory
	if _, err := src.Stat(context.Background()); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Stat of a directory: %v", err)
	}
	src = NewFileSource(filepath.Join(dir, "missing.db"))
	if _, err := src.Stat(context.Background()); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Stat of a missing file: %v", err)
	}
	if err := src.Fetch(context.Background(), Version{}, nil); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Fetch of a missing file: %v", err)
	}
}
