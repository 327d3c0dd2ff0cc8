// Package report stores reconciliation reports under REPORT_URI, either an
// S3 prefix or a local directory, with write-once semantics: an object is
// created whole or not at all, and never overwritten. That is what makes a
// second delivery of the same scheduled event harmless.
package report

import (
	"context"
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
)

// Store is a write-once object store for reports.
type Store interface {
	// PutIfAbsent stores body under key unless key exists (ErrExists).
	PutIfAbsent(ctx context.Context, key string, body io.ReadSeeker, contentType string) error
	// Get returns the object under key (ErrNotExist when absent).
	Get(ctx context.Context, key string) ([]byte, error)
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

// S3Store writes reports to an S3 prefix with conditional writes
// (If-None-Match: *), so concurrent writers cannot overwrite each other.
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
func (s *S3Store) PutIfAbsent(ctx context.Context, key string, body io.ReadSeeker, contentType string) error {
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(s.Bucket),
		Key:         aws.String(s.objectKey(key)),
		Body:        body,
		ContentType: aws.String(contentType),
		IfNoneMatch: aws.String("*"),
	})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && (api.ErrorCode() == "PreconditionFailed" || api.ErrorCode() == "ConditionalRequestConflict") {
			return fmt.Errorf("report: put %s: %w", key, ErrExists)
		}
		return fmt.Errorf("report: put %s: %w", key, err)
	}
	return nil
}

// Get implements Store.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.objectKey(key))})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound") {
			return nil, fmt.Errorf("report: get %s: %w", key, ErrNotExist)
		}
		return nil, fmt.Errorf("report: get %s: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("report: get %s: read: %w", key, err)
	}
	return b, nil
}

// FileStore writes reports below a directory. An object is written to a
// temporary file and then hard-linked into place, which fails if the name
// exists: the file:// match for S3's If-None-Match.
type FileStore struct {
	Dir string
}

var _ Store = (*FileStore)(nil)

// Location implements Store.
func (f *FileStore) Location(key string) string { return "file://" + filepath.Join(f.Dir, key) }

// PutIfAbsent implements Store.
func (f *FileStore) PutIfAbsent(ctx context.Context, key string, body io.ReadSeeker, _ string) error {
	dst, err := f.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("report: put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return fmt.Errorf("report: put %s: %w", key, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, body); err != nil {
		tmp.Close()
		return fmt.Errorf("report: put %s: write: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("report: put %s: sync: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report: put %s: close: %w", key, err)
	}
	if err := os.Link(tmp.Name(), dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("report: put %s: %w", key, ErrExists)
		}
		return fmt.Errorf("report: put %s: link: %w", key, err)
	}
	return nil
}

// Get implements Store.
func (f *FileStore) Get(_ context.Context, key string) ([]byte, error) {
	p, err := f.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("report: get %s: %w", key, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("report: get %s: %w", key, err)
	}
	return b, nil
}

// path maps key below Dir, refusing keys that would leave it.
func (f *FileStore) path(key string) (string, error) {
	if !filepath.IsLocal(filepath.FromSlash(key)) {
		return "", fmt.Errorf("report: key %q leaves the report directory", key)
	}
	return filepath.Join(f.Dir, filepath.FromSlash(key)), nil
}
