// Package report stores reconciliation reports under REPORT_URI, either an
// S3 prefix or a local directory. Every write is conditional: PutIfAbsent
// creates an object whole or not at all and never overwrites one (the
// write-once report, which makes a second delivery of the same scheduled
// event harmless); Replace overwrites an object only if it is still the
// version the caller read (compare-and-swap on its tag, S3's ETag), which
// is what a reconciliation run's lease is renewed and taken over with.
package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/acme/unified-customer-service/shared/location"
)

// Errors at the boundary.
var (
	ErrExists   = errors.New("report: object already exists")
	ErrNotExist = errors.New("report: object does not exist")
	// ErrChanged: a Replace found the object changed (or gone) since the
	// tag it was given was read. Nothing was written; read it again.
	ErrChanged = errors.New("report: object changed since it was read")
)

// Store is an object store for reports with conditional writes only.
//
// A tag identifies an object's content (S3's ETag: the MD5 of a
// single-part object's body; a SHA-256 for file://). Two writes of the same
// bytes have the same tag, so callers that compare-and-swap put something
// unique in every body (a token, a timestamp).
type Store interface {
	// PutIfAbsent stores body under key unless key exists (ErrExists), and
	// returns the new object's tag.
	PutIfAbsent(ctx context.Context, key string, body io.ReadSeeker, contentType string) (tag string, err error)
	// Replace stores body under key only if the object there still has tag
	// (ErrChanged when it has another, or is gone), and returns the new tag.
	Replace(ctx context.Context, key string, body io.ReadSeeker, contentType, tag string) (newTag string, err error)
	// Get returns the object under key and its tag (ErrNotExist when absent).
	Get(ctx context.Context, key string) (body []byte, tag string, err error)
	// Location renders key as a URI for humans and summaries.
	Location(key string) string
}

// S3API is the part of the S3 client the store uses.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Open returns the store for uri: s3://bucket/prefix (client required) or
// file:///abs/dir.
func Open(uri string, client S3API) (Store, error) {
	u, err := location.Parse("REPORT_URI", uri, location.Prefix)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if u.Scheme == "file" {
		return &FileStore{Dir: u.Path}, nil
	}
	if client == nil {
		return nil, errors.New("report: an S3 client is required for s3:// URIs")
	}
	return &S3Store{Client: client, Bucket: u.Bucket, Prefix: u.Key}, nil
}

// S3Store writes reports to an S3 prefix with S3's conditional writes:
// If-None-Match: * for PutIfAbsent and If-Match: <ETag> for Replace. S3
// answers a failed condition with 412 PreconditionFailed, and a write that
// races another conditional write on the same key with 409
// ConditionalRequestConflict; both mean "someone else wrote it", so both
// map to ErrExists (PutIfAbsent) or ErrChanged (Replace), and the caller
// reads the object again to see whose it is. That also covers the SDK
// retrying a write whose first attempt landed but whose answer was lost:
// the retry fails its condition against the caller's own write.
type S3Store struct {
	Client S3API
	Bucket string
	Prefix string
}

var _ Store = (*S3Store)(nil)

func (s *S3Store) objectKey(key string) string { return path.Join(s.Prefix, key) }

// Location implements Store.
func (s *S3Store) Location(key string) string {
	return "s3://" + s.Bucket + "/" + s.objectKey(key)
}

// PutIfAbsent implements Store.
func (s *S3Store) PutIfAbsent(ctx context.Context, key string, body io.ReadSeeker, contentType string) (string, error) {
	tag, err := s.put(ctx, key, body, contentType, &s3.PutObjectInput{IfNoneMatch: aws.String("*")})
	if errors.Is(err, errCondition) {
		return "", fmt.Errorf("report: put %s: %w", key, ErrExists)
	}
	return tag, err
}

// Replace implements Store.
func (s *S3Store) Replace(ctx context.Context, key string, body io.ReadSeeker, contentType, tag string) (string, error) {
	if tag == "" {
		return "", fmt.Errorf("report: replace %s: no tag", key)
	}
	newTag, err := s.put(ctx, key, body, contentType, &s3.PutObjectInput{IfMatch: aws.String(tag)})
	if errors.Is(err, errCondition) {
		return "", fmt.Errorf("report: replace %s: %w", key, ErrChanged)
	}
	return newTag, err
}

