package systema

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3API is the part of the S3 client an S3Source uses; *s3.Client has it.
type S3API interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// S3Source reads the snapshot from one S3 object. Retries (throttling, 5xx)
// are the SDK's, configured on the client.
type S3Source struct {
	client      S3API
	bucket, key string
	uri         string
}

var _ RangeReader = (*S3Source)(nil)

// NewS3Source returns a Source for s3://bucket/key.
func NewS3Source(client S3API, bucket, key string) *S3Source {
	return &S3Source{client: client, bucket: bucket, key: key, uri: URI{Scheme: "s3", Bucket: bucket, Key: key}.String()}
}

// Stat heads the object.
func (s *S3Source) Stat(ctx context.Context) (Version, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &s.key})
	if err != nil {
		if isNotFound(err) {
			return Version{}, fmt.Errorf("systema: head %s: %w", s.uri, ErrNoSnapshot)
		}
		return Version{}, fmt.Errorf("systema: head %s: %w", s.uri, err)
	}
	v := Version{URI: s.uri, ETag: deref(out.ETag), VersionID: versionID(out.VersionId)}
	if out.ContentLength != nil {
		v.Size = *out.ContentLength
	}
	if out.LastModified != nil {
		v.LastModified = out.LastModified.UTC()
	}
	if v.Manifest, err = ManifestFromMetadata(out.Metadata); err != nil {
		return Version{}, fmt.Errorf("systema: head %s: %w", v, err)
	}
	return v, nil
}

// ReadRange reads bytes [off, off+n) of version v with one ranged GET: by
// VersionId when the bucket is versioned, else conditioned on the ETag
// (If-Match). An answer of another version (412, another ETag or total
// size, the version gone, a range past its end) wraps ErrChanged. Retries
// (throttling, 5xx) are the SDK's.
func (s *S3Source) ReadRange(ctx context.Context, v Version, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n <= 0 || (v.Size > 0 && off+n > v.Size) {
		return nil, fmt.Errorf("systema: get %s: bad range %d+%d", v, off, n)
	}
	rng := "bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10)
	in := s.getPinned(v)
	in.Range = &rng
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		switch st := httpStatus(err); {
		case st == http.StatusPreconditionFailed:
			return nil, fmt.Errorf("systema: get %s %s: %w", v, rng, ErrChanged)
		case st == http.StatusRequestedRangeNotSatisfiable:
			return nil, fmt.Errorf("systema: get %s %s: the object is shorter than its version's %d bytes: %w", v, rng, v.Size, ErrChanged)
		case isNotFound(err):
			return nil, fmt.Errorf("systema: get %s %s: the version is gone: %w", v, rng, ErrChanged)
		}
		return nil, fmt.Errorf("systema: get %s %s: %w", v, rng, err)
	}
	if etag := deref(out.ETag); v.ETag != "" && etag != "" && etag != v.ETag {
		out.Body.Close()
		return nil, fmt.Errorf("systema: get %s %s: got etag %s: %w", v, rng, etag, ErrChanged)
	}
	if total, ok := contentRangeTotal(deref(out.ContentRange)); ok && v.Size > 0 && total != v.Size {
		out.Body.Close()
		return nil, fmt.Errorf("systema: get %s %s: the object has %d bytes, its version %d: %w", v, rng, total, v.Size, ErrChanged)
	}
	if out.ContentLength != nil && *out.ContentLength != n {
		out.Body.Close()
		return nil, fmt.Errorf("systema: get %s %s: %d bytes in the answer, want %d: %w", v, rng, *out.ContentLength, n, ErrChanged)
	}
	return out.Body, nil
}

// contentRangeTotal returns the complete length of a Content-Range value
// ("bytes 0-99/1234"), if it says one.
func contentRangeTotal(cr string) (int64, bool) {
	i := strings.LastIndexByte(cr, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(cr[i+1:], 10, 64)
	return n, err == nil
}

// Fetch streams version v into dst: by VersionId when the bucket is
// versioned, else conditioned on the ETag (If-Match). The response's ETag and
// length are checked against v.
func (s *S3Source) Fetch(ctx context.Context, v Version, dst *os.File) error {
	out, err := s.client.GetObject(ctx, s.getPinned(v))
	if err != nil {
		switch {
		case isNotFound(err):
			return fmt.Errorf("systema: get %s: %w", v, ErrNoSnapshot)
		case httpStatus(err) == http.StatusPreconditionFailed:
			return fmt.Errorf("systema: get %s: %w", v, ErrChanged)
		}
		return fmt.Errorf("systema: get %s: %w", v, err)
	}
	defer out.Body.Close()
	if etag := deref(out.ETag); v.ETag != "" && etag != "" && etag != v.ETag {
		return fmt.Errorf("systema: get %s: got etag %s: %w", v, etag, ErrChanged)
	}
	n, err := io.Copy(dst, out.Body)
	if err != nil {
		return fmt.Errorf("systema: get %s: read body: %w", v, err)
	}
	if v.Size > 0 && n != v.Size {
		return fmt.Errorf("systema: get %s: read %d bytes, want %d: %w", v, n, v.Size, io.ErrUnexpectedEOF)
	}
	return nil
}

// getPinned returns a GET of exactly version v: by VersionId when the
// bucket is versioned, else conditioned on the ETag (If-Match).
func (s *S3Source) getPinned(v Version) *s3.GetObjectInput {
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &s.key}
	if v.VersionID != "" {
		in.VersionId = &v.VersionID
	} else if v.ETag != "" {
		in.IfMatch = &v.ETag
	}
	return in
}

// versionID returns the object's version id; S3 reports "null" for objects
// written while versioning was off, which cannot be fetched by id.
func versionID(p *string) string {
	if id := deref(p); id != "null" {
		return id
	}
	return ""
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// isNotFound reports an S3 "no such object" answer (HEAD has no body, so
// also a bare 404).
func isNotFound(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NotFound", "NoSuchKey", "NoSuchBucket", "NoSuchVersion":
			return true
		}
	}
	return httpStatus(err) == http.StatusNotFound
}

// httpStatus returns the HTTP status of an SDK error, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
