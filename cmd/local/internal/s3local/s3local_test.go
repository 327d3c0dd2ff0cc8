package s3local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

const bucketName = "snapshots"

// start runs a server on a free port over dir.
func start(t *testing.T, dir string, buckets ...string) (*Server, *s3.Client) {
	t.Helper()
	if len(buckets) == 0 {
		buckets = []string{bucketName, "reports"}
	}
	srv, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", Dir: dir, Buckets: buckets})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, srv.Client()
}

func put(t *testing.T, c *s3.Client, bucket, key, body string) string {
	t.Helper()
	out, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
	return aws.ToString(out.VersionId)
}

// get returns the body of key (at version vid when not "").
func get(t *testing.T, c *s3.Client, key, vid string) (string, error) {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key)}
	if vid != "" {
		in.VersionId = aws.String(vid)
	}
	out, err := c.GetObject(context.Background(), in)
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func mustGet(t *testing.T, c *s3.Client, key, vid, want string) {
	t.Helper()
	got, err := get(t, c, key, vid)
	if err != nil || got != want {
		t.Errorf("GET %s@%q = %q, %v; want %q", key, vid, got, err, want)
	}
}

// apiCode returns the S3 error code of err ("" when it is not an API error).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func versionIDs(t *testing.T, c *s3.Client, key string) []string {
	t.Helper()
	out, err := c.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucketName), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("ListObjectVersions: %v", err)
	}
	var ids []string
	for _, v := range out.Versions {
		ids = append(ids, aws.ToString(v.VersionId))
	}
	return ids
}

func TestStartValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"all interfaces", Config{Addr: "0.0.0.0:0", Dir: t.TempDir()}, ErrNotLoopback},
		{"other host", Config{Addr: "example.com:9000", Dir: t.TempDir()}, ErrNotLoopback},
		{"invalid bucket name", Config{Addr: "127.0.0.1:0", Dir: t.TempDir(), Buckets: []string{"Bad_Name"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := Start(context.Background(), tt.cfg)
			if err == nil {
				srv.Close()
				t.Fatal("Start succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Start = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBucketsCreatedVersioned(t *testing.T) {
	dir := t.TempDir()
	_, c := start(t, dir)
	out, err := c.ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range out.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	if !slices.Equal(names, []string{"reports", bucketName}) {
		t.Errorf("buckets %q", names)
	}
	for _, b := range names {
		v, err := c.GetBucketVersioning(context.Background(), &s3.GetBucketVersioningInput{Bucket: aws.String(b)})
		if err != nil || v.Status != types.BucketVersioningStatusEnabled {
			t.Errorf("versioning of %s: %v %v", b, v.Status, err)
		}
	}
}

func TestPutGetVersions(t *testing.T) {
	_, c := start(t, t.TempDir())
	v1 := put(t, c, bucketName, "systema/snapshot.db", "first body")
	v2 := put(t, c, bucketName, "systema/snapshot.db", "second body")
	if v1 == "" || v2 == "" || v1 == v2 {
		t.Fatalf("version ids %q, %q: want two distinct ids", v1, v2)
	}
	mustGet(t, c, "systema/snapshot.db", "", "second body")
	mustGet(t, c, "systema/snapshot.db", v1, "first body")
	mustGet(t, c, "systema/snapshot.db", v2, "second body")

	if got := versionIDs(t, c, "systema/"); !slices.Equal(got, []string{v2, v1}) {
		t.Errorf("versions %q, want newest first %q", got, []string{v2, v1})
	}
	if _, err := get(t, c, "systema/snapshot.db", "0000000000000001"); apiCode(err) != "NoSuchVersion" {
		t.Errorf("GET unknown version: %v, want NoSuchVersion", err)
	}
	if _, err := get(t, c, "missing", ""); apiCode(err) != "NoSuchKey" {
		t.Errorf("GET missing key: %v, want NoSuchKey", err)
	}

	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String("systema/snapshot.db"), VersionId: aws.String(v1), Range: aws.String("bytes=1-3")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "irs" || aws.ToString(out.VersionId) != v1 {
		t.Errorf("range GET = %q version %q", b, aws.ToString(out.VersionId))
	}

	head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucketName), Key: aws.String("systema/snapshot.db")})
	if err != nil || aws.ToString(head.VersionId) != v2 || aws.ToInt64(head.ContentLength) != int64(len("second body")) {
		t.Errorf("HEAD = %v %v", head, err)
	}
}

func TestConditionalPut(t *testing.T) {
	_, c := start(t, t.TempDir())
	ctx := context.Background()
	in := func(body string) *s3.PutObjectInput {
		return &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("runs/2024-05-06.json"), Body: strings.NewReader(body), IfNoneMatch: aws.String("*")}
	}
	if _, err := c.PutObject(ctx, in("first")); err != nil {
		t.Fatalf("first conditional put: %v", err)
	}
	_, err := c.PutObject(ctx, in("second"))
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Fatalf("second conditional put: %v, want 412", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("reports"), Key: aws.String("runs/2024-05-06.json")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "first" {
		t.Errorf("after a refused put the object is %q", b)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("runs/2024-05-06.json"), Body: strings.NewReader("x"), IfMatch: aws.String(`"00000000000000000000000000000000"`)})
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Errorf("If-Match with a wrong ETag: %v, want 412", err)
	}
	// If-Match with the ETag read: the compare-and-swap a reconciliation
	// lease is renewed with. The new ETag is answered; the old one no
	// longer matches.
	swapped, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("runs/2024-05-06.json"), Body: strings.NewReader("third"), IfMatch: out.ETag})
	if err != nil || aws.ToString(swapped.ETag) == "" || aws.ToString(swapped.ETag) == aws.ToString(out.ETag) {
		t.Fatalf("If-Match with the current ETag: %v, %v; want a new ETag", swapped, err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("runs/2024-05-06.json"), Body: strings.NewReader("fourth"), IfMatch: out.ETag})
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Errorf("If-Match with the replaced ETag: %v, want 412", err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("runs/missing.json"), Body: strings.NewReader("x"), IfMatch: out.ETag})
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Errorf("If-Match on a missing key: %v, want 412", err)
	}
}