// errCondition is a failed write condition, translated by the callers of put.
var errCondition = errors.New("condition failed")

// put writes body with the conditions set in in and returns the ETag.
func (s *S3Store) put(ctx context.Context, key string, body io.ReadSeeker, contentType string, in *s3.PutObjectInput) (string, error) {
	in.Bucket, in.Key = aws.String(s.Bucket), aws.String(s.objectKey(key))
	in.Body, in.ContentType = body, aws.String(contentType)
	out, err := s.Client.PutObject(ctx, in)
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) {
			switch api.ErrorCode() {
			case "PreconditionFailed", "ConditionalRequestConflict":
				return "", errCondition
			case "NoSuchKey": // If-Match on a key that is gone
				if in.IfMatch != nil {
					return "", errCondition
				}
			}
		}
		return "", fmt.Errorf("report: put %s: %w", key, err)
	}
	return aws.ToString(out.ETag), nil
}

// Get implements Store.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.objectKey(key))})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound") {
			return nil, "", fmt.Errorf("report: get %s: %w", key, ErrNotExist)
		}
		return nil, "", fmt.Errorf("report: get %s: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", fmt.Errorf("report: get %s: read: %w", key, err)
	}
	return b, aws.ToString(out.ETag), nil
}

// FileStore writes reports below a directory. PutIfAbsent writes a
// temporary file and hard-links it into place, which fails if the name
// exists: the file:// match for S3's If-None-Match. Replace holds an
// exclusive lock on a lock file beside the object (flock: released by the
// kernel if the process dies), compares the object's tag and renames a
// temporary file over it: the match for If-Match. Readers see the old
// object or the new one, never a part. A tag is the hex SHA-256 of the
// content.
type FileStore struct {
	Dir string
}

var _ Store = (*FileStore)(nil)

// Location implements Store.
func (f *FileStore) Location(key string) string { return "file://" + filepath.Join(f.Dir, key) }

// PutIfAbsent implements Store.
func (f *FileStore) PutIfAbsent(_ context.Context, key string, body io.ReadSeeker, _ string) (string, error) {
	dst, err := f.path(key)
	if err != nil {
		return "", err
	}
	tmp, tag, err := writeTemp(dst, body)
	if err != nil {
		return "", fmt.Errorf("report: put %s: %w", key, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("report: put %s: %w", key, ErrExists)
		}
		return "", fmt.Errorf("report: put %s: link: %w", key, err)
	}
	return tag, nil
}

// Replace implements Store.
func (f *FileStore) Replace(_ context.Context, key string, body io.ReadSeeker, _, tag string) (string, error) {
	dst, err := f.path(key)
	if err != nil {
		return "", err
	}
	tmp, newTag, err := writeTemp(dst, body)
	if err != nil {
		return "", fmt.Errorf("report: replace %s: %w", key, err)
	}
	defer os.Remove(tmp)
	unlock, err := lockFile(dst + ".lock")
	if err != nil {
		return "", fmt.Errorf("report: replace %s: lock: %w", key, err)
	}
	defer unlock()
	cur, err := os.ReadFile(dst)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("report: replace %s: %w", key, ErrChanged)
	}
	if err != nil {
		return "", fmt.Errorf("report: replace %s: %w", key, err)
	}
	if contentTag(cur) != tag {
		return "", fmt.Errorf("report: replace %s: %w", key, ErrChanged)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("report: replace %s: rename: %w", key, err)
	}
	return newTag, nil
}

// writeTemp writes body to a synced temporary file beside dst and returns
// its path and the content's tag.
func writeTemp(dst string, body io.ReadSeeker) (string, string, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("write: %w", err)
	}
	return tmp.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// contentTag is the tag of a FileStore object.
func contentTag(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Get implements Store.
func (f *FileStore) Get(_ context.Context, key string) ([]byte, string, error) {
	p, err := f.path(key)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("report: get %s: %w", key, ErrNotExist)
	}
	if err != nil {
		return nil, "", fmt.Errorf("report: get %s: %w", key, err)
	}
	return b, contentTag(b), nil
}

// path maps key below Dir, refusing keys that would leave it.
func (f *FileStore) path(key string) (string, error) {
	if !filepath.IsLocal(filepath.FromSlash(key)) {
		return "", fmt.Errorf("report: key %q leaves the report directory", key)
	}
	return filepath.Join(f.Dir, filepath.FromSlash(key)), nil
}