func TestDeleteMarker(t *testing.T) {
	_, c := start(t, t.TempDir())
	ctx := context.Background()
	v1 := put(t, c, bucketName, "k", "body")
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucketName), Key: aws.String("k")})
	if err != nil || !aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) == "" {
		t.Fatalf("DeleteObject = %+v, %v", del, err)
	}
	if _, err := get(t, c, "k", ""); apiCode(err) != "NoSuchKey" {
		t.Errorf("GET after delete: %v, want NoSuchKey", err)
	}
	mustGet(t, c, "k", v1, "body")
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucketName)})
	if err != nil || len(list.Contents) != 0 {
		t.Errorf("ListObjectsV2 after delete: %d objects, %v", len(list.Contents), err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucketName), Key: aws.String("k"), VersionId: del.VersionId}); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "k", "", "body")
}

func TestListObjects(t *testing.T) {
	_, c := start(t, t.TempDir())
	keys := []string{"a/1", "a/2", "a/3", "b/1", "top"}
	for _, k := range keys {
		put(t, c, bucketName, k, k)
	}
	var got []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucketName), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			got = append(got, aws.ToString(o.Key))
		}
	}
	if !slices.Equal(got, keys) {
		t.Errorf("paged keys %q, want %q", got, keys)
	}
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucketName), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, cp := range out.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(cp.Prefix))
	}
	if !slices.Equal(prefixes, []string{"a/", "b/"}) || len(out.Contents) != 1 {
		t.Errorf("delimited list: prefixes %q, %d objects", prefixes, len(out.Contents))
	}
}

func TestUnversionedBucket(t *testing.T) {
	_, c := start(t, t.TempDir())
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("plain")}); err != nil {
		t.Fatal(err)
	}
	if v := put(t, c, "plain", "k", "one"); v != "" {
		t.Errorf("version id %q in an unversioned bucket", v)
	}
	put(t, c, "plain", "k", "two")
	out, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("plain")})
	if err != nil || len(out.Versions) != 1 || aws.ToString(out.Versions[0].VersionId) != "null" {
		t.Errorf("versions in an unversioned bucket: %+v, %v", out.Versions, err)
	}
}

func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv, c := start(t, dir)
	v1 := put(t, c, bucketName, "snap.db", "old")
	v2 := put(t, c, bucketName, "snap.db", "new")
	put(t, c, bucketName, "gone", "x")
	if _, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucketName), Key: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	_, c = start(t, dir) // the same buckets again: idempotent
	mustGet(t, c, "snap.db", "", "new")
	mustGet(t, c, "snap.db", v1, "old")
	if got := versionIDs(t, c, "snap.db"); !slices.Equal(got, []string{v2, v1}) {
		t.Errorf("versions after restart %q, want %q", got, []string{v2, v1})
	}
	if _, err := get(t, c, "gone", ""); apiCode(err) != "NoSuchKey" {
		t.Errorf("deleted object after restart: %v", err)
	}
	if v3 := put(t, c, bucketName, "snap.db", "newer"); v3 <= v2 {
		t.Errorf("version id after restart %q does not sort after %q", v3, v2)
	}
}

func TestMultipartUpload(t *testing.T) {
	_, c := start(t, t.TempDir())
	body := bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16) // 11 MiB: three parts
	up := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 5 << 20 })
	out, err := up.Upload(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucketName), Key: aws.String("big"), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := get(t, c, "big", aws.ToString(out.VersionID))
	if err != nil || got != string(body) {
		t.Errorf("multipart object: %d bytes, %v; want %d bytes", len(got), err, len(body))
	}
}

// TestDefaultSDKClient checks a client with the SDK's default checksum
// settings (as the Lambda functions build theirs) stores bodies intact.
func TestDefaultSDKClient(t *testing.T) {
	srv, _ := start(t, t.TempDir())
	c := s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(srv.URL()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("x", "y", ""),
	})
	for _, size := range []int{0, 10, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			body := strings.Repeat("z", size)
			key := fmt.Sprintf("k%d", size)
			put(t, c, bucketName, key, body)
			mustGet(t, c, key, "", body)
		})
	}
}

func TestContextStopsServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, Config{Addr: "127.0.0.1:0", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := srv.Close(); err != nil { // returns once serving has stopped
		t.Errorf("Close after cancel: %v", err)
	}
	if _, err := http.Get(srv.URL()); err == nil {
		t.Error("server still answers after its context was cancelled")
	}
}

func TestListObjectVersionsPages(t *testing.T) {
	_, c := start(t, t.TempDir())
	var want []string
	for _, k := range []string{"a", "b"} {
		var ids []string
		for i := range 3 {
			ids = append(ids, k+"@"+put(t, c, bucketName, k, fmt.Sprint(i)))
		}
		slices.Reverse(ids) // newest first
		want = append(want, ids...)
	}
	for _, size := range []int32{1, 2, 4, 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var got []string
			p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(bucketName), MaxKeys: aws.Int32(size)})
			for pages := 0; p.HasMorePages(); pages++ {
				if pages > len(want) {
					t.Fatal("pagination does not end")
				}
				page, err := p.NextPage(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range page.Versions {
					got = append(got, aws.ToString(v.Key)+"@"+aws.ToString(v.VersionId))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("versions\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestObjectCreatedHook: every committed version is announced once, with
// the version id, size and ETag a GET then sees; a refused conditional
// write announces nothing.
func TestObjectCreatedHook(t *testing.T) {
	var got []ObjectCreated
	srv, err := Start(context.Background(), Config{
		Addr: "127.0.0.1:0", Dir: t.TempDir(), Buckets: []string{bucketName},
		OnObjectCreated: func(ev ObjectCreated) { got = append(got, ev) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c := srv.Client()
	v1 := put(t, c, bucketName, "customers.db", "one")
	v2 := put(t, c, bucketName, "customers.db", "second")
	_, err = c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucketName), Key: aws.String("customers.db"),
		Body: strings.NewReader("refused"), IfNoneMatch: aws.String("*")})
	if err == nil {
		t.Fatal("a conditional put on an existing key succeeded")
	}
	if len(got) != 2 {
		t.Fatalf("%d events, want 2: %+v", len(got), got)
	}
	head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucketName), Key: aws.String("customers.db")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ev   ObjectCreated
		vid  string
		size int64
	}{
		{"first", got[0], v1, 3},
		{"second", got[1], v2, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ev.Bucket != bucketName || tt.ev.Key != "customers.db" || tt.ev.VersionID != tt.vid || tt.ev.Size != tt.size || tt.ev.Time.IsZero() {
				t.Errorf("event %+v, want version %s of %d bytes", tt.ev, tt.vid, tt.size)
			}
		})
	}
	if want := `"` + got[1].ETag + `"`; aws.ToString(head.ETag) != want {
		t.Errorf("HEAD ETag %s, event's %s", aws.ToString(head.ETag), want)
	}
}
